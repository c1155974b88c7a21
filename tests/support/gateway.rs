//! Test support for the IRC gateway tests: an in-memory fake QQ
//! network (connector + sessions), a bridge rig (SQLite store in a temp
//! dir, core, gateway on 127.0.0.1:0), an IRC user driven by the `irc`
//! crate's client, a raw line client for protocol edge cases, and a log
//! capture to check that passwords never reach a log.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use irc::client::prelude::{Client, Config as IrcConfig};
use irc::proto::{Command, Message, Response};

use qqbridge::config::{GatewayConfig, PermissionLevel};
use qqbridge::core::model::*;
use qqbridge::core::BridgeCore;
use qqbridge::irc::gateway::{self, GatewayHandle};
use qqbridge::qq::*;
use qqbridge::store::{SqliteStore, Store};

/// How long any wait in these tests may take before it counts as a failure.
pub const WAIT: Duration = Duration::from_secs(15);

// ---------------------------------------------------------------- logs

fn log_buffer() -> &'static Mutex<Vec<u8>> {
    static LOGS: OnceLock<Mutex<Vec<u8>>> = OnceLock::new();
    LOGS.get_or_init(|| Mutex::new(Vec::new()))
}

struct LogWriter;

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        log_buffer().lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures every log line of this test binary, at trace level.
pub fn capture_logs() {
    let _ = tracing_subscriber::fmt()
        // The test's own IRC client library logs what it sends; only the
        // bridge's logs matter here.
        .with_env_filter("trace,irc=off")
        .with_writer(|| LogWriter)
        .try_init();
}

/// Everything logged so far.
pub fn captured_logs() -> String {
    String::from_utf8_lossy(&log_buffer().lock().unwrap()).into_owned()
}

// ---------------------------------------------------------------- fake QQ

/// A demo-like QQ network: accounts 10001-10004 (password `demo`), all
/// friends, Chinese nicks.
pub struct FakeNet {
    pub directory: Mutex<HashMap<Uin, String>>,
    pub passwords: Mutex<HashMap<Uin, String>>,
    /// Buddies of each account.
    pub contacts: Mutex<HashMap<Uin, Vec<Contact>>>,
    /// Groups of each account (reported when `groups_enabled`).
    pub groups: Mutex<HashMap<Uin, Vec<GroupInfo>>>,
    pub groups_enabled: Mutex<bool>,
    /// (account, chat, text) of every message sent.
    pub sent: Mutex<Vec<(Uin, ChatId, RichText)>>,
    /// (account, presence) of every status change.
    pub presence_set: Mutex<Vec<(Uin, Presence)>>,
    /// (account, uin, accept) of every friend request answered.
    pub answered: Mutex<Vec<(Uin, Uin, bool)>>,
    pub events: Mutex<HashMap<Uin, EventSender>>,
    pub logins: Mutex<Vec<Uin>>,
    pub logouts: Mutex<Vec<Uin>>,
    /// When set, every send fails with this error.
    pub send_error: Mutex<Option<QqError>>,
    next_remote: Mutex<u64>,
}

pub fn contact(uin: u64, nick: &str, presence: Presence) -> Contact {
    Contact {
        uin: Uin(uin),
        nick: nick.to_owned(),
        mark_name: None,
        presence,
        face: 0,
        category: None,
    }
}

impl FakeNet {
    pub fn demo() -> Arc<FakeNet> {
        let directory: HashMap<Uin, String> = [
            (10001, "演示用户"),
            (10002, "微程"),
            (10003, "Hackfan 好"),
            (10004, "小企鹅"),
            (10005, "新朋友"),
        ]
        .into_iter()
        .map(|(u, n)| (Uin(u), n.to_owned()))
        .collect();
        let passwords = (10001..=10005)
            .map(|u| (Uin(u), "demo".to_owned()))
            .collect();
        let mut contacts = HashMap::new();
        for me in 10001..=10004u64 {
            let list = (10001..=10004u64)
                .filter(|u| *u != me)
                .map(|u| contact(u, &directory[&Uin(u)], Presence::Online))
                .collect();
            contacts.insert(Uin(me), list);
        }
        Arc::new(FakeNet {
            directory: Mutex::new(directory),
            passwords: Mutex::new(passwords),
            contacts: Mutex::new(contacts),
            groups: Mutex::new(HashMap::new()),
            groups_enabled: Mutex::new(false),
            sent: Mutex::new(Vec::new()),
            presence_set: Mutex::new(Vec::new()),
            answered: Mutex::new(Vec::new()),
            events: Mutex::new(HashMap::new()),
            logins: Mutex::new(Vec::new()),
            logouts: Mutex::new(Vec::new()),
            send_error: Mutex::new(None),
            next_remote: Mutex::new(1),
        })
    }

