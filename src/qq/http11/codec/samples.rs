//! Unit tests with the exact bytes of every sample in http11.md §6 and the
//! worked session of §9 (and the captured replies of seeds \[001\]/\[003\]).

use super::*;

const LOGIN_UPPER: ReplyStyle = ReplyStyle {
    login_echo: LoginEcho::UpperCase,
    trailing_amp: AmpProfile::Seed001,
    sysmsg_trailing_space: false,
};
const SEED003: ReplyStyle = ReplyStyle {
    login_echo: LoginEcho::MixedCase,
    trailing_amp: AmpProfile::Seed003,
    sysmsg_trailing_space: true,
};

/// Decodes a reply and checks that encoding it again gives the same bytes.
fn reply_round_trip(wire: &str, style: ReplyStyle) -> Reply {
    let reply = Reply::decode(wire.as_bytes()).unwrap();
    assert_eq!(reply.encode(&style), wire);
    reply
}

/// Round-trips a GetInfo reply and returns its payload.
fn info_round_trip(wire: &str) -> InfoReply {
    match reply_round_trip(wire, ReplyStyle::default()).body {
        ReplyBody::GetInfo(info) => *info,
        other => panic!("not a GetInfo reply: {other:?}"),
    }
}

fn request_round_trip(wire: &str) -> Request {
    let request = Request::decode(wire.as_bytes()).unwrap();
    assert_eq!(request.encode(), wire);
    request
}

#[test]
fn worked_example_login() {
    let body = "VER=1.1&CMD=Login&SEQ=4821&UIN=10001000&PS=5ebe2294ecd0e0f08eab7690d2a6ee69&M5=1&LC=9326B87B234E7235";
    assert_eq!(body.len(), 100);
    let request = request_round_trip(body);
    assert_eq!(request.uin, 10001000);
    let Params::Login { password, m5 } = &request.params else {
        panic!("not a login: {request:?}");
    };
    assert!(password.matches(&PasswordHash::from_password("secret")));
    assert_eq!(m5.as_deref(), Some("1"));
    let wire_request = "POST / HTTP/1.1\r\nHost: tqq.tencent.com:8000\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: 100\r\nConnection: close\r\n\r\n".to_owned() + body;
    assert_eq!(
        http_request(body, "tqq.tencent.com:8000", RequestShape::Standard),
        wire_request.as_bytes()
    );

    let reply_body = "VER=1.1&CMD=LOGIN&SEQ=4821&UIN=10001000&RES=0&RS=0&HI=60&LI=300";
    assert_eq!(reply_body.len(), 63);
    let reply = reply_round_trip(reply_body, LOGIN_UPPER);
    assert_eq!(
        reply.body,
        ReplyBody::Login(LoginReply::Success {
            heartbeat_s: 60,
            idle_timeout_s: 300,
            comp: None
        })
    );
    let wire_reply = "HTTP/1.1 200 OK\r\nServer: tencent imserver/1.0.0\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: 63\r\n\r\n".to_owned() + reply_body;
    assert_eq!(http_reply(reply_body), wire_reply.as_bytes());
}

#[test]
fn worked_example_list_and_query_stat() {
    let list = request_round_trip("VER=1.1&CMD=List&SEQ=4822&UIN=10001000&TN=160&UN=0");
    assert_eq!(
        list.params,
        Params::List {
            tn: Some(160),
            un: Some(0)
        }
    );
    let reply = reply_round_trip(
        "VER=1.1&CMD=LIST&SEQ=4822&UIN=10001000&RES=0&FN=1&SN=2&UN=20002000,30003000,",
        ReplyStyle::default(),
    );
    assert_eq!(
        reply.body,
        ReplyBody::List(ListReply::Friends(vec![20002000, 30003000]))
    );

    let stat = request_round_trip("VER=1.1&CMD=Query_Stat&SEQ=4823&UIN=10001000&TN=50&UN=0");
    assert_eq!(stat.cmd(), Command::QueryStat);
    let wire = "VER=1.1&CMD=QUERY_STAT&SEQ=4823&UIN=10001000&RES=0&FC=0,270,&FN=1&SN=2&ST=10,30,&UN=20002000,30003000,&NK=Alice,Bob,";
    assert_eq!(wire.len(), 116);
    let reply = reply_round_trip(wire, ReplyStyle::default());
    let ReplyBody::QueryStat(QueryStatReply::Online(friends)) = reply.body else {
        panic!("not an online list");
    };
    assert_eq!(friends[1].face, 270);
    assert_eq!(friends[1].status, Status::Busy);
    assert_eq!(friends[1].nick, "Bob");
}

