//! The people at the ends of each path: a Matrix user (client-server API,
//! reading with long-polling `/sync`), an IRC user (a raw line client) and a
//! QQ user (a real WebQQ session against the simulator). Each records the
//! benchmark tags it receives in [`Arrivals`] the moment they arrive.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use qqbridge::core::model::{ChatId, GroupNumber, RichText, Uin};
use qqbridge::core::text::{render_plain, FaceStyle};
use qqbridge::qq::webqq::{WebqqConnector, WebqqOptions};
use qqbridge::qq::{LoginRequest, LoginStep, QqConnector, QqEvent, QqSession};
use qqbridge::secret::Secret;

use crate::arrivals::Arrivals;

// ---------------------------------------------------------------- Matrix

/// A Matrix user. A background task syncs forever, joins every room it is
/// invited to and records tags (as `place`) and every message it sees.
#[derive(Clone)]
pub struct MatrixUser {
    pub id: String,
    token: String,
    base: String,
    http: reqwest::Client,
    /// (room, sender, body) of every message seen, oldest first.
    pub messages: Arc<Mutex<Vec<(String, String, String)>>>,
    /// (room, inviter) of every invite seen.
    pub invites: Arc<Mutex<Vec<(String, String)>>>,
}

impl MatrixUser {
    pub async fn start(
        base: String,
        id: String,
        token: String,
        place: &str,
        arrivals: Arc<Arrivals>,
    ) -> Result<MatrixUser> {
        let http = reqwest::Client::builder()
            .no_proxy()
            .pool_max_idle_per_host(64)
            .build()?;
        let user = MatrixUser {
            id,
            token,
            base,
            http,
            messages: Arc::default(),
            invites: Arc::default(),
        };
        let syncer = Syncer {
            base: user.base.clone(),
            token: user.token.clone(),
            http: user.http.clone(),
            place: place.to_owned(),
            arrivals,
            messages: user.messages.clone(),
            invites: user.invites.clone(),
        };
        tokio::spawn(syncer.run());
        Ok(user)
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(60));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("{path}: {status} {v}");
        }
        Ok(v)
    }

    pub async fn say(&self, room: &str, text: &str) -> Result<()> {
        let txn = format!("{:032x}", rand::random::<u128>());
        let path = format!("/_matrix/client/v3/rooms/{room}/send/m.room.message/{txn}");
        self.call(
            reqwest::Method::PUT,
            &path,
            Some(json!({ "msgtype": "m.text", "body": text })),
        )
        .await?;
        Ok(())
    }

    pub async fn create_room(&self, body: Value) -> Result<String> {
        let v = self
            .call(
                reqwest::Method::POST,
                "/_matrix/client/v3/createRoom",
                Some(body),
            )
            .await?;
        v["room_id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("no room id in {v}"))
    }

    pub async fn join(&self, room: &str) -> Result<()> {
        let path = format!("/_matrix/client/v3/rooms/{room}/join");
        self.call(reqwest::Method::POST, &path, Some(json!({})))
            .await?;
        Ok(())
    }

    /// Waits until a message from `sender` (in `room`, if given) contains
    /// `text`; returns its room.
    pub async fn wait_message(
        &self,
        room: Option<&str>,
        sender: &str,
        text: &str,
    ) -> Result<String> {
        let found = || {
            self.messages.lock().ok()?.iter().find_map(|(r, s, b)| {
                (room.is_none_or(|room| room == r) && s == sender && b.contains(text))
                    .then(|| r.clone())
            })
        };
        poll(&format!("{} to see {text:?} from {sender}", self.id), found).await
    }

    /// Waits for an invite from `inviter` whose room is not in `except`.
    pub async fn wait_invite(&self, inviter: &str, except: &[String]) -> Result<String> {
        let found = || {
            self.invites
                .lock()
                .ok()?
                .iter()
                .find(|(r, i)| i == inviter && !except.contains(r))
                .map(|(r, _)| r.clone())
        };
        poll(&format!("{} to be invited by {inviter}", self.id), found).await
    }
}