    pub fn set_password(&self, uin: u64, password: &str) {
        self.passwords
            .lock()
            .unwrap()
            .insert(Uin(uin), password.to_owned());
    }

    pub fn set_contacts(&self, owner: u64, list: Vec<Contact>) {
        self.contacts.lock().unwrap().insert(Uin(owner), list);
    }

    pub fn set_groups(&self, owner: u64, list: Vec<GroupInfo>) {
        *self.groups_enabled.lock().unwrap() = true;
        self.groups.lock().unwrap().insert(Uin(owner), list);
    }

    pub async fn emit(&self, owner: u64, event: QqEvent) {
        let tx = self
            .events
            .lock()
            .unwrap()
            .get(&Uin(owner))
            .cloned()
            .expect("account logged in");
        tx.send(Box::new(event)).await.expect("core listens");
    }

    /// A buddy message from `from` to `owner`.
    pub async fn message(&self, owner: u64, from: u64, text: &str) {
        self.message_in(owner, ChatId::Buddy(Uin(from)), from, text)
            .await;
    }

    pub async fn message_in(&self, owner: u64, chat: ChatId, from: u64, text: &str) {
        let id = {
            let mut next = self.next_remote.lock().unwrap();
            *next += 1;
            *next
        };
        self.emit(
            owner,
            QqEvent::Message {
                chat,
                sender: Uin(from),
                sender_name: None,
                text: RichText::plain(text),
                remote_id: Some(format!("r{id}")),
            },
        )
        .await;
    }

    /// `uin` changes status as seen by `owner`.
    pub async fn presence(&self, owner: u64, uin: u64, presence: Presence) {
        if let Some(list) = self.contacts.lock().unwrap().get_mut(&Uin(owner)) {
            for c in list.iter_mut().filter(|c| c.uin == Uin(uin)) {
                c.presence = presence;
            }
        }
        self.emit(
            owner,
            QqEvent::Presence {
                uin: Uin(uin),
                presence,
            },
        )
        .await;
    }

    pub fn sent_texts(&self) -> Vec<(ChatId, String, bool)> {
        self.sent
            .lock()
            .unwrap()
            .iter()
            .map(|(_, chat, text)| {
                (
                    *chat,
                    qqbridge::core::text::render_plain(text, qqbridge::core::text::FaceStyle::Name),
                    text.action,
                )
            })
            .collect()
    }

    pub fn is_logged_in(&self, uin: u64) -> bool {
        self.events.lock().unwrap().contains_key(&Uin(uin))
    }
}

pub struct FakeConnector(pub Arc<FakeNet>);

pub struct FakeSession {
    uin: Uin,
    net: Arc<FakeNet>,
}

#[async_trait]
impl QqConnector for FakeConnector {
    fn protocol(&self) -> Protocol {
        Protocol::Http11
    }

    async fn login(
        &self,
        request: LoginRequest,
        events: EventSender,
    ) -> Result<LoginStep, QqError> {
        let expected = self.0.passwords.lock().unwrap().get(&request.uin).cloned();
        if expected.as_deref() != Some(request.password.expose()) {
            return Err(QqError::BadCredentials);
        }
        self.0.logins.lock().unwrap().push(request.uin);
        self.0.events.lock().unwrap().insert(request.uin, events);
        Ok(LoginStep::Done(Arc::new(FakeSession {
            uin: request.uin,
            net: self.0.clone(),
        })))
    }
}