#[test]
fn worked_example_messages_logout_and_malformed() {
    request_round_trip("VER=1.1&CMD=GetMsgEx&SEQ=4824&UIN=10001000");
    let reply = reply_round_trip(
        "VER=1.1&CMD=GETMSGEX&SEQ=4824&UIN=10001000&RES=0&MN=2&MT=9,99,&UN=20002000,30003000,&MG=hello ,30,",
        ReplyStyle::default(),
    );
    assert_eq!(
        reply.body,
        ReplyBody::Messages(vec![
            MsgEntry::User {
                from: 20002000,
                text: "hello".into()
            },
            MsgEntry::Status {
                from: 30003000,
                status: Status::Busy
            },
        ])
    );
    let send =
        request_round_trip("VER=1.1&CMD=CLTMSG&SEQ=4825&UIN=10001000&UN=20002000&MG=hi there");
    assert_eq!(
        send.params,
        Params::CltMsg {
            to: 20002000,
            text: "hi there".into()
        }
    );
    reply_round_trip(
        "VER=1.1&CMD=CLTMSG&SEQ=4825&UIN=10001000&RES=0&",
        ReplyStyle::default(),
    );
    let idle = reply_round_trip(
        "VER=1.1&CMD=GETMSGEX&SEQ=4826&UIN=10001000&RES=0&MN=0&MT=&UN=&MG=",
        ReplyStyle::default(),
    );
    assert_eq!(idle.body, ReplyBody::Messages(vec![]));
    request_round_trip("VER=1.1&CMD=Logout&SEQ=4828&UIN=10001000");
    reply_round_trip(
        "VER=1.1&CMD=LOGOUT&SEQ=4828&UIN=10001000&RES=0",
        ReplyStyle::default(),
    );
    request_round_trip("VER=1.1&CMD=List&SEQ=4829&UIN=10001000");
    let after = reply_round_trip(
        "VER=1.1&CMD=LIST&SEQ=4829&UIN=10001000&RES=20",
        ReplyStyle::default(),
    );
    assert_eq!(after.body, ReplyBody::NotLoggedIn);
    assert_eq!(
        Request::decode(b"VER=1.1&CMD=List&SEQ=1&UIN=abc"),
        Err(CodecError::BadNumber { key: "UIN" })
    );
}

