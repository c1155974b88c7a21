mod support;
use std::time::Instant;
use support::ngircd::{IrcClient, Ngircd, NgircdOptions};
use support::synapse::{Synapse, SynapseOptions};

#[tokio::test]
async fn timing() {
    let t = Instant::now();
    let mut irc = Ngircd::start(NgircdOptions::default()).await.unwrap();
    eprintln!("ngircd start {:?}", t.elapsed());
    let t = Instant::now();
    irc.restart().await.unwrap();
    eprintln!("ngircd restart {:?}", t.elapsed());
    let t = Instant::now();
    let mut a = IrcClient::connect_registered(&irc, "a").await.unwrap();
    eprintln!("register one {:?}", t.elapsed());
    let t = Instant::now();
    for i in 0..10 { a.send(&format!("PRIVMSG a :x{i}")).await.unwrap(); }
    a.expect(":x9").await.unwrap();
    eprintln!("10 msgs with flood control {:?}", t.elapsed());
    drop(irc);
    let irc = Ngircd::start(NgircdOptions::without_flood_control()).await.unwrap();
    let t = Instant::now();
    let mut cs = vec![];
    for i in 0..250 { cs.push(IrcClient::connect_registered(&irc, &format!("p{i}")).await.unwrap()); if i % 50 == 49 { eprintln!("{i} registered {:?}", t.elapsed()); } }
    let t = Instant::now();
    let mut a = IrcClient::connect_registered(&irc, "a").await.unwrap();
    for i in 0..100 { a.send(&format!("PRIVMSG a :x{i}")).await.unwrap(); }
    a.expect(":x99").await.unwrap();
    eprintln!("100 msgs without flood control {:?}", t.elapsed());
    let t = Instant::now();
    let mut hs = Synapse::start(SynapseOptions::default()).await.unwrap();
    eprintln!("synapse start {:?}", t.elapsed());
    let t = Instant::now();
    hs.restart().await.unwrap();
    eprintln!("synapse restart {:?}", t.elapsed());
    let t = Instant::now();
    hs.stop().await.unwrap();
    eprintln!("synapse stop {:?}", t.elapsed());
}