#[async_trait]
impl QqSession for FakeSession {
    fn uin(&self) -> Uin {
        self.uin
    }
    fn protocol(&self) -> Protocol {
        Protocol::Http11
    }
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            groups: *self.net.groups_enabled.lock().unwrap(),
            temporary_sessions: true,
            search: false,
            signature: false,
        }
    }
    fn own_nick(&self) -> Option<String> {
        self.net.directory.lock().unwrap().get(&self.uin).cloned()
    }
    async fn contacts(&self) -> Result<Vec<Contact>, QqError> {
        Ok(self
            .net
            .contacts
            .lock()
            .unwrap()
            .get(&self.uin)
            .cloned()
            .unwrap_or_default())
    }
    async fn groups(&self) -> Result<Vec<GroupInfo>, QqError> {
        Ok(self
            .net
            .groups
            .lock()
            .unwrap()
            .get(&self.uin)
            .cloned()
            .unwrap_or_default())
    }
    async fn send(&self, chat: &ChatId, text: &RichText) -> Result<(), QqError> {
        if let Some(error) = self.net.send_error.lock().unwrap().clone() {
            return Err(error);
        }
        self.net
            .sent
            .lock()
            .unwrap()
            .push((self.uin, *chat, text.clone()));
        Ok(())
    }
    async fn set_presence(&self, presence: Presence) -> Result<(), QqError> {
        self.net
            .presence_set
            .lock()
            .unwrap()
            .push((self.uin, presence));
        Ok(())
    }
    async fn profile(&self, uin: Uin) -> Result<Profile, QqError> {
        let nick = self
            .net
            .directory
            .lock()
            .unwrap()
            .get(&uin)
            .cloned()
            .ok_or(QqError::UnknownContact(uin.to_string()))?;
        Ok(Profile {
            uin: Some(uin),
            nick,
            face: None,
            gender: Some("female".into()),
            age: Some(19),
            province: Some("江苏".into()),
            details: vec![("city".into(), "南京".into())],
        })
    }
    async fn add_buddy(&self, _: Uin, _: &str) -> Result<AddOutcome, QqError> {
        Ok(AddOutcome::RequestSent)
    }
    async fn answer_request(&self, uin: Uin, accept: bool, _: &str) -> Result<(), QqError> {
        self.net
            .answered
            .lock()
            .unwrap()
            .push((self.uin, uin, accept));
        if accept {
            let nick = self
                .net
                .directory
                .lock()
                .unwrap()
                .get(&uin)
                .cloned()
                .unwrap_or_else(|| uin.to_string());
            self.net
                .contacts
                .lock()
                .unwrap()
                .entry(self.uin)
                .or_default()
                .push(contact(uin.0, &nick, Presence::Online));
            let tx = self.net.events.lock().unwrap().get(&self.uin).cloned();
            if let Some(tx) = tx {
                let _ = tx.send(Box::new(QqEvent::ContactsChanged)).await;
            }
        }
        Ok(())
    }
    async fn remove_buddy(&self, _: Uin) -> Result<(), QqError> {
        Ok(())
    }
    async fn search(&self, _: &SearchCriteria) -> Result<Vec<Profile>, QqError> {
        Err(QqError::Unsupported("search".into()))
    }
    async fn set_signature(&self, _: &str) -> Result<(), QqError> {
        Err(QqError::Unsupported("signature".into()))
    }
    async fn logout(&self) -> Result<(), QqError> {
        self.net.logouts.lock().unwrap().push(self.uin);
        let tx = self.net.events.lock().unwrap().remove(&self.uin);
        if let Some(tx) = tx {
            let _ = tx
                .send(Box::new(QqEvent::SessionEnded(EndReason::LoggedOut)))
                .await;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- rig

/// A gateway config for tests: any free port, generous flood limits so
/// tests are not slowed down, short grace.
pub fn test_config() -> GatewayConfig {
    GatewayConfig {
        enabled: true,
        listen: "127.0.0.1:0".parse().unwrap(),
        flood_burst: 1000,
        flood_lines_per_s: 1000.0,
        ..GatewayConfig::default()
    }
}

/// A running bridge: store, core, gateway, fake QQ.
pub struct Rig {
    pub dir: Arc<tempfile::TempDir>,
    pub db: PathBuf,
    pub store: Arc<dyn Store>,
    pub core: Arc<BridgeCore>,
    pub net: Arc<FakeNet>,
    pub gateway: GatewayHandle,
    pub config: GatewayConfig,
}

impl Rig {
    pub async fn start(config: GatewayConfig) -> Rig {
        let dir = Arc::new(tempfile::tempdir().unwrap());
        Rig::start_in(dir, FakeNet::demo(), config).await
    }

    pub async fn start_in(
        dir: Arc<tempfile::TempDir>,
        net: Arc<FakeNet>,
        config: GatewayConfig,
    ) -> Rig {
        capture_logs();
        let db = dir.path().join("bridge.db");
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&db).unwrap());
        let core = BridgeCore::new(
            store.clone(),
            vec![Arc::new(FakeConnector(net.clone()))],
            Protocol::Http11,
            Arc::new(|_: &str| Some(PermissionLevel::User)),
        );
        let gateway = gateway::start(core.clone(), store.clone(), &config)
            .await
            .unwrap();
        core.restore_logins().await.unwrap();
        Rig {
            dir,
            db,
            store,
            core,
            net,
            gateway,
            config,
        }
    }

    /// Stops this bridge and starts a new one on the same database and fake
    /// QQ network, as after a restart.
    pub async fn restart(self) -> Rig {
        self.gateway.shutdown().await;
        self.core.shutdown().await;
        let Rig {
            dir, net, config, ..
        } = self;
        Rig::start_in(dir, net, config).await
    }

    pub fn addr(&self) -> SocketAddr {
        self.gateway.local_addr()
    }
}