#[test]
fn worked_example_double_reply_and_probe_request() {
    let body = "VER=1.1&CMD=Query_Stat&SEQ=4827&UIN=10001000";
    assert_eq!(body.len(), 44);
    let probe =
        format!("POST HTTP/1.1\r\nContent-length: 44\r\nConnection: close\r\n\r\n{body}\r\n\r\n");
    assert_eq!(
        http_request(body, "", RequestShape::Probe),
        probe.as_bytes()
    );
    let request = Request::decode(body.as_bytes()).unwrap();
    assert_eq!(request.params, Params::QueryStat { tn: None, un: None });

    let first = "VER=1.1&CMD=QUERY_STAT&SEQ=4827&UIN=10001000&RES=0&FN=2";
    let second = "VER=1.1&CMD=QUERY_STAT&SEQ=4827&UIN=10001000&RES=0&FC=&FN=1&SN=0&ST=&UN=&NK=";
    assert_eq!((first.len(), second.len()), (55, 76));
    let mut wire = http_reply(first);
    wire.extend_from_slice(b"\r\n");
    wire.extend(http_reply(second));
    let expected = "HTTP/1.1 200 OK\r\nServer: tencent imserver/1.0.0\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: 55\r\n\r\nVER=1.1&CMD=QUERY_STAT&SEQ=4827&UIN=10001000&RES=0&FN=2\r\nHTTP/1.1 200 OK\r\nServer: tencent imserver/1.0.0\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Length: 76\r\n\r\nVER=1.1&CMD=QUERY_STAT&SEQ=4827&UIN=10001000&RES=0&FC=&FN=1&SN=0&ST=&UN=&NK=";
    assert_eq!(wire, expected.as_bytes());

    let replies = parse_http_replies(&wire).unwrap();
    assert_eq!(replies.len(), 2);
    assert_eq!(replies[0].header("server"), Some(SERVER_NAME));
    let count = Reply::decode(&replies[0].body).unwrap();
    assert_eq!(count.body, ReplyBody::QueryStat(QueryStatReply::Count(2)));
    let empty = reply_round_trip(second, ReplyStyle::default());
    assert_eq!(
        empty.body,
        ReplyBody::QueryStat(QueryStatReply::Online(vec![]))
    );
    assert_eq!(parse_http_replies(b"").unwrap(), vec![]);
    assert_eq!(decode_answer(b"").unwrap(), None);
}

#[test]
fn seed_001_capture_lengths_match_a_9_digit_uin() {
    let first = "VER=1.1&CMD=QUERY_STAT&SEQ=1234&UIN=123456789&RES=0&FN=1";
    let second = "VER=1.1&CMD=QUERY_STAT&SEQ=1234&UIN=123456789&RES=0&FC=&FN=1&SN=0&ST=&UN=&NK=";
    assert_eq!((first.len(), second.len()), (56, 77));
}

#[test]
fn login_variants() {
    let failed = reply_round_trip(
        "VER=1.1&CMD=Login&SEQ=11422&UIN=315103947&RES=0&RS=1&RA=登录失败",
        ReplyStyle::default(),
    );
    assert_eq!(
        failed.body,
        ReplyBody::Login(LoginReply::Failure {
            reason: "登录失败".into()
        })
    );
    reply_round_trip(
        "VER=1.1&CMD=LOGIN&SEQ=1234&UIN=106814&RES=0&RS=1&RA=密码错误",
        LOGIN_UPPER,
    );
    let comp = reply_round_trip(
        "VER=1.1&CMD=Login&SEQ=5531&UIN=106814&RES=0&RS=0&HI=60&LI=300&COMP=NOKIA8F3A18D6E27",
        ReplyStyle::default(),
    );
    assert!(
        matches!(comp.body, ReplyBody::Login(LoginReply::Success { comp: Some(ref c), .. }) if c == "NOKIA8F3A18D6E27")
    );
    let illegal = reply_round_trip("VER=1.1&CMD=LOGIN&SEQ=1234&UIN=100&RES=5", LOGIN_UPPER);
    assert_eq!(illegal.body, ReplyBody::IllegalUin);
}

#[test]
fn list_and_query_stat_samples_from_the_seeds() {
    let count = reply_round_trip(
        "VER=1.1&CMD=LIST&SEQ=1234&UIN=106814&RES=0&FN=9",
        ReplyStyle::default(),
    );
    assert_eq!(count.body, ReplyBody::List(ListReply::Count(9)));
    // [003]'s list is elided with "...." in the article: it must not decode.
    assert!(Reply::decode(
        "VER=1.1&CMD=LIST&SEQ=43661&UIN=29501213&RES=0&FN=1&SN=24&UN=561256,1943497,...."
            .as_bytes()
    )
    .is_err());
    // [001]
    let one = reply_round_trip(
        "VER=1.1&CMD=QUERY_STAT&SEQ=1234&UIN=29501213&RES=0&FC=0,&FN=1&SN=1&ST=10,&UN=106814,&NK=Hackfan 好,",
        ReplyStyle::default(),
    );
    let ReplyBody::QueryStat(QueryStatReply::Online(friends)) = one.body else {
        panic!()
    };
    assert_eq!(friends[0].nick, "Hackfan 好");
    // [003], with SEQ=-1, the requester itself and the trailing '&'.
    let wire = "VER=1.1&CMD=QUERY_STAT&SEQ=-1&UIN=29501213&RES=0&FC=141,270,270,&FN=1&SN=3&ST=10,10,10,&UN=12327207,24259132,29501213,&NK= □,微程,鶹鸑,&";
    let reply = reply_round_trip(wire, SEED003);
    assert_eq!(reply.seq, "-1");
    let ReplyBody::QueryStat(QueryStatReply::Online(friends)) = reply.body else {
        panic!()
    };
    let nicks: Vec<&str> = friends.iter().map(|f| f.nick.as_str()).collect();
    assert_eq!(nicks, [" □", "微程", "鶹鸑"]);
    assert_eq!(friends[2].uin, 29501213);
}

