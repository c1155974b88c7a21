//! Property tests: arbitrary input never panics, and every typed request
//! and reply survives encode → decode, whatever its text contains.

use proptest::collection::vec;
use proptest::prelude::*;

use super::*;

/// Text biased towards the characters the wire format treats specially.
fn text() -> impl Strategy<Value = String> {
    let special = prop_oneof![
        Just(','),
        Just('&'),
        Just('='),
        Just('%'),
        Just('\r'),
        Just('\n'),
        Just(' '),
        Just('2'),
        Just('c'),
        Just('好'),
        Just('+'),
        any::<char>(),
    ];
    vec(special, 0..16).prop_map(String::from_iter)
}

fn non_empty_text() -> impl Strategy<Value = String> {
    text().prop_filter("non-empty", |t| !t.is_empty())
}

fn uin() -> impl Strategy<Value = u64> {
    prop_oneof![10000u64..100_000_000, any::<u64>()]
}

fn status() -> impl Strategy<Value = Status> {
    prop::sample::select(Status::ALL)
}

fn gender() -> impl Strategy<Value = Gender> {
    prop::sample::select(Gender::ALL)
}

fn ack_code() -> impl Strategy<Value = AckCode> {
    prop_oneof![Just(0u32), Just(1), Just(2), 3u32..1000].prop_map(AckCode::from_code)
}

fn params() -> impl Strategy<Value = Params> {
    prop_oneof![
        (non_empty_text(), proptest::option::of(text())).prop_map(|(p, m5)| Params::Login {
            password: PasswordHash::from_wire(p),
            m5
        }),
        (
            proptest::option::of(any::<u32>()),
            proptest::option::of(uin())
        )
            .prop_map(|(tn, un)| Params::List { tn, un }),
        (
            proptest::option::of(any::<u32>()),
            proptest::option::of(uin())
        )
            .prop_map(|(tn, un)| Params::QueryStat { tn, un }),
        (any::<u32>(), uin()).prop_map(|(level, target)| Params::GetInfo { level, target }),
        uin().prop_map(|target| Params::AddToList { target }),
        (uin(), ack_code(), text()).prop_map(|(target, code, text)| Params::AckAddToList {
            target,
            code,
            text
        }),
        uin().prop_map(|target| Params::DelFromList { target }),
        status().prop_map(|status| Params::ChangeStat { status }),
        Just(Params::GetMsgEx),
        (uin(), text()).prop_map(|(to, text)| Params::CltMsg { to, text }),
        Just(Params::Logout),
        (
            proptest::option::of(any::<u32>()),
            proptest::option::of(gender()),
            proptest::option::of(non_empty_text())
        )
            .prop_map(|(age, gender, province)| Params::Finger {
                age,
                gender,
                province
            }),
    ]
}

fn request() -> impl Strategy<Value = Request> {
    (
        prop::sample::select(vec![Version::V1_0, Version::V1_1, Version::V1_2]),
        text(),
        uin(),
        params(),
    )
        .prop_map(|(ver, seq, uin, params)| Request {
            ver,
            seq,
            uin,
            params,
        })
}

fn user_info() -> impl Strategy<Value = UserInfo> {
    (
        (
            uin(),
            text(),
            text(),
            any::<u32>(),
            text(),
            any::<u32>(),
            text(),
        ),
        (
            text(),
            text(),
            text(),
            text(),
            text(),
            text(),
            text(),
            gender(),
        ),
    )
        .prop_map(
            |(
                (uin, nick, address, age, email, face, homepage),
                (occupation, postcode, phone, intro, province, real_name, school, gender),
            )| UserInfo {
                uin,
                nick,
                address,
                age,
                email,
                face,
                homepage,
                occupation,
                postcode,
                phone,
                intro,
                province,
                real_name,
                school,
                gender,
            },
        )
}

