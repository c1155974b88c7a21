//! Proves the real-server harnesses work: a real Synapse (users, rooms, an
//! appservice and its ghosts, restart) and a real ngIRCd (clients that see
//! each other, passwords, hundreds of connections from one IP, restart).
//! Every test starts its own servers on its own ports and temp dirs.

mod support;

use anyhow::{bail, Result};
use futures::StreamExt;
use serde_json::{json, Value};

use support::ngircd::{IrcClient, Ngircd, NgircdOptions};
use support::synapse::{random_token, AppserviceRegistration, Synapse, SynapseOptions};

// ---------------------------------------------------------------- Matrix

/// A minimal Matrix client-server API caller: a token, and optionally an
/// appservice identity assertion (`?user_id=`).
struct Mx<'a> {
    hs: &'a Synapse,
    token: String,
    as_user: Option<String>,
}

impl<'a> Mx<'a> {
    fn new(hs: &'a Synapse, token: &str) -> Self {
        Mx {
            hs,
            token: token.into(),
            as_user: None,
        }
    }

    fn as_ghost(hs: &'a Synapse, as_token: &str, user_id: &str) -> Self {
        Mx {
            hs,
            token: as_token.into(),
            as_user: Some(user_id.into()),
        }
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let mut req = self
            .hs
            .http()
            .request(method.clone(), format!("{}{path}", self.hs.base_url()))
            .bearer_auth(&self.token);
        if let Some(user) = &self.as_user {
            req = req.query(&[("user_id", user)]);
        }
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let reply: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{method} {path}: {status} {reply}");
        }
        Ok(reply)
    }

    async fn post(&self, path: &str, body: Value) -> Result<Value> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> Result<Value> {
        self.call(reqwest::Method::GET, path, None).await
    }

    async fn send_text(&self, room_id: &str, text: &str) -> Result<String> {
        let txn = random_token(16);
        let reply = self
            .call(
                reqwest::Method::PUT,
                &format!("/_matrix/client/v3/rooms/{room_id}/send/m.room.message/{txn}"),
                Some(json!({"msgtype": "m.text", "body": text})),
            )
            .await?;
        Ok(reply["event_id"].as_str().unwrap_or_default().to_string())
    }

    /// `(sender, body)` of the room's latest messages, oldest first.
    async fn texts(&self, room_id: &str) -> Result<Vec<(String, String)>> {
        let reply = self
            .get(&format!(
                "/_matrix/client/v3/rooms/{room_id}/messages?dir=b&limit=50"
            ))
            .await?;
        let mut texts: Vec<(String, String)> = reply["chunk"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["type"] == "m.room.message")
            .map(|e| {
                (
                    e["sender"].as_str().unwrap_or_default().to_string(),
                    e["content"]["body"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .collect();
        texts.reverse();
        Ok(texts)
    }
}

fn smoke_registration() -> AppserviceRegistration {
    AppserviceRegistration::new("qqbridge-smoke", "_qq_bot", None)
        .exclusive_users("@_qq_.*:localhost")
}

#[tokio::test]
async fn synapse_user_room_and_appservice_ghost() -> Result<()> {
    let reg = smoke_registration();
    let yaml = reg.to_yaml();
    assert!(yaml.contains("rate_limited: false"), "{yaml}");
    let hs = Synapse::start(SynapseOptions::with_appservice(yaml)).await?;

    // A person, registered with the shared secret, in a room of their own.
    let (alice_id, alice_token) = hs.register_user("alice", "alice-password", false).await?;
    assert_eq!(alice_id, "@alice:localhost");
    let alice = Mx::new(&hs, &alice_token);
    let whoami = alice.get("/_matrix/client/v3/account/whoami").await?;
    assert_eq!(whoami["user_id"], "@alice:localhost");
    let room = alice
        .post(
            "/_matrix/client/v3/createRoom",
            json!({"preset": "public_chat", "name": "smoke"}),
        )
        .await?;
    let room_id = room["room_id"].as_str().expect("room_id").to_string();
    let event_id = alice.send_text(&room_id, "hello from alice").await?;
    assert!(event_id.starts_with('$'), "{event_id}");

    // An admin, too.
    let (_, admin_token) = hs.register_user("root", "root-password", true).await?;
    let admin = Mx::new(&hs, &admin_token);
    let me = admin
        .get("/_synapse/admin/v2/users/@root:localhost")
        .await?;
    assert_eq!(me["admin"], true);

    // The appservice registers a ghost in its exclusive namespace...
    let bridge = Mx::new(&hs, &reg.as_token);
    let ghost = bridge
        .post(
            "/_matrix/client/v3/register",
            json!({"type": "m.login.application_service", "username": "_qq_10002"}),
        )
        .await?;
    assert_eq!(ghost["user_id"], "@_qq_10002:localhost");
    // ...but not outside it.
    let outside = bridge
        .post(
            "/_matrix/client/v3/register",
            json!({"type": "m.login.application_service", "username": "mallory"}),
        )
        .await;
    let err = outside.expect_err("an appservice can't register outside its namespace");
    assert!(err.to_string().contains("M_EXCLUSIVE"), "{err:#}");

    // The ghost joins and speaks, through the appservice token.
    let ghost = Mx::as_ghost(&hs, &reg.as_token, "@_qq_10002:localhost");
    let joined = ghost
        .post(&format!("/_matrix/client/v3/join/{room_id}"), json!({}))
        .await?;
    assert_eq!(joined["room_id"], room_id.as_str());
    let me = ghost.get("/_matrix/client/v3/account/whoami").await?;
    assert_eq!(me["user_id"], "@_qq_10002:localhost");
    ghost.send_text(&room_id, "hello from QQ 10002").await?;

    // Alice sees both messages, from the right senders, in order.
    assert_eq!(
        alice.texts(&room_id).await?,
        vec![
            (
                "@alice:localhost".to_string(),
                "hello from alice".to_string()
            ),
            (
                "@_qq_10002:localhost".to_string(),
                "hello from QQ 10002".to_string()
            ),
        ]
    );
    let members = alice
        .get(&format!(
            "/_matrix/client/v3/rooms/{room_id}/joined_members"
        ))
        .await?;
    assert!(
        members["joined"]["@_qq_10002:localhost"].is_object(),
        "{members}"
    );
    Ok(())
}

#[tokio::test]
async fn synapse_restart_keeps_port_and_data() -> Result<()> {
    let mut hs = Synapse::start(SynapseOptions::default()).await?;
    let url = hs.base_url();
    let (_, token) = hs.register_user("bob", "bob-password", false).await?;
    let room_id = {
        let bob = Mx::new(&hs, &token);
        let room = bob.post("/_matrix/client/v3/createRoom", json!({})).await?;
        let room_id = room["room_id"].as_str().expect("room_id").to_string();
        bob.send_text(&room_id, "before the outage").await?;
        room_id
    };

    hs.stop().await?;
    assert!(!hs.is_running());
    let down = hs
        .http()
        .get(format!("{url}/_matrix/client/versions"))
        .send()
        .await;
    assert!(down.is_err(), "nothing answers while Synapse is down");

    hs.resume().await?;
    assert_eq!(hs.base_url(), url);
    let bob = Mx::new(&hs, &token);
    bob.send_text(&room_id, "after the outage").await?;
    let bodies: Vec<String> = bob
        .texts(&room_id)
        .await?
        .into_iter()
        .map(|t| t.1)
        .collect();
    assert_eq!(bodies, ["before the outage", "after the outage"]);

    hs.restart().await?;
    let whoami = Mx::new(&hs, &token)
        .get("/_matrix/client/v3/account/whoami")
        .await?;
    assert_eq!(whoami["user_id"], "@bob:localhost");
    Ok(())
}

// ---------------------------------------------------------------- IRC

async fn irc_user(irc: &Ngircd, nick: &str) -> Result<IrcClient> {
    IrcClient::connect_registered(irc, nick).await
}

#[tokio::test]
async fn ngircd_clients_see_each_other() -> Result<()> {
    let irc = Ngircd::start(NgircdOptions::default()).await?;
    let mut alice = irc_user(&irc, "alice").await?;
    let mut bob = irc_user(&irc, "bob").await?;

    alice.send("JOIN #qqbridge").await?;
    alice.expect(" 366 alice #qqbridge ").await?;
    bob.send("JOIN #qqbridge").await?;
    bob.expect(" 366 bob #qqbridge ").await?;
    alice.expect(":bob!").await?;

    alice.send("PRIVMSG #qqbridge :hello bob").await?;
    let line = bob.expect("PRIVMSG #qqbridge").await?;
    assert!(line.starts_with(":alice!"), "{line}");
    assert!(line.ends_with(":hello bob"), "{line}");

    bob.send("PRIVMSG #qqbridge :hi alice").await?;
    let line = alice.expect("PRIVMSG #qqbridge").await?;
    assert!(
        line.starts_with(":bob!") && line.ends_with(":hi alice"),
        "{line}"
    );

    // Direct messages too; a 22-character nick fits.
    bob.send("NICK qq_1234567890_longnick").await?;
    alice.expect("NICK").await?;
    bob.send("PRIVMSG alice :psst").await?;
    let line = alice.expect("PRIVMSG alice").await?;
    assert!(line.starts_with(":qq_1234567890_longnick!"), "{line}");

    // The configured operator works.
    let (name, pass) = irc.oper().expect("an operator is configured");
    alice.send(&format!("OPER {name} {pass}")).await?;
    alice.expect(" 381 alice ").await?;
    Ok(())
}

#[tokio::test]
async fn ngircd_restart_on_same_port() -> Result<()> {
    let mut irc = Ngircd::start(NgircdOptions::default()).await?;
    let addr = irc.addr();
    let mut before = irc_user(&irc, "carol").await?;

    irc.restart().await?;
    assert_eq!(irc.addr(), addr);
    // The old connection went down with the server...
    before.until_closed().await?;
    // ...and a new one registers on the same address.
    let mut after = irc_user(&irc, "carol").await?;
    after.send("JOIN #back").await?;
    after.expect(" 366 carol #back ").await?;

    irc.stop().await?;
    assert!(!irc.is_running());
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    Ok(())
}

#[tokio::test]
async fn ngircd_load_variant_password_and_many_connections() -> Result<()> {
    let password = random_token(12);
    let irc = Ngircd::start(NgircdOptions {
        password: Some(password.clone()),
        ..NgircdOptions::without_flood_control()
    })
    .await?;
    // ngIRCd itself confirms the option is known and in force.
    let log = std::fs::read_to_string(irc.log_path())?;
    assert!(log.contains("'MaxPenaltyTime') is set to 0"), "{log}");
    assert!(!log.contains("Unknown variable"), "{log}");

    // Without the password, no entry.
    let mut stranger = IrcClient::connect(irc.addr()).await?;
    stranger.send("NICK stranger").await?;
    stranger.send("USER stranger 0 * :x").await?;
    let lines = stranger.until_closed().await?;
    assert!(
        lines
            .iter()
            .any(|l| l.contains(" 464 ") || l.starts_with("ERROR")),
        "{lines:?}"
    );

    // 250 puppets from 127.0.0.1, each in the channel. ngIRCd listens
    // with a short backlog: connect a few at a time, as the bridge must.
    let puppets = futures::stream::iter(0..250)
        .map(|i| {
            let irc = &irc;
            async move {
                let nick = format!("qq_{i}");
                let mut c = irc_user(irc, &nick).await?;
                c.send("JOIN #load").await?;
                c.expect(&format!(" 366 {nick} #load ")).await?;
                anyhow::Ok(c)
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    let mut puppets = puppets.into_iter().collect::<Result<Vec<_>>>()?;
    assert_eq!(puppets.len(), 250);

    // One client floods 100 messages; without penalties they all arrive,
    // in order.
    let mut listener = puppets.pop().unwrap();
    let mut talker = puppets.pop().unwrap();
    for i in 0..100 {
        talker.send(&format!("PRIVMSG #load :burst {i}")).await?;
    }
    for i in 0..100 {
        let line = listener.expect("PRIVMSG #load").await?;
        assert!(line.ends_with(&format!(":burst {i}")), "{line}");
    }
    Ok(())
}