struct Syncer {
    base: String,
    token: String,
    http: reqwest::Client,
    place: String,
    arrivals: Arc<Arrivals>,
    messages: Arc<Mutex<Vec<(String, String, String)>>>,
    invites: Arc<Mutex<Vec<(String, String)>>>,
}

impl Syncer {
    async fn run(self) {
        let mut since: Option<String> = None;
        let mut joined: std::collections::HashSet<String> = Default::default();
        loop {
            let mut url = format!("{}/_matrix/client/v3/sync?timeout=30000", self.base);
            if let Some(s) = &since {
                url.push_str(&format!("&since={s}"));
            }
            let reply = self
                .http
                .get(&url)
                .bearer_auth(&self.token)
                .timeout(Duration::from_secs(60))
                .send()
                .await;
            let v: Value = match reply {
                Ok(r) if r.status().is_success() => match r.json().await {
                    Ok(v) => v,
                    Err(_) => continue,
                },
                _ => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            since = v["next_batch"].as_str().map(str::to_owned);
            for (room, data) in v["rooms"]["join"].as_object().into_iter().flatten() {
                for e in data["timeline"]["events"].as_array().into_iter().flatten() {
                    if e["type"] != "m.room.message" {
                        continue;
                    }
                    let body = e["content"]["body"].as_str().unwrap_or_default();
                    self.arrivals.record(&self.place, body);
                    if let Ok(mut m) = self.messages.lock() {
                        m.push((
                            room.clone(),
                            e["sender"].as_str().unwrap_or_default().to_owned(),
                            body.to_owned(),
                        ));
                    }
                }
            }
            for (room, data) in v["rooms"]["invite"].as_object().into_iter().flatten() {
                let inviter = data["invite_state"]["events"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|e| {
                        e["type"] == "m.room.member" && e["content"]["membership"] == "invite"
                    })
                    .and_then(|e| e["sender"].as_str())
                    .unwrap_or_default()
                    .to_owned();
                if let Ok(mut i) = self.invites.lock() {
                    i.push((room.clone(), inviter));
                }
                if joined.insert(room.clone()) {
                    let url = format!("{}/_matrix/client/v3/rooms/{room}/join", self.base);
                    let req = self
                        .http
                        .post(url)
                        .bearer_auth(&self.token)
                        .json(&json!({}));
                    tokio::spawn(async move {
                        let _ = req.send().await;
                    });
                }
            }
        }
    }
}

// ---------------------------------------------------------------- IRC

/// An IRC user: a reader task answers PINGs and records the tags of every
/// PRIVMSG it receives (as `place`); other lines are kept for set-up checks.
pub struct IrcUser {
    pub nick: String,
    writer: Arc<tokio::sync::Mutex<OwnedWriteHalf>>,
    pub lines: Arc<Mutex<Vec<String>>>,
}

impl IrcUser {
    pub async fn connect(
        addr: std::net::SocketAddr,
        nick: &str,
        channels: &[&str],
        place: &str,
        arrivals: Arc<Arrivals>,
    ) -> Result<IrcUser> {
        let stream = TcpStream::connect(addr).await.context("IRC connect")?;
        stream.set_nodelay(true)?;
        let (r, mut w) = stream.into_split();
        let mut reader = BufReader::new(r);
        w.write_all(format!("NICK {nick}\r\nUSER {nick} 0 * :bench\r\n").as_bytes())
            .await?;
        for c in channels {
            w.write_all(format!("JOIN {c}\r\n").as_bytes()).await?;
        }
        // Until every channel is joined, read here.
        let mut pending: Vec<String> = channels
            .iter()
            .map(|c| format!(" 366 {nick} {c} "))
            .collect();
        let mut line = String::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !pending.is_empty() {
            line.clear();
            let n = tokio::time::timeout_at(deadline, reader.read_line(&mut line))
                .await
                .map_err(|_| anyhow!("{nick}: no JOIN confirmation"))??;
            if n == 0 {
                bail!("{nick}: the IRC server closed the connection");
            }
            if let Some(rest) = line.strip_prefix("PING") {
                w.write_all(format!("PONG{}\r\n", rest.trim_end()).as_bytes())
                    .await?;
            }
            pending.retain(|p| !line.contains(p.as_str()));
        }
        let writer = Arc::new(tokio::sync::Mutex::new(w));
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let task_writer = writer.clone();
        let task_lines = lines.clone();
        let place = place.to_owned();
        tokio::spawn(async move {
            let mut line = String::new();
            loop {
                line.clear();
                match reader.read_line(&mut line).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                let l = line.trim_end();
                if let Some(rest) = l.strip_prefix("PING") {
                    let _ = task_writer
                        .lock()
                        .await
                        .write_all(format!("PONG{rest}\r\n").as_bytes())
                        .await;
                    continue;
                }
                // ":nick!u@h PRIVMSG #chan :text"
                let mut parts = l.splitn(4, ' ');
                let (_, cmd, _, text) = (parts.next(), parts.next(), parts.next(), parts.next());
                if cmd == Some("PRIVMSG") {
                    arrivals.record(&place, text.unwrap_or_default().trim_start_matches(':'));
                } else if let Ok(mut v) = task_lines.lock() {
                    v.push(l.to_owned());
                }
            }
        });
        Ok(IrcUser {
            nick: nick.to_owned(),
            writer,
            lines,
        })
    }