#[test]
fn get_info_samples_brief_normal_detailed() {
    let brief = info_round_trip(
        "VER=1.1&CMD=GETINFO&SEQ=1234&UIN=29501213&RES=0&LV=0&UN=106814&NK=Hackfan 好",
    );
    assert_eq!(
        brief,
        InfoReply::Brief {
            level: 0,
            uin: 106814,
            nick: "Hackfan 好".into()
        }
    );

    let normal = "VER=1.1&CMD=GETINFO&SEQ=1234&UIN=29501213&RES=0&AD=地址&AG=19&EM=hackfan@qq.com&FC=0&HP=http://blog.hackfan.net&JB=学生&LV=2&PC=邮编&PH=电话&PR=The guy is updating to .NET Frameword......&PV=江苏&RN=胡吉阳&SC=毕业院校&SX=0&UN=106814&NK=Hackfan 好";
    let InfoReply::Normal { level: 2, info } = info_round_trip(normal) else {
        panic!("not a normal profile");
    };
    assert_eq!(
        (info.age, info.gender, info.province.as_str()),
        (19, Gender::Male, "江苏")
    );

    let detailed = "VER=1.1&CMD=GETINFO&SEQ=1234&UIN=29501213&RES=0&AD=地址&AG=19&BT=2&CO=6&CT=苏州&CV=%01&CY=中华人民共和国&EM=hackfan@qq.com&FC=0&HP=http://blog.hackfan.net&ID=-&JB=学生&LV=3&MO=136********&MT=0&MV=&PC=邮编&PH=电话&PR=The guy is updating to .NET Frameword......&PV=江苏&RN=胡吉阳&SC=毕业院校&SH=3&SX=0&UN=106814&NK=Hackfan 好";
    let InfoReply::Detailed {
        level: 3,
        info,
        extras,
    } = info_round_trip(detailed)
    else {
        panic!("not a detailed profile");
    };
    assert_eq!(info.nick, "Hackfan 好");
    assert_eq!(extras.blood_type, BloodType::B);
    assert_eq!(extras.constellation, Constellation::Cancer);
    assert_eq!(extras.zodiac, Zodiac::Tiger);
    assert_eq!(extras.cv, "\u{1}");
    assert_eq!(extras.constellation.to_string(), "Cancer (巨蟹座)");

    // [003]: commas as %252c and CR LF as %0d%0a inside PR.
    let escaped = "VER=1.1&CMD=GETINFO&SEQ=12707&UIN=415103947&RES=0&AD=云南昆明&AG=0&EM=Microprogramer@hotmail.com&FC=270&HP=msger.org(建设中...)&JB=程序员&LV=2&PC=650000&PH=0871-6466529&PR=网络为媒%252c关系为本%252c信息为财%252c客户为主.%0d%0a&PV=云南省&RN=刘X&SC=社会大学&SX=0&UN=24259132&NK=微程";
    let InfoReply::Normal { info, .. } = info_round_trip(escaped) else {
        panic!("not a normal profile");
    };
    assert_eq!(info.intro, "网络为媒,关系为本,信息为财,客户为主.\r\n");
    assert_eq!(avatar_file_number(info.face), 91);
}