fn extras() -> impl Strategy<Value = InfoExtras> {
    (
        prop::sample::select(BloodType::ALL),
        prop::sample::select(Constellation::ALL),
        prop::sample::select(Zodiac::ALL),
        (text(), text(), text(), text(), text(), text(), text()),
    )
        .prop_map(
            |(blood_type, constellation, zodiac, (city, cv, country, id, mobile, mt, mv))| {
                InfoExtras {
                    blood_type,
                    constellation,
                    city,
                    cv,
                    country,
                    id,
                    mobile,
                    mt,
                    mv,
                    zodiac,
                }
            },
        )
}

fn msg_entry() -> impl Strategy<Value = MsgEntry> {
    prop_oneof![
        (uin(), text()).prop_map(|(from, text)| MsgEntry::User { from, text }),
        (uin(), status()).prop_map(|(from, status)| MsgEntry::Status { from, status }),
        (uin(), text()).prop_map(|(from, text)| MsgEntry::FriendRequest { from, text }),
        (uin(), text()).prop_map(|(from, text)| MsgEntry::Accepted { from, text }),
        (uin(), text()).prop_map(|(from, text)| MsgEntry::Refused { from, text }),
        (100u32..1000, uin(), text()).prop_map(|(kind, from, text)| MsgEntry::Other {
            kind,
            from,
            text
        }),
    ]
}

/// A command and a `RES=0` body that belongs to it.
fn success() -> impl Strategy<Value = (Command, ReplyBody)> {
    let done = prop::sample::select(vec![
        Command::AckAddToList,
        Command::DelFromList,
        Command::ChangeStat,
        Command::CltMsg,
        Command::Logout,
    ])
    .prop_map(|cmd| (cmd, ReplyBody::Done));
    let login = prop_oneof![
        (any::<u32>(), any::<u32>(), proptest::option::of(text())).prop_map(|(hi, li, comp)| {
            LoginReply::Success {
                heartbeat_s: hi,
                idle_timeout_s: li,
                comp,
            }
        }),
        text().prop_map(|reason| LoginReply::Failure { reason }),
    ]
    .prop_map(|login| (Command::Login, ReplyBody::Login(login)));
    let list = prop_oneof![
        any::<u32>().prop_map(ListReply::Count),
        vec(uin(), 0..6).prop_map(ListReply::Friends),
    ]
    .prop_map(|list| (Command::List, ReplyBody::List(list)));
    let online = (any::<u32>(), status(), uin(), text()).prop_map(|(face, status, uin, nick)| {
        OnlineFriend {
            face,
            status,
            uin,
            nick,
        }
    });
    let stat = prop_oneof![
        any::<u32>().prop_map(QueryStatReply::Count),
        vec(online, 0..5).prop_map(QueryStatReply::Online),
    ]
    .prop_map(|stat| (Command::QueryStat, ReplyBody::QueryStat(stat)));
    let info = prop_oneof![
        (any::<u32>(), uin(), text()).prop_map(|(level, uin, nick)| InfoReply::Brief {
            level,
            uin,
            nick
        }),
        (any::<u32>(), user_info()).prop_map(|(level, info)| InfoReply::Normal { level, info }),
        (any::<u32>(), user_info(), extras()).prop_map(|(level, info, extras)| {
            InfoReply::Detailed {
                level,
                info,
                extras,
            }
        }),
    ]
    .prop_map(|info| (Command::GetInfo, ReplyBody::GetInfo(Box::new(info))));
    let add = (0u32..4, uin()).prop_map(|(cd, target)| {
        let code = AddToListCode::from_code(cd).unwrap_or(AddToListCode::Added);
        (
            Command::AddToList,
            ReplyBody::AddToList(AddToListReply { code, target }),
        )
    });
    let messages = vec(msg_entry(), 0..6)
        .prop_map(|entries| (Command::GetMsgEx, ReplyBody::Messages(entries)));
    let finger_entry = (any::<u32>(), any::<u32>(), text(), gender(), uin(), text()).prop_map(
        |(age, face, province, gender, uin, nick)| FingerEntry {
            age,
            face,
            province,
            gender,
            uin,
            nick,
        },
    );
    let finger =
        vec(finger_entry, 0..4).prop_map(|entries| (Command::Finger, ReplyBody::Finger(entries)));
    prop_oneof![done, login, list, stat, info, add, messages, finger]
}