/// Waits until `cond` holds (polling), failing the test after [`WAIT`].
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------- IRC user (irc crate)

/// A person on IRC, driven by the `irc` crate's client.
pub struct IrcUser {
    pub client: Client,
    task: tokio::task::JoinHandle<()>,
    rx: mpsc::UnboundedReceiver<Message>,
    /// Everything received so far.
    pub seen: Vec<Message>,
    /// Index of the first message not yet consumed by `wait_for`.
    cursor: usize,
}

impl IrcUser {
    pub async fn connect(addr: SocketAddr, nick: &str) -> IrcUser {
        IrcUser::connect_with(addr, nick, &[]).await
    }

    pub async fn connect_with(
        addr: SocketAddr,
        nick: &str,
        caps: &[irc::proto::Capability],
    ) -> IrcUser {
        let config = IrcConfig {
            nickname: Some(nick.to_owned()),
            username: Some(nick.to_lowercase()),
            realname: Some(format!("{nick} on IRC")),
            server: Some(addr.ip().to_string()),
            port: Some(addr.port()),
            ping_time: Some(600),
            ping_timeout: Some(600),
            max_messages_in_burst: Some(10_000),
            burst_window_length: Some(1),
            ..IrcConfig::default()
        };
        let mut client = Client::from_config(config).await.expect("connects");
        if !caps.is_empty() {
            client.send_cap_req(caps).unwrap();
        }
        client.identify().unwrap();
        let mut stream = client.stream().unwrap();
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Some(Ok(message)) = stream.next().await {
                if tx.send(message).is_err() {
                    break;
                }
            }
        });
        let mut user = IrcUser {
            client,
            task,
            rx,
            seen: Vec::new(),
            cursor: 0,
        };
        user.wait_for("welcome", |m| {
            matches!(m.command, Command::Response(Response::RPL_WELCOME, _))
        })
        .await;
        user
    }

    /// Drops the connection without a QUIT, as a crashed client would.
    pub fn vanish(self) {
        self.task.abort();
    }

    fn pump(&mut self) {
        while let Ok(m) = self.rx.try_recv() {
            self.seen.push(m);
        }
    }

    /// Waits for the next message (after those already consumed) that
    /// matches, consuming everything up to it.
    pub async fn wait_for(&mut self, what: &str, pred: impl Fn(&Message) -> bool) -> Message {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            self.pump();
            if let Some(pos) = self.seen[self.cursor..].iter().position(&pred) {
                let at = self.cursor + pos;
                self.cursor = at + 1;
                return self.seen[at].clone();
            }
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                let tail: Vec<String> = self.seen[self.cursor..]
                    .iter()
                    .map(|m| m.to_string())
                    .collect();
                panic!("timed out waiting for {what}; unconsumed: {tail:#?}");
            }
            match tokio::time::timeout(left, self.rx.recv()).await {
                Ok(Some(m)) => self.seen.push(m),
                Ok(None) => {
                    let tail: Vec<String> = self.seen[self.cursor..]
                        .iter()
                        .map(|m| m.to_string())
                        .collect();
                    panic!("connection closed while waiting for {what}; unconsumed: {tail:#?}");
                }
                Err(_) => {}
            }
        }
    }

    /// Every message received so far (without consuming).
    pub fn all(&mut self) -> Vec<Message> {
        self.pump();
        self.seen.clone()
    }

    pub fn say(&self, target: &str, text: &str) {
        self.client.send_privmsg(target, text).unwrap();
    }

    pub fn raw(&self, line: &str) {
        let message: Message = line.parse().unwrap();
        self.client.send(message).unwrap();
    }

    /// Logs in through `&qq` and waits for the bot's answer.
    pub async fn login(&mut self, uin: u64, password: &str) -> String {
        self.say("&qq", &format!("login {uin} {password}"));
        self.bot_reply("login answer").await
    }

    /// The next line the bot says in `&qq`.
    pub async fn bot_reply(&mut self, what: &str) -> String {
        let m = self
            .wait_for(what, |m| {
                m.source_nickname() == Some("qqbot")
                    && matches!(&m.command, Command::PRIVMSG(t, _) if t == "&qq")
            })
            .await;
        text_of(&m)
    }
}