#[test]
fn add_ack_delete_status_and_message_replies() {
    for (cd, code) in [
        (0, AddToListCode::Added),
        (1, AddToListCode::NeedsVerification),
        (2, AddToListCode::Refused(DenyCode::Two)),
        (3, AddToListCode::Refused(DenyCode::Three)),
    ] {
        let wire =
            format!("VER=1.1&CMD=AddToList&SEQ=13666&UIN=415103947&RES=0&CD={cd}&UN=24259132");
        let reply = reply_round_trip(&wire, ReplyStyle::default());
        assert_eq!(
            reply.body,
            ReplyBody::AddToList(AddToListReply {
                code,
                target: 24259132
            })
        );
    }
    reply_round_trip(
        "VER=1.1&CMD=Ack_AddToList&SEQ=1130&UIN=415103947&RES=0&",
        SEED003,
    );
    reply_round_trip(
        "VER=1.1&CMD=Ack_AddToList&SEQ=1130&UIN=415103947&RES=0",
        ReplyStyle::default(),
    );
    let refused = reply_round_trip(
        "VER=1.1&CMD=Ack_AddToList&SEQ=1130&UIN=415103947&RES=3",
        ReplyStyle::default(),
    );
    assert_eq!(refused.body, ReplyBody::Refused);
    for style in [ReplyStyle::default(), SEED003] {
        reply_round_trip(
            "VER=1.1&CMD=DelFromList&SEQ=24514&UIN=415103947&RES=0&",
            style,
        );
        reply_round_trip(
            "VER=1.1&CMD=Change_Stat&SEQ=17512&UIN=415103947&RES=0&",
            style,
        );
        reply_round_trip("VER=1.1&CMD=LOGOUT&SEQ=15803&UIN=415103947&RES=0", style);
    }
    reply_round_trip("VER=1.1&CMD=CLTMSG&SEQ=15803&UIN=415103947&RES=0", SEED003);
    reply_round_trip(
        "VER=1.1&CMD=DelFromList&SEQ=24514&UIN=415103947&RES=3",
        ReplyStyle::default(),
    );

    let seed001 = reply_round_trip(
        "VER=1.1&CMD=GETMSGEX&SEQ=1234&UIN=29501213&RES=0&MN=4&MT=99,99,99,9,&UN=36791785,99833581,99833581,106814,&MG=20,30,10,hi ,",
        ReplyStyle::default(),
    );
    let ReplyBody::Messages(entries) = seed001.body else {
        panic!()
    };
    assert_eq!(
        entries[3],
        MsgEntry::User {
            from: 106814,
            text: "hi".into()
        }
    );
    assert_eq!(
        entries[0],
        MsgEntry::Status {
            from: 36791785,
            status: Status::Offline
        }
    );
    let seed003 = reply_round_trip(
        "VER=1.1&CMD=GETMSGEX&SEQ=56661&UIN=29501213&RES=0&MN=3&MT=99,9,9,&UN=24259132,24259132,24259132,&MG=30 ,asdfasdfasdfasdf ,asdfasdfasdf ,&",
        SEED003,
    );
    let ReplyBody::Messages(entries) = seed003.body else {
        panic!()
    };
    assert_eq!(
        entries[0],
        MsgEntry::Status {
            from: 24259132,
            status: Status::Busy
        }
    );
    assert_eq!(
        entries[2],
        MsgEntry::User {
            from: 24259132,
            text: "asdfasdfasdf".into()
        }
    );
}

