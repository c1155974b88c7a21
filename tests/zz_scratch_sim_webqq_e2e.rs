//! Scratch: the teammate's WebQQ client against the simulator (not committed).
use std::time::Duration;
use qqbridge::core::model::{ChatId, GroupNumber, Presence, RichText, Uin};
use qqbridge::qq::sim::{start, Scenario, SimConfig};
use qqbridge::qq::webqq::WebqqConnector;
use qqbridge::qq::{LoginRequest, LoginStep, QqConnector, QqEvent};
use qqbridge::secret::Secret;
use tokio::sync::mpsc;

#[tokio::test]
async fn client_against_sim() {
    let mut scenario = Scenario::demo();
    scenario.time_scale = 0.01;
    scenario.accounts[0].captcha = Some("abcd".into());
    let sim = start(SimConfig::new(scenario)).await.unwrap();
    let connector = WebqqConnector::new(&format!("http://{}", sim.protocol_addr()));
    let (tx, mut rx) = mpsc::channel(64);
    let step = connector.login(LoginRequest { uin: Uin(10001), password: Secret::new("demo"), presence: Presence::Online }, tx).await.unwrap();
    let session = match step {
        LoginStep::Done(_) => panic!("expected captcha"),
        LoginStep::NeedCaptcha { image, pending } => {
            assert!(image.starts_with(b"\x89PNG"));
            match pending.submit_captcha("ABCD".into()).await.unwrap() {
                LoginStep::Done(s) => s,
                _ => panic!(),
            }
        }
    };
    let contacts = session.contacts().await.unwrap();
    println!("contacts: {contacts:#?}");
    let groups = session.groups().await.unwrap();
    println!("groups: {groups:#?}");
    session.send(&ChatId::Buddy(Uin(10004)), &RichText::plain("ping")).await.unwrap();
    session.send(&ChatId::Group(GroupNumber(20001)), &RichText::plain("hello group")).await.unwrap();
    let http = reqwest::Client::new();
    http.post(format!("http://{}/group_message", sim.control_addr())).json(&serde_json::json!({"group":20001,"from":10002,"text":"群里 [微笑]"})).send().await.unwrap();
    http.post(format!("http://{}/status", sim.control_addr())).json(&serde_json::json!({"uin":10002,"status":"away"})).send().await.unwrap();
    http.post(format!("http://{}/friend_request", sim.control_addr())).json(&serde_json::json!({"from":10003,"to":10001,"message":"hi"})).send().await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 4 {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some(e)) => { println!("event: {e:?}"); seen.push(e); }
            other => panic!("{other:?} after {seen:?}"),
        }
    }
    session.set_presence(Presence::Busy).await.unwrap();
    session.set_signature("sig").await.unwrap();
    session.answer_request(Uin(10003), true, "").await.unwrap();
    // session via group
    session.send(&ChatId::Session { via_group: GroupNumber(20001), uin: Uin(10002) }, &RichText::plain("temp")).await.unwrap();
    let recv = http.get(format!("http://{}/received/10002", sim.control_addr())).send().await.unwrap().text().await.unwrap();
    println!("10002 received: {recv}");
    // kick
    let (tx2, _rx2) = mpsc::channel(64);
    let _ = connector.login(LoginRequest { uin: Uin(10001), password: Secret::new("demo"), presence: Presence::Online }, tx2).await;
    loop {
        match tokio::time::timeout(Duration::from_secs(10), rx.recv()).await {
            Ok(Some(QqEvent::SessionEnded(r))) => { println!("ended: {r:?}"); break; }
            Ok(Some(e)) => println!("event: {e:?}"),
            other => panic!("{other:?}"),
        }
    }
}
