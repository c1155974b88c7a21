//! The exact reply samples of webqq.md, and property tests that no body
//! makes a decoder panic and that the types round-trip through JSON.

use proptest::prelude::*;
use serde_json::{json, Value};

use super::*;

const VF: &str = "2aabfe228f219e9cb0eb53f16947ccf25ec84d8dbc74254770f58904dba41ecccc3fc1626e53a130";

#[test]
fn login2_sample() {
    let body = r#"{"retcode":0,"result":{"uin":1685359365,"cip":3232235777,"index":1075,"port":43332,"status":"online","vfwebqq":"2aabfe228f219e9cb0eb53f16947ccf25ec84d8dbc74254770f58904dba41ecccc3fc1626e53a130","psessionid":"83680467640019636f6e6e7365727665725f77656271714031302e302e302e370000123400000abc016e0400058b74646d0000000a406b4a694738586e42456d000000282aabfe228f219e9cb0eb53f16947ccf25ec84d8dbc74254770f58904dba41ecccc3fc1626e53a130","user_state":0,"f":0}}"#;
    let r: Login2Result = parse_result(body, "login2").expect("sample parses");
    assert_eq!(r.uin, 1_685_359_365);
    assert_eq!(r.cip, 3_232_235_777);
    assert_eq!(r.status, "online");
    assert_eq!(r.vfwebqq.expose(), VF);
    assert!(r.psessionid.expose().ends_with(&format!("00000028{VF}")));
    // Tokens never show in Debug output.
    let debug = format!("{r:?}");
    assert!(!debug.contains(VF), "{debug}");
    // Key order survives serialisation (for the simulator).
    assert_eq!(ok_body(&r).unwrap_or_default(), body);
}