#[test]
fn requests_of_the_probe_and_the_1_0_list() {
    let csharp = request_round_trip("VER=1.0&CMD=Query_Stat&SEQ=12321&UIN=29501213&TN=50&UN=0");
    assert_eq!(csharp.ver, Version::V1_0);
    let ack = request_round_trip(
        "VER=1.1&CMD=Ack_AddToList&SEQ=4000&UIN=29501213&UN=106814&CD=2&RS=TEST",
    );
    assert_eq!(
        ack.params,
        Params::AckAddToList {
            target: 106814,
            code: AckCode::Request,
            text: "TEST".into()
        }
    );
    let invalid_cd =
        Request::decode(b"VER=1.1&CMD=Ack_AddToList&SEQ=4000&UIN=29501213&UN=106814&CD=5&RS=TEST")
            .unwrap();
    assert!(matches!(
        invalid_cd.params,
        Params::AckAddToList {
            code: AckCode::Other(5),
            ..
        }
    ));
    let finger = request_round_trip("VER=1.0&CMD=Finger&SEQ=1&UIN=10001&AG=&SX=&PV=");
    assert_eq!(
        finger.params,
        Params::Finger {
            age: None,
            gender: None,
            province: None
        }
    );
    request_round_trip("VER=1.2&CMD=GetInfo&SEQ=1&UIN=10001&LV=3&UN=106814");
    request_round_trip("VER=1.1&CMD=AddToList&SEQ=1&UIN=10001&UN=106814");
    request_round_trip("VER=1.1&CMD=DelFromList&SEQ=1&UIN=10001&UN=106814");
    let lower = Request::decode(b"VER=1.1&CMD=Change_stat&SEQ=1&UIN=10001&ST=30").unwrap();
    assert_eq!(
        lower.params,
        Params::ChangeStat {
            status: Status::Busy
        }
    );
    // The probe swept ST = 0, 5, ..., 60; only the four codes are legal.
    let legal: Vec<u32> = (0..=60)
        .step_by(5)
        .filter(|st| {
            Request::decode(format!("VER=1.1&CMD=Change_Stat&SEQ=1&UIN=10001&ST={st}").as_bytes())
                .is_ok()
        })
        .collect();
    assert_eq!(legal, [10, 20, 30, 40]);
    // M6 and other unknown keys are ignored.
    assert!(
        Request::decode(b"VER=1.1&CMD=Login&SEQ=1&UIN=10001&PS=abc&M6=1&LC=9326B87B234E7235")
            .is_ok()
    );
}

