//! Conformance of the QQ simulator's WebQQ side with
//! shared/protocol/webqq.md, over real TCP with a plain HTTP client and a
//! hand-kept cookie jar: the login flow (with and without captcha, every
//! refusal), login2's checks, every API call, poll2 (holding, 102, newest
//! first, every poll_type, 116, the kick/121/103 farewell), the encoding
//! styles, aliases, and the exchange with an HTTP QQ 1.1 account in the
//! same world.

use std::collections::BTreeMap;
use std::time::Duration;

use qqbridge::qq::http11::codec::{MsgEntry, Params, ReplyBody, Status};
use qqbridge::qq::sim::{start, Scenario, SimConfig};
use qqbridge::qq::webqq::crypto::{encrypt_password, friend_hash, uin_bytes};
use qqbridge::qq::webqq::endpoints as ep;
use qqbridge::qq::webqq::json::{parse_poll, PollEvent, PollReply};
use qqbridge::qq::webqq::ptlogin::{parse_check_vc, parse_ptui_cb};
use serde_json::{json, Value};

#[path = "sim_webqq/client.rs"]
mod client;

use client::*;

#[tokio::test]
async fn login_flow_matches_the_documented_replies() {
    let sim = start_sim(&cast("")).await;
    let port = sim.protocol_addr().port();
    let mut web = Web::new(&sim);
    let page = web.get(ep::LOGIN_PAGE, &[]).await;
    assert!(page
        .text()
        .contains("var g_login_sig=encodeURIComponent(\""));

    let check = web
        .get(ep::CHECK, &[("uin", &ME.to_string()), ("appid", ep::APPID)])
        .await;
    assert_eq!(check.header("server"), Some("Tencent Login Server/2.0.0"));
    let text = check.text();
    assert!(text.starts_with("ptui_checkVC('0','!"), "{text}");
    assert!(
        text.ends_with(r"','\x00\x00\x00\x00\x64\x74\x8b\x05');"),
        "{text}"
    );
    let code = parse_check_vc(&text).unwrap().code;
    assert!(code.len() == 4 && code[1..].bytes().all(|b| b.is_ascii_uppercase()));
    let names: Vec<&str> = check
        .set_cookies()
        .iter()
        .map(|c| c.split('=').next().unwrap())
        .collect();
    assert_eq!(names, ["ptvfsession", "confirmuin"]);
    assert!(check.set_cookies()[1].starts_with("confirmuin=0; PATH=/;"));

    let p = encrypt_password("password123", &uin_bytes(ME), &code);
    let reply = login_raw(&mut web, ME, p.expose(), &code.to_lowercase()).await;
    let names: Vec<&str> = reply
        .set_cookies()
        .iter()
        .map(|c| c.split('=').next().unwrap())
        .collect();
    assert_eq!(
        names,
        ["pt2gguin", "uin", "skey", "ETK", "ptuserinfo", "ptwebqq"]
    );
    assert_eq!(reply.header("p3p"), Some("CP=\"CAO PSA OUR\""));
    let cb = parse_ptui_cb(&reply.text()).unwrap();
    assert_eq!(
        reply.text(),
        format!("ptuiCB('0','0','{}','0','登录成功！', 'Tester');", cb.url)
    );
    assert!(cb.url.starts_with(&format!(
        "http://127.0.0.1:{port}/check_sig?pttype=1&uin={ME}&service=login&nodirect=0&ptsigx="
    )));
    for (name, value) in [
        ("pt2gguin", "o1685359365"),
        ("uin", "o1685359365"),
        ("ptuserinfo", "546573746572"),
        ("ETK", ""),
    ] {
        assert_eq!(
            web.cookies.get(name).map(String::as_str),
            Some(value),
            "{name}"
        );
    }
    let skey = web.cookies["skey"].clone();
    assert!(skey.starts_with('@') && skey.len() == 10);
    let ptwebqq = web.cookies["ptwebqq"].clone();
    assert!(
        ptwebqq.len() == 64
            && ptwebqq
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );

    let sig = follow_check_sig(&mut web, &cb).await;
    assert_eq!(sig.status, 302);
    assert_eq!(
        sig.header("location"),
        Some("http://web2.qq.com/loginproxy.html?login2qq=1&webqq_type=10")
    );
    for name in ["p_skey", "p_uin", "pt4_token"] {
        assert!(web.cookies.contains_key(name), "{name}");
    }

    let r = json!({"status":"online","ptwebqq":ptwebqq,"passwd_sig":"","clientid":"31415926","psessionid":null});
    let reply = login2(&mut web, r, "31415926").await;
    let body = reply.text();
    assert!(
        body.starts_with(&format!(
            "{{\"retcode\":0,\"result\":{{\"uin\":{ME},\"cip\":2130706433,\"index\":1075,\"port\":"
        )),
        "{body}"
    );
    let result = &reply.json()["result"];
    assert_eq!(result["status"], "online");
    assert_eq!(
        (result["user_state"].clone(), result["f"].clone()),
        (json!(0), json!(0))
    );
    let vf = result["vfwebqq"].as_str().unwrap();
    assert!(vf.len() == 80 && vf.bytes().all(|b| b.is_ascii_hexdigit()));
    let psid = result["psessionid"].as_str().unwrap();
    assert!(psid.starts_with("8368046764"), "{psid}");
    assert!(
        psid.contains("6e0400058b7464"),
        "the uin as a small bignum: {psid}"
    );
    assert!(
        psid.contains(&format!("6d0000000a{}", hex(&skey))),
        "{psid}"
    );
    assert!(psid.ends_with(&format!("00000028{vf}")));
    let (_, account) = control(&sim, "GET", &format!("/accounts/{ME}"), None).await;
    assert_eq!(account["session"]["protocol"], "webqq");
    assert_eq!(account["presence"], "online");

    // clientid as a JSON number works too; that login replaces the first.
    let mut numeric = login_with_clientid(&sim, ME, "password123", None, json!(87654321)).await;
    assert_eq!(numeric.friends().await["retcode"], 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn captcha_logins_and_every_refusal() {
    let sim = start_sim(&cast("")).await;
    // Carol's logins always need the scenario's code.
    let mut web = Web::new(&sim);
    let cb = password_step(&mut web, CAROL, "carol", Some("abce")).await;
    assert_eq!(
        qqbridge::qq::webqq::ptlogin::format_ptui_cb(&cb),
        format!("ptuiCB('4','0','','0','您输入的验证码不正确，请重新输入。', '{CAROL}');")
    );
    assert!(web.cookies.contains_key("verifysession"));
    let cb = password_step(&mut web, CAROL, "carol", Some("ABCD")).await;
    assert_eq!(cb.status, 0, "{cb:?}");
    let check = web
        .get(ep::CHECK, &[("uin", &CAROL.to_string())])
        .await
        .text();
    assert!(check.starts_with("ptui_checkVC('1','"), "{check}");

    // Wrong password: 3, naming the number tried.
    let mut web = Web::new(&sim);
    let cb = password_step(&mut web, ME, "wrong", None).await;
    assert_eq!(
        qqbridge::qq::webqq::ptlogin::format_ptui_cb(&cb),
        format!("ptuiCB('3','0','','0','您输入的帐号或密码不正确，请重新输入。', '{ME}');")
    );
    assert!(!web.cookies.contains_key("ptwebqq"));
    // The check was used up: trying again without a new one has expired.
    let cb = login_with(&mut web, ME, &"0".repeat(32), "!AAA").await;
    assert_eq!((cb.status, cb.sub_status.as_str()), (4, "2"));
    // Unknown accounts look like wrong passwords.
    let cb = password_step(&mut Web::new(&sim), 99_999, "x", None).await;
    assert_eq!(cb.status, 3);

    // Bad input: 7; no ptvfsession cookie: 24; a wrong verify code: 4.
    let mut web = Web::new(&sim);
    web.get(ep::CHECK, &[("uin", &ME.to_string())]).await;
    let cb = login_with(&mut web, ME, "short", "!AAA").await;
    assert_eq!(cb.status, 7);
    assert!(
        cb.message.starts_with("网络连接异常，请稍后再试。("),
        "{cb:?}"
    );
    let cb = login_with(&mut Web::new(&sim), ME, &"0".repeat(32), "!AAA").await;
    assert_eq!(cb.status, 24);
    let mut web = Web::new(&sim);
    let vc = parse_check_vc(&web.get(ep::CHECK, &[("uin", &ME.to_string())]).await.text()).unwrap();
    let p = encrypt_password("password123", &uin_bytes(ME), "!ZZZ");
    let cb = login_with(
        &mut web,
        ME,
        p.expose(),
        if vc.code == "!ZZZ" { "!YYY" } else { "!ZZZ" },
    )
    .await;
    assert_eq!((cb.status, cb.sub_status.as_str()), (4, "0"));
    sim.shutdown().await;

    // captcha_policy: always; strict_cookies off lets a cookie-less client
    // log in.
    for policy in ["always", "\"random(1)\""] {
        let sim = start_sim(&cast(&format!("captcha_policy: {policy}"))).await;
        let check = Web::new(&sim)
            .get(ep::CHECK, &[("uin", &ME.to_string())])
            .await
            .text();
        assert!(check.starts_with("ptui_checkVC('1','"), "{policy}: {check}");
        sim.shutdown().await;
    }
    let sim = start_sim(&cast("strict_cookies: false")).await;
    let mut web = Web::new(&sim);
    let vc = parse_check_vc(&web.get(ep::CHECK, &[("uin", &ME.to_string())]).await.text()).unwrap();
    web.cookies.clear();
    let p = encrypt_password("password123", &uin_bytes(ME), &vc.code);
    assert_eq!(
        login_with(&mut web, ME, p.expose(), &vc.code).await.status,
        0
    );
    sim.shutdown().await;
    // Old verify codes expire (4 with '2'): 1 s of protocol time is 10 ms.
    let sim = start_sim(&cast("verify_code_ttl_s: 1")).await;
    let mut web = Web::new(&sim);
    let vc = parse_check_vc(&web.get(ep::CHECK, &[("uin", &ME.to_string())]).await.text()).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let p = encrypt_password("password123", &uin_bytes(ME), &vc.code);
    let cb = login_with(&mut web, ME, p.expose(), &vc.code).await;
    assert_eq!((cb.status, cb.sub_status.as_str()), (4, "2"));
    sim.shutdown().await;
}

#[tokio::test]
async fn login2_checks_the_cookie_r_clientid_and_referer() {
    let sim = start_sim(&cast("")).await;
    let mut web = Web::new(&sim);
    let cb = password_step(&mut web, ME, "password123", None).await;
    follow_check_sig(&mut web, &cb).await;
    let ptwebqq = web.cookies["ptwebqq"].clone();
    let r = |pt: &str, clientid: Value| json!({"status":"online","ptwebqq":pt,"passwd_sig":"","clientid":clientid,"psessionid":null});
    // No Referer (strict mode).
    web.referer = None;
    let reply = login2(&mut web, r(&ptwebqq, json!("1")), "1").await;
    assert_eq!(reply.text(), r#"{"retcode":103,"errmsg":""}"#);
    web.referer = Some("http://evil.example/");
    assert_eq!(
        login2(&mut web, r(&ptwebqq, json!("1")), "1").await.json()["retcode"],
        103
    );
    web.referer = Some(CHANNEL_REFERER);
    // A clientid that is no number, an unknown status.
    assert_eq!(
        login2(&mut web, r(&ptwebqq, json!("abc")), "abc")
            .await
            .json()["retcode"],
        100_006
    );
    let mut bad_status = r(&ptwebqq, json!("1"));
    bad_status["status"] = json!("slient");
    assert_eq!(
        login2(&mut web, bad_status, "1").await.json()["retcode"],
        100_006
    );
    // ptwebqq in r differs from the cookie.
    assert_eq!(
        login2(&mut web, r(&"0".repeat(64), json!("1")), "1")
            .await
            .json()["retcode"],
        103
    );
    // No ptwebqq cookie at all.
    let cookie = web.cookies.remove("ptwebqq").unwrap();
    assert_eq!(
        login2(&mut web, r(&ptwebqq, json!("1")), "1").await.text(),
        r#"{"retcode":108,"errmsg":""}"#
    );
    // The wrong skey cookie.
    web.cookies.insert("ptwebqq".into(), cookie);
    let skey = web
        .cookies
        .insert("skey".into(), "@000000000".into())
        .unwrap();
    assert_eq!(
        login2(&mut web, r(&ptwebqq, json!("1")), "1").await.json()["retcode"],
        103
    );
    web.cookies.insert("skey".into(), skey);
    // Right at last, as "hidden"; the ticket then is used up.
    let mut hidden = r(&ptwebqq, json!("12345678"));
    hidden["status"] = json!("hidden");
    let reply = login2(&mut web, hidden.clone(), "12345678").await.json();
    assert_eq!(reply["result"]["status"], "hidden");
    assert_eq!(
        sim.world().presence(ME),
        Some(qqbridge::qq::sim::Presence::Invisible)
    );
    assert_eq!(
        login2(&mut web, hidden, "12345678").await.json()["retcode"],
        103
    );

    // Relink: login2 with the current psessionid keeps the tokens.
    let psid = reply["result"]["psessionid"].as_str().unwrap().to_owned();
    let mut relink = r(&ptwebqq, json!("12345678"));
    relink["psessionid"] = json!(psid);
    let again = login2(&mut web, relink.clone(), "12345678").await.json();
    assert_eq!(again["result"]["psessionid"], psid);
    assert_eq!(again["result"]["vfwebqq"], reply["result"]["vfwebqq"]);
    relink["clientid"] = json!("999");
    assert_eq!(login2(&mut web, relink, "999").await.json()["retcode"], 103);
    sim.shutdown().await;

    // Lenient Referer and cookies: a bare client gets through.
    let sim = start_sim(&cast("strict_referer: false, strict_cookies: false")).await;
    let mut web = Web::new(&sim);
    let cb = password_step(&mut web, ME, "password123", None).await;
    let ptwebqq = web.cookies["ptwebqq"].clone();
    web.cookies.clear();
    web.referer = None;
    let reply = login2(&mut web, r(&ptwebqq, json!(1)), "1").await.json();
    assert_eq!(reply["retcode"], 0, "{reply} {cb:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn friend_list_hash_categories_marknames_and_aliases() {
    let sim = start_sim(&cast("")).await;
    let mut me = login(&sim, ME, "password123").await;
    let raw = {
        let hash = friend_hash(ME, &me.ptwebqq);
        me.api_post(ep::GET_USER_FRIENDS2, json!({"h":"hello","hash":hash}))
            .await
    };
    let body = raw.text();
    assert!(
        body.starts_with(r#"{"retcode":0,"result":{"friends":[{"flag":4,"uin":"#),
        "{body}"
    );
    let friends = raw.json();
    let result = &friends["result"];
    assert_eq!(
        result["categories"],
        json!([{"index":1,"sort":1,"name":"Classmates"}])
    );
    let list = result["friends"].as_array().unwrap();
    assert_eq!(list.len(), 4);
    let mut by_real = BTreeMap::new();
    for entry in list {
        let alias = entry["uin"].as_u64().unwrap();
        assert!(alias >= 1_000_000_000 && alias != ALICE && alias != BOB);
        let real = me.real(alias, 1).await;
        assert_eq!(real["result"]["uiuin"], "");
        assert_eq!(real["result"]["uin"], alias);
        by_real.insert(real["result"]["account"].as_u64().unwrap(), entry.clone());
    }
    assert_eq!(by_real[&ALICE]["categories"], 1);
    assert_eq!(by_real[&BOB]["categories"], 0);
    let bob = by_real[&BOB]["uin"].clone();
    assert_eq!(
        result["marknames"],
        json!([{"uin": bob, "markname": "Bobby"}])
    );
    let info: Vec<(Value, Value)> = result["info"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["nick"].clone(), i["face"].clone()))
        .collect();
    assert!(info.contains(&(json!("Bob"), json!(270))));
    assert!(info.contains(&(json!("大卫"), json!(0))));
    assert_eq!(result["vipinfo"].as_array().unwrap().len(), 4);

    // Stable inside the session.
    assert_eq!(me.friends().await["result"]["friends"], result["friends"]);
    // The wrong hash, vfwebqq, cookie or Referer.
    let wrong = me
        .api_post(
            ep::GET_USER_FRIENDS2,
            json!({"h":"hello","hash":"0000000000000000"}),
        )
        .await;
    assert_eq!(wrong.text(), r#"{"retcode":50}"#);
    let vf = std::mem::replace(&mut me.vfwebqq, "0".repeat(80));
    assert_eq!(me.friends().await, json!({"retcode":103,"errmsg":""}));
    me.vfwebqq = vf;
    let cookie = me
        .web
        .cookies
        .insert("ptwebqq".into(), "0".repeat(64))
        .unwrap();
    assert_eq!(me.friends().await["retcode"], 103);
    me.web.cookies.insert("ptwebqq".into(), cookie);
    me.web.referer = None;
    assert_eq!(me.friends().await["retcode"], 103);
    me.web.referer = Some(CHANNEL_REFERER);
    // Unknown aliases; a group code is no person (type 4 needs a code).
    assert_eq!(me.real(1_234_567_890, 1).await, json!({"retcode":100000}));
    assert_eq!(
        me.real(bob.as_u64().unwrap(), 4).await,
        json!({"retcode":100000})
    );

    // A new session of the same account: other aliases.
    let mut again = login(&sim, ME, "password123").await;
    let alias_again = again.alias_of(BOB).await;
    assert_ne!(json!(alias_again), bob);
    sim.shutdown().await;

    // Other hash variants.
    // alias_seed: the same aliases in the same session of another run,
    // still different in the next session.
    let mut first_runs = Vec::new();
    for _ in 0..2 {
        let sim = start_sim(&cast("alias_seed: 42")).await;
        let first = login(&sim, ME, "password123").await.alias_of(BOB).await;
        let second = login(&sim, ME, "password123").await.alias_of(BOB).await;
        assert_ne!(first, second);
        first_runs.push(first);
        sim.shutdown().await;
    }
    assert_eq!(first_runs[0], first_runs[1]);

    let sim = start_sim(&cast("hash_variant: \"off\"")).await;
    let mut me = login(&sim, ME, "password123").await;
    let reply = me
        .api_post(
            ep::GET_USER_FRIENDS2,
            json!({"h":"hello","hash":"whatever"}),
        )
        .await;
    assert_eq!(reply.json()["retcode"], 0);
    sim.shutdown().await;
    let sim = start_sim(&cast("hash_variant: password_error")).await;
    let mut me = login(&sim, ME, "password123").await;
    assert_eq!(me.friends().await["retcode"], 50);
    let salted = format!("{}password error", me.ptwebqq);
    let hash: String = salted
        .bytes()
        .zip(ME.to_string().bytes().cycle())
        .map(|(a, b)| format!("{:02X}", a ^ b))
        .collect();
    let reply = me
        .api_post(ep::GET_USER_FRIENDS2, json!({"h":"hello","hash":hash}))
        .await;
    assert_eq!(reply.json()["retcode"], 0);
    sim.shutdown().await;
}

#[tokio::test]
async fn groups_members_cards_and_real_numbers() {
    let sim = start_sim(&cast("")).await;
    let mut me = login(&sim, ME, "password123").await;
    let list = me.api_post(ep::GET_GROUP_NAME_LIST_MASK2, json!({})).await;
    let body = list.text();
    assert!(body.starts_with(r#"{"retcode":0,"result":{"gmasklist":[],"gnamelist":[{"flag":1090519041,"name":"Rust fans","gid":"#), "{body}");
    assert!(body.ends_with(r#"}],"gmarklist":[]}}"#), "{body}");
    let (gid, code) = me.group_ids().await;
    assert_ne!(gid, code);
    assert_eq!(me.real(code, 4).await["result"]["account"], GROUP);
    assert_eq!(
        me.real(code, 1).await["result"]["account"],
        GROUP,
        "lwqq sends type 1"
    );
    assert_eq!(me.real(gid, 4).await["retcode"], 100_000);

    let code_text = code.to_string();
    let info = me
        .api_get(
            ep::GET_GROUP_INFO_EXT2,
            &[("gcode", &code_text), ("cb", "undefined")],
        )
        .await;
    let raw = info.text();
    assert!(
        raw.contains("\"card\":\"爱丽丝\"") && raw.contains("只谈 Rust"),
        "raw UTF-8: {raw}"
    );
    assert!(
        raw.starts_with(r#"{"retcode":0,"result":{"stats":["#),
        "{raw}"
    );
    let result = &info.json()["result"];
    let ginfo = &result["ginfo"];
    assert_eq!(
        (ginfo["gid"].as_u64(), ginfo["code"].as_u64()),
        (Some(gid), Some(code))
    );
    assert_eq!(ginfo["owner"], ME, "own number is real");
    assert_eq!(ginfo["name"], "Rust fans");
    assert_eq!(ginfo["createtime"], 1_388_307_595);
    let members: Vec<u64> = ginfo["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["muin"].as_u64().unwrap())
        .collect();
    assert_eq!(members.len(), 4);
    assert!(members.contains(&ME));
    let alice = me.alias_of(ALICE).await;
    assert!(
        members.contains(&alice),
        "member aliases are the friend aliases"
    );
    // Online members only: me, Alice, Carol (Dave has no session).
    assert_eq!(result["stats"].as_array().unwrap().len(), 3);
    let mine = result["stats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["uin"] == ME)
        .cloned();
    assert_eq!(mine, Some(json!({"client_type":41,"uin":ME,"stat":10})));
    let minfo = result["minfo"].as_array().unwrap();
    let alice_info = minfo.iter().find(|m| m["uin"] == alice).unwrap();
    assert_eq!(
        alice_info,
        &json!({"nick":"Alice","province":"江苏","gender":"female","uin":alice,"country":"中国","city":"苏州"})
    );
    let carol = result["cards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["card"] == "Carol (admin)")
        .unwrap()["muin"]
        .as_u64()
        .unwrap();
    assert_eq!(me.real(carol, 1).await["result"]["account"], CAROL);
    // A bad group code.
    let bad = me
        .api_get(ep::GET_GROUP_INFO_EXT2, &[("gcode", "12345")])
        .await;
    assert_eq!(bad.text(), r#"{"retcode":100001}"#);
    sim.shutdown().await;
}

#[tokio::test]
async fn poll_holds_then_102_and_batches_newest_first() {
    // A short hold (1 s = 10 ms): nothing queued gives 102.
    let sim = start_sim(&cast("poll_hold_s: 1")).await;
    let mut me = login(&sim, ME, "password123").await;
    assert_eq!(me.poll_raw().await.text(), r#"{"retcode":102,"errmsg":""}"#);
    sim.shutdown().await;

    // A long hold (30 s): only events or a newer poll end a poll early.
    let sim = start_sim(&cast("poll_hold_s: 3000")).await;
    let mut me = login(&sim, ME, "password123").await;
    let poller = {
        let mut me = login_clone(&me);
        tokio::spawn(async move { me.poll().await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!poller.is_finished(), "the poll is held");
    control(
        &sim,
        "POST",
        "/inject",
        Some(json!({"from": ALICE, "to": ME, "text": "hii"})),
    )
    .await;
    let PollReply::Events(events) = poller.await.unwrap() else {
        panic!()
    };
    assert_eq!(events.len(), 1);

    // Two queued events come in one batch, newest first; channel replies
    // escape non-ASCII as upper-case \uXXXX.
    control(
        &sim,
        "POST",
        "/inject",
        Some(json!({"from": ALICE, "to": ME, "text": "第一"})),
    )
    .await;
    control(
        &sim,
        "POST",
        "/inject",
        Some(json!({"from": BOB, "to": ME, "text": "second\nline"})),
    )
    .await;
    let raw = me.poll_raw().await.text();
    assert!(raw.contains(r#""content":[["font",{"size":10,"color":"000000","style":[0,0,0],"name":"\u5B8B\u4F53"}],"second\rline "]"#), "{raw}");
    assert!(raw.contains(r#""\u7B2C\u4E00 ""#), "{raw}");
    assert!(!raw.contains('宋'));
    let PollReply::Events(events) = parse_poll(&raw).unwrap() else {
        panic!("{raw}")
    };
    let ids: Vec<(u64, u64)> = events
        .iter()
        .map(|e| match e {
            PollEvent::Message(m) => (m.msg_id, m.msg_id2),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(ids.len(), 2);
    assert!(
        ids[0].1 > ids[1].1 && ids[0].0 > ids[1].0,
        "newest first: {ids:?}"
    );
    let PollEvent::Message(newest) = &events[0] else {
        panic!()
    };
    assert_eq!(content_text(&newest.content), "second\rline ");
    assert_eq!(newest.to_uin, ME);
    assert_eq!(newest.msg_type, 9);

    // A second poll while one is held: the first answers 102.
    let first = {
        let mut me = login_clone(&me);
        tokio::spawn(async move { me.poll_raw().await.text() })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = {
        let mut me = login_clone(&me);
        tokio::spawn(async move { me.poll_raw().await.text() })
    };
    assert_eq!(first.await.unwrap(), r#"{"retcode":102,"errmsg":""}"#);
    control(
        &sim,
        "POST",
        "/inject",
        Some(json!({"from": BOB, "to": ME, "text": "x"})),
    )
    .await;
    assert!(second.await.unwrap().contains("\"poll_type\":\"message\""));
    sim.shutdown().await;
}

/// A client that gives up a held poll (closes its connection: a browser
/// tab closed, a bridge stopping) takes nothing with it: an event that
/// arrives afterwards waits for the session's next poll. [SIM]: the
/// documents do not say; an answer nobody can read must not consume it.
#[tokio::test]
async fn a_held_poll_whose_client_left_takes_nothing() {
    let sim = start_sim(&cast("poll_hold_s: 3000")).await;
    let me = login(&sim, ME, "password123").await;
    let abandoned = {
        let mut me = login_clone(&me);
        tokio::spawn(async move { me.poll_raw().await.text() })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!abandoned.is_finished(), "the poll is held");
    // Dropping the request closes its connection.
    abandoned.abort();
    let _ = abandoned.await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    control(
        &sim,
        "POST",
        "/inject",
        Some(json!({"from": ALICE, "to": ME, "text": "still here"})),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut next = login_clone(&me);
    let raw = tokio::time::timeout(Duration::from_secs(5), next.poll_raw())
        .await
        .expect("the next poll answers with the waiting event at once")
        .text();
    let PollReply::Events(events) = parse_poll(&raw).unwrap() else {
        panic!("{raw}")
    };
    let [PollEvent::Message(m)] = events.as_slice() else {
        panic!("one message: {events:?}")
    };
    assert_eq!(content_text(&m.content), "still here ");
    sim.shutdown().await;
}

#[tokio::test]
async fn every_poll_type_the_world_produces() {
    let sim = start_sim(&cast("")).await;
    let mut me = login(&sim, ME, "password123").await;
    let mut alice = login(&sim, ALICE, "alice").await;
    let (gid, code) = me.group_ids().await;
    let bob = me.alias_of(BOB).await;

    // message, group_message, buddies_status_change, system_message.
    control(
        &sim,
        "POST",
        "/inject",
        Some(json!({"from": BOB, "to": ME, "text": "hi /微笑"})),
    )
    .await;
    let (status, _) = control(
        &sim,
        "POST",
        "/group_message",
        Some(json!({"group": GROUP, "from": CAROL, "text": "ooo"})),
    )
    .await;
    assert_eq!(status, 200);
    control(
        &sim,
        "POST",
        "/status",
        Some(json!({"uin": BOB, "status": "callme"})),
    )
    .await;
    control(
        &sim,
        "POST",
        "/status",
        Some(json!({"uin": BOB, "status": "invisible"})),
    )
    .await;
    control(
        &sim,
        "POST",
        "/friend_request",
        Some(json!({"from": CAROL, "to": ME, "message": "add me?"})),
    )
    .await;
    let events = me.events(5).await;
    let PollEvent::Message(m) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(
        (m.from_uin, content_text(&m.content)),
        (bob, "hi <face 14> ".to_owned())
    );
    let PollEvent::GroupMessage(g) = &events[1] else {
        panic!("{events:?}")
    };
    assert_eq!(
        (g.from_uin, g.group_code, g.info_seq, g.msg_type),
        (gid, code, Some(GROUP), 43)
    );
    assert_eq!(me.real(g.send_uin, 1).await["result"]["account"], CAROL);
    assert_eq!(content_text(&g.content), "ooo ");
    assert!(g.seq >= 1);
    let statuses: Vec<(u64, String, i64)> = events[2..4]
        .iter()
        .map(|e| match e {
            PollEvent::StatusChange(s) => (s.uin, s.status.clone(), s.client_type),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        statuses,
        [(bob, "callme".into(), 1), (bob, "offline".into(), 1)]
    );
    let PollEvent::System(s) = &events[4] else {
        panic!("{events:?}")
    };
    assert_eq!(
        (s.kind.as_str(), s.account, s.msg.as_str(), s.allow, s.stat),
        ("verify_required", CAROL, "add me?", 1, 10)
    );
    // Alice got the group message too, as WebQQ.
    alice
        .event_where(|e| matches!(e, PollEvent::GroupMessage(g) if g.info_seq == Some(GROUP)))
        .await;

    // sess_message: Alice (WebQQ) writes to Me through the group, a
    // temporary session.
    let (alice_gid, _) = alice.group_ids().await;
    let me_in_alice = alice.alias_of(ME).await;
    let (gid_text, to_text) = (alice_gid.to_string(), me_in_alice.to_string());
    let sig = alice
        .channel_get(
            ep::GET_C2CMSG_SIG2,
            &[
                ("id", &gid_text),
                ("to_uin", &to_text),
                ("service_type", "0"),
            ],
        )
        .await;
    let value = sig["result"]["value"].as_str().unwrap().to_owned();
    assert_eq!(value.len(), 96);
    assert_eq!(
        sig["result"]["flags"],
        json!({"text":1,"pic":1,"file":1,"audio":1,"video":1})
    );
    let wrong = alice
        .send(
            ep::SEND_SESS_MSG2,
            json!({"to": me_in_alice, "group_sig": "nope", "service_type": 0}),
            "x",
        )
        .await;
    assert_eq!(wrong, json!({"retcode":108,"errmsg":""}));
    let sent = alice
        .send(
            ep::SEND_SESS_MSG2,
            json!({"to": me_in_alice, "group_sig": value, "service_type": 0}),
            "hi via group",
        )
        .await;
    assert_eq!(sent, json!({"retcode":0,"result":"ok"}));
    let events = me.events(1).await;
    let PollEvent::SessMessage(sess) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(
        (sess.id, sess.ruin, sess.service_type, sess.msg_type),
        (gid, Some(ALICE), 0, 140)
    );
    assert_eq!(content_text(&sess.content), "hi via group ");

    // allow_and_add2: Carol becomes a friend in category 1 ("Carol");
    // buddylist_change follows. Carol's side: verify_pass_add (world log).
    let added = me
        .api_post(
            ep::ALLOW_AND_ADD2,
            json!({"account": CAROL, "gid": 1, "mname": "Carol"}),
        )
        .await;
    let body = added.text();
    assert!(
        body.starts_with(r#"{"retcode":0,"result":{"result1":0,"account":40004000,"tuin":"#),
        "{body}"
    );
    assert!(body.ends_with(r#","stat":10}}"#), "{body}");
    let tuin = added.json()["result"]["tuin"].as_u64().unwrap();
    let events = me.events(1).await;
    let PollEvent::BuddyListChange(change) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(
        (change.added_friends[0].uin, change.added_friends[0].groupid),
        (tuin, 1)
    );
    let friends = me.friends().await;
    assert!(friends["result"]["marknames"]
        .as_array()
        .unwrap()
        .contains(&json!({"uin": tuin, "markname": "Carol"})));
    assert!(friends["result"]["friends"]
        .as_array()
        .unwrap()
        .contains(&json!({"flag": 4, "uin": tuin, "categories": 1})));
    let again = me
        .api_post(
            ep::ALLOW_AND_ADD2,
            json!({"account": CAROL, "gid": 0, "mname": ""}),
        )
        .await;
    assert_eq!(
        again.json()["result"]["result1"],
        1,
        "no pending request any more"
    );
    // Me asks Alice (WebQQ); she accepts: Me gets verify_pass_add.
    control(
        &sim,
        "POST",
        "/friend_request",
        Some(json!({"from": BOB, "to": ALICE, "message": "hello"})),
    )
    .await;
    let denied = alice
        .api_post(
            ep::DENY_ADDED_REQUEST2,
            json!({"account": BOB, "msg": "no"}),
        )
        .await;
    assert_eq!(denied.json(), json!({"retcode":0,"result":{"result":0}}));
    control(
        &sim,
        "POST",
        "/friend_request",
        Some(json!({"from": ME, "to": ALICE, "message": "again"})),
    )
    .await;
    control(
        &sim,
        "POST",
        "/friend_response",
        Some(json!({"from": ALICE, "to": ME, "accept": true})),
    )
    .await;
    let events = me.events(1).await;
    let PollEvent::System(s) = events.last().unwrap() else {
        panic!("{events:?}")
    };
    assert_eq!(
        (s.kind.as_str(), s.account, s.group_id),
        ("verify_pass_add", ALICE, Some(0))
    );

    // kick_message: Me logs in again elsewhere.
    let _elsewhere = login(&sim, ME, "password123").await;
    let events = me.events(1).await;
    let PollEvent::Kick(kick) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(
        (kick.from_uin, kick.to_uin, kick.msg_type, kick.show_reason),
        (10_000, ME, 48, 1)
    );
    assert!(kick.reason.starts_with("您的帐号在另一地点登录"));
    sim.shutdown().await;
}

#[tokio::test]
async fn webqq_and_http11_accounts_talk_and_see_each_other() {
    let sim = start_sim(&cast("")).await;
    let mut dave = Http11::new(&sim, DAVE);
    dave.login("dave").await;
    let mut me = login(&sim, ME, "password123").await;
    // Me came online: Dave sees MT=99 10.
    assert!(dave.messages().await.contains(&MsgEntry::Status {
        from: ME,
        status: Status::Online
    }));
    let dave_alias = me.alias_of(DAVE).await;

    // WebQQ → HTTP QQ 1.1: MT=9 with the face as its code.
    let content = json!(["hi ", ["face", 14], " there", ["font", {"name":"宋体","size":10,"style":[0,0,0],"color":"000000"}]]).to_string();
    let reply = me
        .channel_post(
            ep::SEND_BUDDY_MSG2,
            json!({"to": dave_alias, "face": 564, "content": content, "msg_id": 43_690_001}),
        )
        .await;
    assert_eq!(reply.text(), r#"{"retcode":0,"result":"ok"}"#);
    // The same msg_id again is acknowledged but not delivered twice.
    me.channel_post(
        ep::SEND_BUDDY_MSG2,
        json!({"to": dave_alias, "face": 564, "content": content, "msg_id": 43_690_001}),
    )
    .await;
    assert_eq!(
        dave.messages().await,
        [MsgEntry::User {
            from: ME,
            text: "hi [微笑] there".into()
        }]
    );

    // HTTP QQ 1.1 → WebQQ, and its status changes (30 is busy).
    dave.call(Params::CltMsg {
        to: ME,
        text: "你好 /微笑".into(),
    })
    .await;
    dave.call(Params::ChangeStat {
        status: Status::Busy,
    })
    .await;
    let events = me.events(2).await;
    let PollEvent::Message(m) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(
        (m.from_uin, content_text(&m.content)),
        (dave_alias, "你好 <face 14> ".to_owned())
    );
    let PollEvent::StatusChange(s) = &events[1] else {
        panic!("{events:?}")
    };
    assert_eq!(
        (s.uin, s.status.as_str(), s.client_type),
        (dave_alias, "busy", 1)
    );

    // WebQQ statuses as Dave sees them: away/silent → 30, callme → 10,
    // hidden → 20.
    for (status, code) in [
        ("away", Status::Busy),
        ("callme", Status::Online),
        ("silent", Status::Busy),
        ("hidden", Status::Offline),
    ] {
        let reply = me
            .channel_get(ep::CHANGE_STATUS2, &[("newstatus", status)])
            .await;
        assert_eq!(reply, json!({"retcode":0,"result":"ok"}));
        assert_eq!(
            dave.messages().await,
            [MsgEntry::Status {
                from: ME,
                status: code
            }],
            "{status}"
        );
    }
    assert_eq!(
        me.channel_get(ep::CHANGE_STATUS2, &[("newstatus", "sleepy")])
            .await["retcode"],
        100_000
    );

    // Group messages exist only on WebQQ: Dave's log has it, GetMsgEx not.
    let (gid, _) = me.group_ids().await;
    let sent = me
        .send(ep::SEND_QUN_MSG2, json!({"group_uin": gid}), "hello group")
        .await;
    assert_eq!(sent, json!({"retcode":0,"result":"ok"}));
    assert_eq!(
        me.send(ep::SEND_QUN_MSG2, json!({"group_uin": 42}), "x")
            .await,
        json!({"retcode":100001})
    );
    assert_eq!(dave.messages().await, []);
    let (_, log) = control(&sim, "GET", &format!("/received/{DAVE}"), None).await;
    let last = log.as_array().unwrap().last().unwrap().clone();
    assert_eq!(
        (
            last["kind"].clone(),
            last["group"].clone(),
            last["text"].clone(),
            last["via"].clone()
        ),
        (
            json!("group_message"),
            json!(GROUP),
            json!("hello group"),
            json!("webqq")
        )
    );

    // The echo account answers WebQQ messages.
    let echo = me.alias_of(ECHO).await;
    me.send(ep::SEND_BUDDY_MSG2, json!({"to": echo}), "ping")
        .await;
    let events = me.events(1).await;
    let PollEvent::Message(m) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(
        (m.from_uin, content_text(&m.content)),
        (echo, "ping ".to_owned())
    );

    // Dave logging in over HTTP QQ 1.1 does not touch Me's WebQQ session,
    // but Me logging in over HTTP QQ 1.1 kicks it.
    let (status, _) = control(
        &sim,
        "POST",
        "/group_message",
        Some(json!({"group": GROUP, "from": BOB, "text": "x"})),
    )
    .await;
    assert_eq!(status, 409, "Bob is no member");
    let mut me11 = Http11::new(&sim, ME);
    assert_eq!(
        me11.call(Params::GetMsgEx).await,
        ReplyBody::NotLoggedIn,
        "WebQQ is no HTTP QQ 1.1 session"
    );
    me11.login("password123").await;
    let events = me.events(1).await;
    assert!(matches!(events[0], PollEvent::Kick(_)), "{events:?}");
    sim.shutdown().await;
}

#[tokio::test]
async fn stale_sessions_get_121_once_then_103() {
    // Polls are held for 30 s: only a wake-up can end them early.
    let sim = start_sim(&cast("poll_hold_s: 3000")).await;
    let mut me = login(&sim, ME, "password123").await;
    // Wrong psessionid or clientid.
    let mut wrong = login_clone(&me);
    wrong.psessionid.push('0');
    assert_eq!(
        wrong.poll_raw().await.text(),
        r#"{"retcode":103,"errmsg":""}"#
    );
    let mut wrong = login_clone(&me);
    wrong.clientid = "1".into();
    assert_eq!(wrong.poll_raw().await.json()["retcode"], 103);
    let mut no_cookie = login_clone(&me);
    no_cookie.web.cookies.remove("ptwebqq");
    assert_eq!(no_cookie.poll_raw().await.json()["retcode"], 103);

    // Kicked while a poll is held: kick_message at once, then 121, then 103.
    let held = {
        let mut me = login_clone(&me);
        tokio::spawn(async move { me.poll().await })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut second = login(&sim, ME, "password123").await;
    let held = tokio::time::timeout(Duration::from_secs(10), held).await;
    let PollReply::Events(events) = held.expect("the kick ends the held poll").unwrap() else {
        panic!()
    };
    assert!(matches!(events[..], [PollEvent::Kick(_)]));
    assert_eq!(me.poll_raw().await.text(), r#"{"retcode":121,"t":"0"}"#);
    assert_eq!(me.poll_raw().await.json()["retcode"], 103);
    assert_eq!(me.friends().await["retcode"], 103);
    assert_eq!(
        me.channel_get(ep::CHANGE_STATUS2, &[("newstatus", "busy")])
            .await["retcode"],
        103
    );

    // logout2: ok, offline, then 103.
    assert_eq!(
        second.channel_get(ep::LOGOUT2, &[("ids", "")]).await,
        json!({"retcode":0,"result":"ok"})
    );
    assert_eq!(
        sim.world().presence(ME),
        Some(qqbridge::qq::sim::Presence::Offline)
    );
    assert_eq!(second.poll_raw().await.json()["retcode"], 103);
    assert_eq!(second.friends().await["retcode"], 103);
    sim.shutdown().await;

    // Idle expiry (session_idle_s 100 = 1 s): 121 once, then 103; the
    // heartbeat counts as activity (12 beats span longer than 1 s).
    let sim = start_sim(&cast("session_idle_s: 100, poll_hold_s: 0.5")).await;
    let mut me = login(&sim, ME, "password123").await;
    for _ in 0..12 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let tip = me
            .web
            .get(
                ep::GET_MSG_TIP,
                &[
                    ("uin", ""),
                    ("tp", "1"),
                    ("id", "0"),
                    ("retype", "1"),
                    ("rc", "1"),
                    ("lv", "3"),
                    ("t", "1"),
                ],
            )
            .await;
        assert_eq!(tip.text(), r#"{"retcode":0,"result":{"c":0,"s":0}}"#);
    }
    assert_eq!(me.poll_raw().await.json()["retcode"], 102);
    // Other calls are no activity: the session expires while they go on.
    let mut retcodes = Vec::new();
    for _ in 0..15 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        retcodes.push(me.friends().await["retcode"].clone());
    }
    assert_eq!(retcodes.first(), Some(&json!(0)));
    assert_eq!(retcodes.last(), Some(&json!(103)));
    assert_eq!(me.poll_raw().await.text(), r#"{"retcode":121,"t":"0"}"#);
    assert_eq!(me.poll_raw().await.json()["retcode"], 103);
    assert_eq!(
        sim.world().presence(ME),
        Some(qqbridge::qq::sim::Presence::Offline)
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn ptwebqq_rotation_answers_116_and_the_new_value_works() {
    let sim = start_sim(&cast("ptwebqq_rotate_s: 20")).await;
    let mut me = login(&sim, ME, "password123").await;
    let reply = me.poll_raw().await.json();
    assert_eq!(reply["retcode"], 116);
    let p = reply["p"].as_str().unwrap().to_owned();
    assert!(p.len() == 64 && p != me.ptwebqq);
    me.web.cookies.insert("ptwebqq".into(), p.clone());
    me.ptwebqq = p;
    assert_eq!(
        me.friends().await["retcode"],
        0,
        "the hash of the new ptwebqq"
    );
    let mut stale = login_clone(&me);
    stale.web.cookies.insert("ptwebqq".into(), "f".repeat(64));
    assert_eq!(stale.friends().await["retcode"], 103);
    sim.shutdown().await;
}

#[tokio::test]
async fn signature_heartbeat_and_the_quirk_flags() {
    let sim = start_sim(&cast(
        "reverse_poll_batches: false, append_trailing_space: false, qplus_tip: true, duplicate_event_rate: 1.0, json_unicode_escape: never",
    ))
    .await;
    let mut me = login(&sim, ME, "password123").await;
    let reply = me
        .api_post(ep::SET_LONG_NICK2, json!({"nlk": "我的签名 <b>"}))
        .await;
    assert_eq!(reply.text(), r#"{"retcode":0,"result":{"result":0}}"#);
    let (_, account) = control(&sim, "GET", &format!("/accounts/{ME}"), None).await;
    assert_eq!(account["long_nick"], "我的签名 <b>");
    assert_eq!(account["groups"], json!([GROUP]));

    let mut alice = login(&sim, ALICE, "alice").await;
    let me_alias = alice.alias_of(ME).await;
    alice
        .send(ep::SEND_BUDDY_MSG2, json!({"to": me_alias}), "one <&>")
        .await;
    alice
        .send(ep::SEND_BUDDY_MSG2, json!({"to": me_alias}), "two")
        .await;
    let raw = me.poll_raw().await.text();
    // Oldest first, no trailing space, the Q+ Web tip, raw UTF-8 but
    // markup still escaped.
    assert!(
        raw.contains(
            "\"one \\u003c\\u0026\\u003e【提示：此用户正在使用Q+ Web：http://web.qq.com/】\"]"
        ),
        "{raw}"
    );
    assert!(raw.contains("宋体"));
    let PollReply::Events(first) = parse_poll(&raw).unwrap() else {
        panic!()
    };
    let ids = |events: &[PollEvent]| -> Vec<u64> {
        events
            .iter()
            .map(|e| match e {
                PollEvent::Message(m) => m.msg_id2,
                _ => 0,
            })
            .collect()
    };
    assert!(ids(&first)[0] < ids(&first)[1], "oldest first");
    // Every event comes again (same msg_id2): the duplicate rate is 1.
    let PollReply::Events(again) = me.poll().await else {
        panic!()
    };
    assert_eq!(ids(&again), ids(&first));
    sim.shutdown().await;
}

#[tokio::test]
async fn the_demo_world_has_its_group_over_webqq() {
    let sim = start(SimConfig::new(Scenario::demo())).await.unwrap();
    let mut me = login(&sim, 10001, "demo").await;
    let friends = me.friends().await;
    assert_eq!(
        friends["result"]["categories"],
        json!([{"index":1,"sort":1,"name":"网友"}])
    );
    assert_eq!(friends["result"]["marknames"].as_array().unwrap().len(), 1);
    let list = me
        .api_post(ep::GET_GROUP_NAME_LIST_MASK2, json!({}))
        .await
        .json();
    assert_eq!(list["result"]["gnamelist"][0]["name"], "QQ 桥测试群");
    let (_, code) = me.group_ids().await;
    let info = me
        .api_get(ep::GET_GROUP_INFO_EXT2, &[("gcode", &code.to_string())])
        .await
        .json();
    assert_eq!(
        info["result"]["ginfo"]["members"].as_array().unwrap().len(),
        4
    );
    assert_eq!(info["result"]["cards"].as_array().unwrap().len(), 2);

    // The control API's group messages reach the WebQQ member.
    for (body, status) in [
        (
            json!({"group": 20001, "from": 10002, "text": "群里好"}),
            200,
        ),
        (json!({"group": 9, "from": 10002, "text": "x"}), 404),
        (json!({"group": 20001, "from": 99999, "text": "x"}), 404),
    ] {
        assert_eq!(
            control(&sim, "POST", "/group_message", Some(body)).await.0,
            status
        );
    }
    let events = me.events(1).await;
    let PollEvent::GroupMessage(g) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(content_text(&g.content), "群里好 ");
    let (_, log) = control(&sim, "GET", "/received/10003", None).await;
    assert!(log
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "group_message" && e["text"] == "群里好"));
    sim.shutdown().await;
}