    pub async fn send(&self, line: &str) -> Result<()> {
        self.writer
            .lock()
            .await
            .write_all(format!("{line}\r\n").as_bytes())
            .await?;
        Ok(())
    }

    /// Waits for a non-PRIVMSG line containing `needle`.
    pub async fn wait_line(&self, needle: &str) -> Result<()> {
        let found = || {
            self.lines
                .lock()
                .ok()?
                .iter()
                .any(|l| l.contains(needle))
                .then_some(())
        };
        poll(&format!("{} to see {needle:?}", self.nick), found).await
    }
}

// ---------------------------------------------------------------- QQ

/// A QQ user: a WebQQ session of the simulator's account `uin`; its events
/// task records the tags of every message it receives (as `place`).
pub struct QqUser {
    pub session: Arc<dyn QqSession>,
}

impl QqUser {
    pub async fn login(
        base: &str,
        uin: u64,
        place: &str,
        arrivals: Arc<Arrivals>,
    ) -> Result<QqUser> {
        let connector = WebqqConnector::with_options(base, WebqqOptions::default());
        let (tx, mut rx) = mpsc::channel(65_536);
        let step = connector
            .login(
                LoginRequest {
                    uin: Uin(uin),
                    password: Secret::new("demo".to_owned()),
                    presence: qqbridge::core::model::Presence::Online,
                    resume: false,
                },
                tx,
            )
            .await?;
        let LoginStep::Done(session) = step else {
            bail!("QQ {uin} asked for a captcha");
        };
        let place = place.to_owned();
        tokio::spawn(async move {
            while let Some(event) = rx.recv().await {
                if let QqEvent::Message { text, .. } = *event {
                    arrivals.record(&place, &render_plain(&text, FaceStyle::Name));
                }
            }
        });
        Ok(QqUser { session })
    }

    pub async fn say_in_group(&self, group: u64, text: &str) -> Result<()> {
        self.session
            .send(&ChatId::Group(GroupNumber(group)), &RichText::plain(text))
            .await?;
        Ok(())
    }
}

/// Polls `found` every 20 ms for up to 60 s.
pub async fn poll<T>(what: &str, mut found: impl FnMut() -> Option<T>) -> Result<T> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = found() {
            return Ok(v);
        }
        if tokio::time::Instant::now() > deadline {
            bail!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