#[test]
fn every_documented_null_trigger_is_a_decode_error() {
    let cases: &[(&[u8], CodecError)] = &[
        (b"VER=1.3&CMD=List&SEQ=1&UIN=10001", CodecError::BadVersion),
        (
            b"VER=1.1&CMD=List&SEQ=1&UIN=1x",
            CodecError::BadNumber { key: "UIN" },
        ),
        (
            b"VER=1.1&CMD=List&SEQ=1&UIN=10001&UN=a",
            CodecError::BadNumber { key: "UN" },
        ),
        (
            b"VER=1.1&CMD=Query_Stat&SEQ=1&UIN=10001&TN=x",
            CodecError::BadNumber { key: "TN" },
        ),
        (
            b"VER=1.1&CMD=GetInfo&SEQ=1&UIN=10001&LV=x&UN=1",
            CodecError::BadNumber { key: "LV" },
        ),
        (
            b"VER=1.1&CMD=Ack_AddToList&SEQ=1&UIN=10001&UN=1&CD=x&RS=",
            CodecError::BadNumber { key: "CD" },
        ),
        (
            b"VER=1.1&CMD=Ack_AddToList&SEQ=1&UIN=10001&UN=1&CD=0&RS=\xff",
            CodecError::InvalidUtf8 { key: "RS" },
        ),
        (
            b"VER=1.1&CMD=CLTMSG&SEQ=1&UIN=10001&UN=1&MG=%C3%28",
            CodecError::InvalidUtf8 { key: "MG" },
        ),
        (
            b"VER=1.1&CMD=Login&SEQ=1&UIN=10001&PS=&M5=1&LC=9326B87B234E7235",
            CodecError::EmptyValue { key: "PS" },
        ),
        (
            b"VER=1.1&CMD=Login&SEQ=1&UIN=10001&PS=ab&M5=1&LC=1223423545756679",
            CodecError::BadLoginCode,
        ),
        (
            b"VER=1.1&CMD=Change_Stat&SEQ=1&UIN=10001&ST=50",
            CodecError::BadValue { key: "ST" },
        ),
        (
            b"VER=1.1&CMD=Fly&SEQ=1&UIN=10001",
            CodecError::UnknownCommand,
        ),
        (
            b"VER=1.1&CMD=List&SEQ=1&UIN=99999999999999999999",
            CodecError::NumberOutOfRange { key: "UIN" },
        ),
        (
            b"VER=1.1&CMD=List&SEQ",
            CodecError::MalformedPair { index: 2 },
        ),
        (b"", CodecError::Empty),
    ];
    for (body, error) in cases {
        assert_eq!(
            Request::decode(body).as_ref().err(),
            Some(error),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    let huge = vec![b'a'; MAX_REQUEST_BODY + 1];
    assert!(matches!(
        Request::decode(&huge),
        Err(CodecError::TooLarge { .. })
    ));
}

#[test]
fn reply_lists_are_checked() {
    let mismatch = "VER=1.1&CMD=GETMSGEX&SEQ=1&UIN=1&RES=0&MN=2&MT=9,9,&UN=1,&MG=a ,b ,";
    assert_eq!(
        Reply::decode(mismatch.as_bytes()),
        Err(CodecError::ListLengthMismatch {
            key: "UN",
            found: 1,
            expected_from: "MT",
            expected: 2
        })
    );
    let count = "VER=1.1&CMD=LIST&SEQ=1&UIN=1&RES=0&FN=1&SN=3&UN=1,2,";
    assert_eq!(
        Reply::decode(count.as_bytes()),
        Err(CodecError::CountMismatch {
            count_key: "SN",
            count: 3,
            list_key: "UN",
            items: 2
        })
    );
    let status = "VER=1.1&CMD=QUERY_STAT&SEQ=1&UIN=1&RES=0&FC=0,&FN=1&SN=1&ST=15,&UN=2,&NK=a,";
    assert_eq!(
        Reply::decode(status.as_bytes()),
        Err(CodecError::BadValue { key: "ST" })
    );
    let too_many = format!(
        "VER=1.1&CMD=LIST&SEQ=1&UIN=1&RES=0&FN=1&SN=2000&UN={}",
        "1,".repeat(2000)
    );
    assert!(matches!(
        Reply::decode(too_many.as_bytes()),
        Err(CodecError::TooManyItems { key: "UN", .. })
    ));
    assert_eq!(
        Reply::decode(b"VER=1.1&CMD=LIST&SEQ=1&UIN=1&RES=7"),
        Err(CodecError::UnknownResult(7))
    );
    assert_eq!(
        Reply::decode(b"VER=1.1&CMD=LIST&SEQ=1&UIN=1&RES=0"),
        Err(CodecError::MissingKey { key: "FN" })
    );
    // An HTTP reply cut off before its declared Content-Length.
    assert!(parse_http_replies(b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nVER=1.1").is_err());
}

#[test]
fn finger_reply_follows_the_invented_format() {
    let wire = "VER=1.1&CMD=FINGER&SEQ=1&UIN=10001&RES=0&FN=1&SN=2&AG=19,26,&FC=0,270,&PV=江苏,云南省,&SX=0,0,&UN=10003,10002,&NK=Hackfan 好,微程,";
    let reply = reply_round_trip(wire, ReplyStyle::default());
    let ReplyBody::Finger(entries) = reply.body else {
        panic!("not a Finger reply");
    };
    assert_eq!(entries[1].province, "云南省");
    assert_eq!(entries[0].nick, "Hackfan 好");
    let short = "VER=1.1&CMD=FINGER&SEQ=1&UIN=10001&RES=0&FN=1&SN=2&AG=19,&FC=0,270,&PV=a,b,&SX=0,0,&UN=1,2,&NK=a,b,";
    assert!(matches!(
        Reply::decode(short.as_bytes()),
        Err(CodecError::ListLengthMismatch { key: "AG", .. })
    ));
}