/// The text of a PRIVMSG/NOTICE.
pub fn text_of(m: &Message) -> String {
    match &m.command {
        Command::PRIVMSG(_, t) | Command::NOTICE(_, t) => t.clone(),
        _ => String::new(),
    }
}

pub fn is_privmsg_from(m: &Message, nick: &str) -> bool {
    m.source_nickname() == Some(nick) && matches!(m.command, Command::PRIVMSG(..))
}

pub fn numeric(m: &Message) -> Option<u16> {
    match &m.command {
        Command::Response(r, _) => Some(*r as u16),
        Command::Raw(code, _) => code.parse().ok(),
        _ => None,
    }
}

pub fn numeric_args(m: &Message) -> Vec<String> {
    match &m.command {
        Command::Response(_, args) | Command::Raw(_, args) => args.clone(),
        _ => Vec::new(),
    }
}

// ---------------------------------------------------------------- raw client

/// A bare line client, for what a well-behaved client library would never
/// send.
pub struct RawClient<S> {
    reader: BufReader<tokio::io::ReadHalf<S>>,
    writer: tokio::io::WriteHalf<S>,
    pub lines: Vec<String>,
}

pub async fn raw_connect(addr: SocketAddr) -> RawClient<tokio::net::TcpStream> {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    RawClient::new(stream)
}

impl<S: AsyncRead + AsyncWrite> RawClient<S> {
    pub fn new(stream: S) -> Self {
        let (r, w) = tokio::io::split(stream);
        RawClient {
            reader: BufReader::new(r),
            writer: w,
            lines: Vec::new(),
        }
    }

    pub async fn send(&mut self, line: &str) {
        self.writer
            .write_all(format!("{line}\r\n").as_bytes())
            .await
            .unwrap();
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(bytes).await
    }

    /// The next line, or None at end of stream.
    pub async fn next_line(&mut self) -> Option<String> {
        let mut buf = Vec::new();
        match tokio::time::timeout(WAIT, self.reader.read_until(b'\n', &mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => None,
            Ok(Ok(_)) => {
                let line = String::from_utf8_lossy(&buf)
                    .trim_end_matches(['\r', '\n'])
                    .to_owned();
                self.lines.push(line.clone());
                Some(line)
            }
            Err(_) => panic!("no line within {WAIT:?}; got so far: {:#?}", self.lines),
        }
    }

    /// Reads lines until one contains `needle`, answering PINGs.
    pub async fn expect(&mut self, needle: &str) -> String {
        loop {
            match self.next_line().await {
                Some(line) if line.contains(needle) => return line,
                Some(line) if line.starts_with("PING") => {
                    let pong = line.replacen("PING", "PONG", 1);
                    self.send(&pong).await;
                }
                Some(_) => {}
                None => panic!(
                    "connection closed before {needle:?}; got: {:#?}",
                    self.lines
                ),
            }
        }
    }

    /// Reads until the server closes the connection; returns the lines.
    pub async fn until_closed(&mut self) -> Vec<String> {
        let start = self.lines.len();
        while self.next_line().await.is_some() {}
        self.lines[start..].to_vec()
    }

    pub async fn register(&mut self, nick: &str) {
        self.send(&format!("NICK {nick}")).await;
        self.send(&format!("USER {nick} 0 * :raw {nick}")).await;
        self.expect(" 001 ").await;
    }
}