fn reply() -> impl Strategy<Value = Reply> {
    let failure = (
        prop::sample::select(Command::ALL.to_vec()),
        prop::sample::select(vec![
            ReplyBody::Refused,
            ReplyBody::IllegalUin,
            ReplyBody::NotLoggedIn,
        ]),
    );
    (text(), uin(), prop_oneof![success(), failure]).prop_map(|(seq, uin, (cmd, body))| Reply {
        cmd,
        seq,
        uin,
        body,
    })
}

fn style() -> impl Strategy<Value = ReplyStyle> {
    (
        prop::sample::select(vec![LoginEcho::MixedCase, LoginEcho::UpperCase]),
        prop::sample::select(vec![AmpProfile::Seed001, AmpProfile::Seed003]),
        any::<bool>(),
    )
        .prop_map(
            |(login_echo, trailing_amp, sysmsg_trailing_space)| ReplyStyle {
                login_echo,
                trailing_amp,
                sysmsg_trailing_space,
            },
        )
}

/// Bodies that look almost right, to reach the deeper decoding paths.
fn plausible_body() -> impl Strategy<Value = Vec<u8>> {
    let keys = prop::sample::select(vec![
        "VER", "CMD", "SEQ", "UIN", "RES", "RS", "HI", "LI", "FN", "SN", "UN", "FC", "ST", "NK",
        "MN", "MT", "MG", "LV", "AD", "BT", "CD", "TN", "PS", "LC", "AG", "SX", "PV",
    ]);
    let value = prop_oneof![
        Just("1.1".to_owned()),
        Just("0".to_owned()),
        Just("1,2,".to_owned()),
        Just("9326B87B234E7235".to_owned()),
        prop::sample::select(Command::ALL.to_vec()).prop_map(|c| c.wire_name().to_owned()),
        "[0-9,%a-c ]{0,8}",
    ];
    vec((keys, value), 0..24).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
            .into_bytes()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..600)) {
        let _ = Request::decode(&bytes);
        let _ = Reply::decode(&bytes);
        let _ = decode_answer(&bytes);
        let _ = parse_http_replies(&bytes);
        let _ = decode_reply_value(&bytes);
    }

    #[test]
    fn plausible_bodies_never_panic(body in plausible_body()) {
        let _ = Request::decode(&body);
        let _ = Reply::decode(&body);
    }

    #[test]
    fn requests_round_trip(request in request()) {
        let wire = request.encode();
        prop_assert_eq!(Request::decode(wire.as_bytes()), Ok(request));
    }

    #[test]
    fn replies_round_trip(reply in reply(), style in style()) {
        let wire = reply.encode(&style);
        prop_assert_eq!(Reply::decode(wire.as_bytes()), Ok(reply));
    }

    #[test]
    fn reply_text_round_trips_alone(t in text()) {
        let mut wire = String::new();
        encode_reply_text(&t, &mut wire);
        prop_assert!(!wire.contains(',') && !wire.contains('&') && !wire.contains('\n'));
        prop_assert_eq!(decode_reply_value(wire.as_bytes()), t.into_bytes());
    }

    #[test]
    fn framed_replies_split_back(first in text(), second in text()) {
        let mut wire = http_reply(&first);
        wire.extend_from_slice(b"\r\n");
        wire.extend(http_reply(&second));
        let replies = parse_http_replies(&wire).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let bodies: Vec<Vec<u8>> = replies.into_iter().map(|r| r.body).collect();
        prop_assert_eq!(bodies, vec![first.into_bytes(), second.into_bytes()]);
    }
}