#[test]
fn login2_errors() {
    for (body, code) in [
        (r#"{"retcode":103,"errmsg":""}"#, 103),
        (r#"{"retcode":108,"errmsg":""}"#, 108),
        (r#"{"retcode":121,"t":"0"}"#, 121),
        (r#"{"retcode":100006,"errmsg":""}"#, 100006),
        (r#"{"retcode":100101}"#, 100101),
        (r#"{"retcode":"122","errmsg":"wrong web client3"}"#, 122),
    ] {
        assert_eq!(
            parse_result::<Login2Result>(body, "login2"),
            Err(JsonError::Retcode(code))
        );
    }
    assert_eq!(
        parse_result::<Login2Result>("{}", "login2"),
        Err(JsonError::NoRetcode)
    );
    assert!(matches!(
        parse_result::<Login2Result>("<html>", "login2"),
        Err(JsonError::NotJson { .. })
    ));
    assert_eq!(
        parse_result::<Login2Result>(r#"{"retcode":0}"#, "login2"),
        Err(JsonError::BadResult { what: "login2" })
    );
}

#[test]
fn friends_sample() {
    let body = r#"{"retcode":0,"result":{
  "friends":[{"flag":4,"uin":3901234567,"categories":1},{"flag":0,"uin":2123456789,"categories":0}],
  "marknames":[{"uin":2123456789,"markname":"Bobby"}],
  "categories":[{"index":1,"sort":1,"name":"Classmates"}],
  "vipinfo":[{"vip_level":0,"u":3901234567,"is_vip":0},{"vip_level":3,"u":2123456789,"is_vip":1}],
  "info":[{"face":0,"flag":25707010,"nick":"Alice","uin":3901234567},{"face":270,"flag":8389126,"nick":"Bob","uin":2123456789}]}}"#;
    let r: FriendsResult = parse_result(body, "friends").expect("sample parses");
    assert_eq!(r.friends.len(), 2);
    assert_eq!(r.friends[0].uin, 3_901_234_567);
    assert_eq!(r.friends[0].categories, 1);
    assert_eq!(r.marknames[0].markname, "Bobby");
    assert_eq!(r.categories[0].name, "Classmates");
    assert_eq!(r.vipinfo[1].vip_level, 3);
    assert_eq!(r.info[1].face, 270);
    assert_eq!(r.info[1].nick, "Bob");
}

#[test]
fn friends_tolerates_bad_items_and_nulls() {
    let body = r#"{"retcode":0,"result":{"friends":[{"uin":"12","categories":null},7,"x"],
        "marknames":null,"info":[{"nick":null,"uin":12,"face":"3"}],"extra":[1]}}"#;
    let r: FriendsResult = parse_result(body, "friends").expect("parses");
    assert_eq!(r.friends.len(), 1);
    assert_eq!(r.friends[0].uin, 12);
    assert!(r.marknames.is_empty());
    assert_eq!(r.info[0].nick, "");
    assert_eq!(r.info[0].face, 3);
}

#[test]
fn group_list_sample() {
    let body = r#"{"retcode":0,"result":{"gmasklist":[],"gnamelist":[{"flag":1090519041,"name":"Rust fans","gid":1122334455,"code":3344556677}],"gmarklist":[]}}"#;
    let r: GroupListResult = parse_result(body, "groups").expect("sample parses");
    assert_eq!(r.gnamelist[0].gid, 1_122_334_455);
    assert_eq!(r.gnamelist[0].code, 3_344_556_677);
    assert_eq!(r.gnamelist[0].name, "Rust fans");
    assert_eq!(ok_body(&r).unwrap_or_default(), body);
}

#[test]
fn group_info_sample() {
    let body = r#"{"retcode":0,"result":{
  "stats":[{"client_type":1,"uin":3901234567,"stat":10},{"client_type":41,"uin":1685359365,"stat":10}],
  "minfo":[{"nick":"Alice","province":"江苏","gender":"female","uin":3901234567,"country":"中国","city":"苏州"},
           {"nick":"Carol","province":"","gender":"female","uin":1999888777,"country":"","city":""},
           {"nick":"Tester","province":"广东","gender":"male","uin":1685359365,"country":"中国","city":"深圳"}],
  "ginfo":{"face":0,"memo":"","class":10048,"fingermemo":"","code":3344556677,"createtime":1388307595,"flag":1090519041,
           "level":0,"name":"Rust fans","gid":1122334455,"owner":1685359365,
           "members":[{"muin":3901234567,"mflag":21},{"muin":1999888777,"mflag":0},{"muin":1685359365,"mflag":20}],"option":1},
  "cards":[{"muin":1999888777,"card":"Carol (admin)"}],
  "vipinfo":[{"vip_level":0,"u":3901234567,"is_vip":0},{"vip_level":0,"u":1999888777,"is_vip":0},{"vip_level":0,"u":1685359365,"is_vip":0}]}}"#;
    let r: GroupInfoResult = parse_result(body, "group info").expect("sample parses");
    assert_eq!(r.stats.len(), 2);
    assert_eq!(r.minfo[0].province, "江苏");
    assert_eq!(r.ginfo.code, 3_344_556_677);
    assert_eq!(r.ginfo.members.len(), 3);
    assert_eq!(r.ginfo.owner, 1_685_359_365);
    assert_eq!(r.cards[0].card, "Carol (admin)");
    // Cards may be absent.
    let no_cards: GroupInfoResult = parse_result(
        r#"{"retcode":0,"result":{"stats":[],"minfo":[],"ginfo":{"gid":1,"members":[]}}}"#,
        "group info",
    )
    .expect("parses");
    assert!(no_cards.cards.is_empty());
    assert_eq!(no_cards.ginfo.gid, 1);
}

#[test]
fn friend_uin_samples() {
    let person: FriendUinResult = parse_result(
        r#"{"retcode":0,"result":{"uiuin":"","account":20002000,"uin":3901234567}}"#,
        "uin",
    )
    .expect("parses");
    assert_eq!((person.account, person.uin), (20_002_000, 3_901_234_567));
    let group: FriendUinResult = parse_result(
        r#"{"retcode":0,"result":{"uiuin":"","account":445566,"uin":3344556677}}"#,
        "uin",
    )
    .expect("parses");
    assert_eq!(group.account, 445_566);
    assert_eq!(
        parse_result::<FriendUinResult>(r#"{"retcode":100000}"#, "uin"),
        Err(JsonError::Retcode(100000))
    );
}

#[test]
fn small_results() {
    let sig: C2cSigResult = parse_result(
        r#"{"retcode":0,"result":{"type":0,"value":"5d1e0c0b9f6a43d2","flags":{"text":1,"pic":1,"file":1,"audio":1,"video":1}}}"#,
        "sig",
    )
    .expect("parses");
    assert_eq!(sig.value.expose(), "5d1e0c0b9f6a43d2");
    let nick: LongNickResult =
        parse_result(r#"{"retcode":0,"result":{"result":0}}"#, "nick").expect("parses");
    assert_eq!(nick.result, 0);
    let add: AllowAndAddResult = parse_result(
        r#"{"retcode":0,"result":{"result1":0,"account":40004000,"tuin":1999888777,"stat":10}}"#,
        "add",
    )
    .expect("parses");
    assert_eq!(
        (add.result1, add.account, add.tuin),
        (0, 40_004_000, 1_999_888_777)
    );
    let ok = parse_envelope(r#"{"retcode":0,"result":"ok"}"#).expect("parses");
    assert!(ok.is_ok_string());
    assert!(!parse_envelope(r#"{"retcode":0,"result":"no"}"#)
        .expect("parses")
        .is_ok_string());
}

#[test]
fn poll_two_events_sample_newest_first() {
    let body = r#"{"retcode":0,"result":[
 {"poll_type":"group_message","value":{"msg_id":13663,"from_uin":1122334455,"to_uin":1685359365,"msg_id2":886022,"msg_type":43,"reply_ip":176756826,"group_code":3344556677,"send_uin":1999888777,"seq":27,"time":1388368698,"info_seq":445566,"content":[["font",{"size":13,"color":"004faa","style":[0,0,0],"name":"STKaiti"}],"ooo "]}},
 {"poll_type":"message","value":{"msg_id":24225,"from_uin":3901234567,"to_uin":1685359365,"msg_id2":950054,"msg_type":9,"reply_ip":176498455,"time":1388368696,"content":[["font",{"size":10,"color":"000000","style":[0,0,0],"name":"\u5B8B\u4F53"}],"hii "]}}]}"#;
    let PollReply::Events(events) = parse_poll(body).expect("parses") else {
        panic!("expected events");
    };
    assert_eq!(events.len(), 2);
    let PollEvent::GroupMessage(g) = &events[0] else {
        panic!("expected a group message first");
    };
    assert_eq!(
        (g.from_uin, g.send_uin, g.info_seq),
        (1_122_334_455, 1_999_888_777, Some(445_566))
    );
    assert_eq!(g.group_code, 3_344_556_677);
    assert_eq!(g.content.len(), 2);
    let PollEvent::Message(m) = &events[1] else {
        panic!("expected a buddy message second");
    };
    assert_eq!(
        (m.msg_id, m.msg_id2, m.from_uin),
        (24225, 950_054, 3_901_234_567)
    );
    assert_eq!(m.content[1], json!("hii "));
    assert_eq!(m.content[0][1]["name"], json!("宋体"));
}

#[test]
fn poll_reply_shapes() {
    assert_eq!(parse_poll(""), Ok(PollReply::Nothing));
    assert_eq!(parse_poll("  \r\n"), Ok(PollReply::Nothing));
    assert_eq!(
        parse_poll(r#"{"retcode":102,"errmsg":""}"#),
        Ok(PollReply::Nothing)
    );
    assert_eq!(
        parse_poll(r#"{"retcode":0,"result":"ok"}"#),
        Ok(PollReply::Nothing)
    );
    assert_eq!(
        parse_poll(r#"{"retcode":0,"result":[]}"#),
        Ok(PollReply::Events(vec![]))
    );
    let rotated =
        parse_poll(r#"{"retcode":116,"p":"9f0c77e5d2b4a1c3e8f6a7b9c0d1e2f3a4b5c6d7e8f9a0b1"}"#);
    match rotated {
        Ok(PollReply::NewPtwebqq(p)) => {
            assert_eq!(
                p.expose(),
                "9f0c77e5d2b4a1c3e8f6a7b9c0d1e2f3a4b5c6d7e8f9a0b1"
            )
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(
        parse_poll(r#"{"retcode":121,"t":"0"}"#),
        Ok(PollReply::Failed(121))
    );
    assert_eq!(
        parse_poll(r#"{"retcode":103,"errmsg":""}"#),
        Ok(PollReply::Failed(103))
    );
    assert_eq!(parse_poll(r#"{"errmsg":""}"#), Err(JsonError::NoRetcode));
    assert!(matches!(parse_poll("{"), Err(JsonError::NotJson { .. })));
}

#[test]
fn poll_every_documented_type() {
    let body = json!({"retcode":0,"result":[
        {"poll_type":"sess_message","value":{"msg_id":1,"from_uin":1999888777,"to_uin":1685359365,"msg_id2":2,"msg_type":140,"reply_ip":1,"time":3,"id":1122334455,"ruin":40004000,"service_type":0,"flags":{"text":1,"pic":1,"file":1,"audio":1,"video":1},"content":[["font",{}],"hi "]}},
        {"poll_type":"buddies_status_change","value":{"uin":3901234567u64,"status":"away","client_type":1}},
        {"poll_type":"system_message","value":{"seq":63433,"type":"verify_required","uiuin":"","from_uin":1999888777,"account":40004000,"msg":"hi, add me?","allow":1,"stat":10,"client_type":1}},
        {"poll_type":"kick_message","value":{"msg_id":5,"from_uin":10000,"to_uin":1685359365,"msg_id2":6,"msg_type":48,"reply_ip":0,"show_reason":1,"reason":"您的帐号在另一地点登录，您已被迫下线。"}},
        {"poll_type":"kick_message","value":{"way":"poll","show_reason":1,"reason":"old form"}},
        {"poll_type":"buddylist_change","value":{"added_friends":[{"groupid":0,"uin":1999888777}],"removed_friends":[]}},
        {"poll_type":"sys_g_msg","value":{"msg_id":7,"from_uin":1122334455,"to_uin":1685359365,"msg_id2":8,"msg_type":33,"reply_ip":0,"type":"group_join","gcode":3344556677u64,"t_gcode":445566,"op_type":2,"new_member":1999888777,"t_new_member":"","admin_uin":1,"admin_nick":"x"}},
        {"poll_type":"discu_message","value":{"msg_id":9,"from_uin":10000,"to_uin":1,"msg_id2":10,"msg_type":42,"reply_ip":0,"did":77,"send_uin":5,"seq":1,"time":1,"info_seq":1,"content":["x "]}},
        {"poll_type":"input_notify","value":{"msg_id":11,"from_uin":3901234567u64,"to_uin":1,"msg_id2":12,"msg_type":121,"reply_ip":4294967295u64}},
        {"poll_type":"shake_message","value":{"msg_id":13,"from_uin":3901234567u64,"to_uin":1,"msg_id2":14,"msg_type":9,"reply_ip":1}},
        {"poll_type":"file_message","value":{"mode":"recv","session_id":1}},
        {"poll_type":"message","value":"not an object"},
        {"value":{}},
        "junk"
    ]});
    let Ok(PollReply::Events(events)) = parse_poll(&body.to_string()) else {
        panic!("expected events");
    };
    let types: Vec<&str> = events.iter().map(PollEvent::poll_type).collect();
    assert_eq!(
        types,
        vec![
            "sess_message",
            "buddies_status_change",
            "system_message",
            "kick_message",
            "kick_message",
            "buddylist_change",
            "sys_g_msg",
            "discu_message",
            "input_notify",
            "shake_message",
            "file_message",
            "message",
            "",
            ""
        ]
    );
    assert!(
        matches!(&events[0], PollEvent::SessMessage(s) if s.ruin == Some(40_004_000) && s.id == 1_122_334_455)
    );
    assert!(matches!(&events[1], PollEvent::StatusChange(s) if s.status == "away"));
    assert!(
        matches!(&events[2], PollEvent::System(s) if s.kind == "verify_required" && s.account == 40_004_000 && s.msg == "hi, add me?")
    );
    assert!(matches!(&events[3], PollEvent::Kick(k) if k.reason.starts_with("您的帐号")));
    assert!(matches!(&events[4], PollEvent::Kick(k) if k.reason == "old form"));
    assert!(matches!(&events[5], PollEvent::BuddyListChange(b) if b.added_friends.len() == 1));
    assert!(
        matches!(&events[6], PollEvent::GroupSystem(g) if g.t_gcode == Some(445_566) && g.extra.contains_key("admin_nick"))
    );
    assert!(matches!(&events[7], PollEvent::DiscuMessage(d) if d.did == 77));
    assert!(matches!(&events[8], PollEvent::InputNotify(_)));
    assert!(matches!(&events[9], PollEvent::Shake(_)));
    assert!(matches!(&events[10], PollEvent::Other { .. }));
    assert!(matches!(&events[11], PollEvent::Other { .. }));
}

#[test]
fn verify_required_sample() {
    let body = r#"{"retcode":0,"result":[{"poll_type":"system_message","value":{"seq":63433,"type":"verify_required","uiuin":"","from_uin":1999888777,"account":40004000,"msg":"hi, add me?","allow":1,"stat":10,"client_type":1}}]}"#;
    let Ok(PollReply::Events(events)) = parse_poll(body) else {
        panic!("expected events");
    };
    // Serialising gives back the same text (the simulator answers with it).
    assert_eq!(ok_body(&events).unwrap_or_default(), body);
}

fn arb_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        "\\PC{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("poll_type"),
            Just("value"),
            Just("retcode"),
            Just("result"),
            Just("message"),
            Just("group_message"),
            Just("font"),
            Just("face"),
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("retcode".to_owned()),
                        Just("result".to_owned()),
                        Just("poll_type".to_owned()),
                        Just("value".to_owned()),
                        Just("p".to_owned()),
                        Just("content".to_owned()),
                        Just("from_uin".to_owned()),
                        Just("info".to_owned()),
                        Just("ginfo".to_owned()),
                        "[a-z_]{1,8}",
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn decoders_never_panic_on_text(body in "\\PC{0,300}") {
        let _ = parse_poll(&body);
        let _ = parse_result::<Login2Result>(&body, "x");
        let _ = parse_result::<FriendsResult>(&body, "x");
        let _ = parse_result::<GroupInfoResult>(&body, "x");
    }

    #[test]
    fn decoders_never_panic_on_json(value in arb_json(), retcode in prop_oneof![Just(0i64), Just(102), Just(116), Just(121), any::<i64>()]) {
        let body = json!({"retcode": retcode, "result": value.clone(), "p": value.clone()}).to_string();
        let _ = parse_poll(&body);
        let _ = parse_result::<FriendsResult>(&body, "x");
        let _ = parse_result::<GroupListResult>(&body, "x");
        let _ = parse_result::<GroupInfoResult>(&body, "x");
        let _ = parse_result::<FriendUinResult>(&body, "x");
        let _ = parse_result::<AllowAndAddResult>(&body, "x");
        let _ = parse_poll(&json!({"retcode": 0, "result": [value.clone()]}).to_string());
        let _ = PollEvent::from_value(json!({"poll_type": "message", "value": value.clone()}));
        let _ = PollEvent::from_value(json!({"poll_type": "group_message", "value": value.clone()}));
        let _ = PollEvent::from_value(json!({"poll_type": "sys_g_msg", "value": value}));
    }

    #[test]
    fn buddy_messages_round_trip(
        msg_id in any::<u64>(), from in any::<u64>(), id2 in any::<u64>(),
        text in "\\PC{0,20}", face in 0u64..200,
    ) {
        let event = PollEvent::Message(BuddyMessage {
            msg_id, from_uin: from, to_uin: 1, msg_id2: id2, msg_type: 9, reply_ip: 2, time: 3,
            content: vec![json!(["font", {"size": 10}]), json!(text), json!(["face", face])],
        });
        let text = serde_json::to_string(&event).unwrap_or_default();
        let back: PollEvent = serde_json::from_str(&text).unwrap_or(PollEvent::Other { poll_type: String::new(), value: Value::Null });
        prop_assert_eq!(back, event);
    }

    #[test]
    fn group_info_round_trips(gid in any::<u64>(), code in any::<u64>(), name in "\\PC{0,16}", card in "\\PC{1,16}") {
        let info = GroupInfoResult {
            ginfo: GroupDetail { gid, code, name, members: vec![GroupMemberRef { muin: 5, mflag: 0 }], ..GroupDetail::default() },
            cards: vec![MemberCard { muin: 5, card }],
            ..GroupInfoResult::default()
        };
        let body = ok_body(&info).unwrap_or_default();
        prop_assert_eq!(parse_result::<GroupInfoResult>(&body, "x"), Ok(info));
    }
}
