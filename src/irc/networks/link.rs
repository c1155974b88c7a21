//! One client connection to an IRC server, for the bot or a puppet.
//!
//! Built on `irc::proto` (messages, commands, numerics) with our own
//! transport rather than `irc::client::Client`, because this bridge needs
//! what that client cannot give with the crate's features we build with:
//! TLS through our rustls (ring) stack, passwords that never reach a log
//! (the client traces every line it sends, PASS included), no automatic
//! nick changes on a 433 (puppets keep a stable nick and regain it), no
//! automatic CTCP replies from 200 puppets to a channel, and knowing when a
//! line was really processed (see [`Link::confirm`]).
//!
//! Every command goes through the connection's token bucket; PONG and QUIT
//! skip it. Lines are encoded by the gateway's [`encode`], which cannot
//! produce a second line whatever the text holds.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use irc::proto::{Command, Message, Prefix};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_rustls::rustls::pki_types::ServerName;
use tokio_rustls::TlsConnector;

use crate::core::model::Uin;
use crate::core::text::irc_lowercase;
use crate::irc::gateway::wire::{encode, parse_line, Frame, LineReader};
use crate::secret::Secret;

use super::pacing::TokenBucket;
use super::register::{numeric, register, LinkError, Registration, ServerFacts};

/// Longest wait for a TCP (and TLS) connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest wait for the welcome and MOTD (flood penalties included).
const REGISTER_TIMEOUT: Duration = Duration::from_secs(60);
/// Silence after which we PING the server, and how long it has to answer.
const KEEPALIVE: Duration = Duration::from_secs(90);
const KEEPALIVE_REPLY: Duration = Duration::from_secs(60);
/// Longest a write may block before the connection counts as dead.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a JOIN or a confirmation PING may take (a penalised client's
/// commands wait in the server's queue).
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a QUIT waits for the server to close the connection.
const QUIT_GRACE: Duration = Duration::from_secs(2);
/// `nick!user@host` as others see it, before we have seen our own: the
/// longest usual user (10) and host (63) parts.
const UNKNOWN_USER_HOST_LEN: usize = 1 + 10 + 1 + 63;

/// Numerics answering a JOIN with a refusal.
const JOIN_REFUSALS: &[u16] = &[403, 405, 437, 471, 473, 474, 475, 476, 477, 489];

type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// Where and how to connect.
pub(crate) struct Server {
    pub host: String,
    pub port: u16,
    pub tls: Option<TlsConnector>,
    pub password: Option<Secret>,
}

/// Whose connection a link is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum LinkTag {
    Bot,
    Puppet(Uin),
}

/// What a link reports to its owner.
#[derive(Debug)]
pub(crate) enum LinkEvent {
    Message(Box<Message>),
    /// The connection is gone; the last event of a link.
    Closed {
        reason: String,
    },
}

/// A link's events, tagged with the link.
pub(crate) type LinkEvents = mpsc::UnboundedSender<(LinkTag, u64, LinkEvent)>;

/// What is forwarded to the owner: the bot wants everything, a puppet only
/// what is addressed to it (private messages, kicks, ISON replies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Forward {
    All,
    ToMe,
}

pub(crate) struct LinkSpec<'a> {
    pub server: &'a Server,
    pub registration: Registration<'a>,
    pub tag: LinkTag,
    pub forward: Forward,
    /// Commands per second, and how many may go at once.
    pub rate: f64,
    pub burst: u32,
}

/// The link is closed: the command was not sent (or not confirmed).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("IRC connection lost: {0}")]
pub(crate) struct LinkDown(pub String);

#[derive(Default)]
struct LinkState {
    nick: String,
    /// A nick we asked for and the server has not confirmed yet.
    pending_nick: Option<String>,
    /// Our `nick!user@host` length, once seen in our own JOIN.
    prefix_len: Option<usize>,
    /// Channels we are in (lowercased).
    joined: std::collections::HashSet<String>,
    pongs: HashMap<String, oneshot::Sender<()>>,
    joins: HashMap<String, Vec<oneshot::Sender<Result<(), String>>>>,
    /// Why the server is closing us (ERROR, KILL), when it said.
    closing_reason: Option<String>,
    /// Targets the server refused a message to (401 no such nick, 404
    /// cannot send to channel), lowercased.
    undelivered: std::collections::HashSet<String>,
}

pub(crate) struct Link {
    id: u64,
    tag: LinkTag,
    forward: Forward,
    writer: tokio::sync::Mutex<BoxWrite>,
    bucket: TokenBucket,
    state: Mutex<LinkState>,
    closed: watch::Sender<Option<String>>,
    facts: ServerFacts,
    tokens: AtomicU64,
}

static LINK_IDS: AtomicU64 = AtomicU64::new(1);

async fn connect_stream(server: &Server) -> Result<(BoxRead, BoxWrite), LinkError> {
    let unreachable = |what: String| LinkError::Unreachable(what);
    let tcp = tokio::time::timeout(
        CONNECT_TIMEOUT,
        TcpStream::connect((server.host.as_str(), server.port)),
    )
    .await
    .map_err(|_| unreachable("connection timed out".to_owned()))?
    .map_err(|e| unreachable(e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    match &server.tls {
        None => {
            let (r, w) = tcp.into_split();
            Ok((Box::new(r), Box::new(w)))
        }
        Some(connector) => {
            let name = ServerName::try_from(server.host.clone())
                .map_err(|e| LinkError::Refused(format!("TLS server name: {e}")))?;
            let tls = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, tcp))
                .await
                .map_err(|_| unreachable("TLS handshake timed out".to_owned()))?
                .map_err(|e| unreachable(format!("TLS: {e}")))?;
            let (r, w) = tokio::io::split(tls);
            Ok((Box::new(r), Box::new(w)))
        }
    }
}

impl Link {
    /// Connects and registers; the returned link reads in the background
    /// and reports to `events` until it closes.
    pub async fn open(spec: LinkSpec<'_>, events: LinkEvents) -> Result<Arc<Link>, LinkError> {
        let (read, mut write) = connect_stream(spec.server).await?;
        let mut reader = LineReader::new(read);
        let facts = tokio::time::timeout(
            REGISTER_TIMEOUT,
            register(&mut reader, &mut write, &spec.registration),
        )
        .await
        .map_err(|_| LinkError::Unreachable("registration timed out".to_owned()))??;
        let (closed, _) = watch::channel(None);
        let link = Arc::new(Link {
            id: LINK_IDS.fetch_add(1, Ordering::Relaxed),
            tag: spec.tag,
            forward: spec.forward,
            writer: tokio::sync::Mutex::new(write),
            bucket: TokenBucket::new(spec.rate, spec.burst),
            state: Mutex::new(LinkState {
                nick: facts.nick.clone(),
                ..LinkState::default()
            }),
            closed,
            facts,
            tokens: AtomicU64::new(1),
        });
        tokio::spawn(read_loop(link.clone(), reader, events));
        Ok(link)
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn is_alive(&self) -> bool {
        self.closed.borrow().is_none()
    }

    /// ISUPPORT NICKLEN, when the server announced it.
    pub fn nicklen(&self) -> Option<usize> {
        self.facts.nicklen
    }

    /// Our current nick.
    pub fn nick(&self) -> String {
        self.state
            .lock()
            .map(|s| s.nick.clone())
            .unwrap_or_default()
    }

    /// Whether `nick` is (or is about to be) this link's nick.
    pub fn answers_to(&self, folded_nick: &str) -> bool {
        self.state.lock().is_ok_and(|s| {
            irc_lowercase(&s.nick) == folded_nick
                || s.pending_nick
                    .as_deref()
                    .is_some_and(|p| irc_lowercase(p) == folded_nick)
        })
    }

    /// Bytes of `nick!user@host` as the server relays our messages.
    pub fn prefix_len(&self) -> usize {
        self.state.lock().map_or(UNKNOWN_USER_HOST_LEN + 30, |s| {
            s.prefix_len.unwrap_or(s.nick.len() + UNKNOWN_USER_HOST_LEN)
        })
    }

    pub fn is_joined(&self, channel: &str) -> bool {
        self.state
            .lock()
            .is_ok_and(|s| s.joined.contains(&irc_lowercase(channel)))
    }

    /// Drops the connection at once (no QUIT).
    pub fn close(&self, reason: &str) {
        self.closed.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(reason.to_owned());
                true
            } else {
                false
            }
        });
        if let Ok(mut state) = self.state.lock() {
            state.pongs.clear();
            state.joins.clear();
        }
    }

    /// Waits until the link is closed; returns why.
    pub async fn closed(&self) -> String {
        let mut rx = self.closed.subscribe();
        loop {
            if let Some(reason) = rx.borrow_and_update().clone() {
                return reason;
            }
            if rx.changed().await.is_err() {
                return "closed".to_owned();
            }
        }
    }

    async fn write(&self, command: Command) -> Result<(), LinkDown> {
        if let Some(reason) = self.closed.borrow().clone() {
            return Err(LinkDown(reason));
        }
        let line = encode(&Message::from(command));
        let mut writer = self.writer.lock().await;
        let written = tokio::time::timeout(WRITE_TIMEOUT, async {
            writer.write_all(line.as_bytes()).await?;
            writer.flush().await
        })
        .await;
        match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                let reason = format!("write failed: {e}");
                self.close(&reason);
                Err(LinkDown(reason))
            }
            Err(_) => {
                let reason = "the server stopped reading".to_owned();
                self.close(&reason);
                Err(LinkDown(reason))
            }
        }
    }

    /// Sends a command when the connection's rate allows.
    pub async fn send(&self, command: Command) -> Result<(), LinkDown> {
        self.bucket.acquire().await;
        self.write(command).await
    }

    /// Asks for another nick (to regain the preferred one).
    pub async fn change_nick(&self, nick: &str) -> Result<(), LinkDown> {
        if let Ok(mut state) = self.state.lock() {
            state.pending_nick = Some(nick.to_owned());
        }
        self.send(Command::NICK(nick.to_owned())).await
    }

    /// Returns once the server has processed everything sent before: a
    /// PING travels behind it and its PONG comes back. Until then a line
    /// may sit in a buffer of a connection that is already dead.
    pub async fn confirm(&self) -> Result<(), LinkDown> {
        let token = format!("qqb{}", self.tokens.fetch_add(1, Ordering::Relaxed));
        let (tx, rx) = oneshot::channel();
        if let Ok(mut state) = self.state.lock() {
            state.pongs.insert(token.clone(), tx);
        }
        self.send(Command::PING(token, None)).await?;
        match tokio::time::timeout(REPLY_TIMEOUT, rx).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(LinkDown(self.closed_reason())),
            Err(_) => {
                let reason = "no PONG from the server".to_owned();
                self.close(&reason);
                Err(LinkDown(reason))
            }
        }
    }

    fn closed_reason(&self) -> String {
        self.closed
            .borrow()
            .clone()
            .unwrap_or_else(|| "closed".to_owned())
    }

    /// Joins a channel (no-op when already in it). `Ok(Err(why))` when the
    /// server refuses (banned, invite only, key...).
    pub async fn join(&self, channel: &str) -> Result<Result<(), String>, LinkDown> {
        let folded = irc_lowercase(channel);
        let (tx, rx) = oneshot::channel();
        if let Ok(mut state) = self.state.lock() {
            if state.joined.contains(&folded) {
                return Ok(Ok(()));
            }
            state.joins.entry(folded).or_default().push(tx);
        }
        self.send(Command::JOIN(channel.to_owned(), None, None))
            .await?;
        match tokio::time::timeout(REPLY_TIMEOUT, rx).await {
            Ok(Ok(outcome)) => Ok(outcome),
            Ok(Err(_)) => Err(LinkDown(self.closed_reason())),
            Err(_) => Ok(Err("no answer to JOIN".to_owned())),
        }
    }

    /// Leaves politely: QUIT, then the connection closes (the server's
    /// doing, or ours after a grace period).
    pub async fn quit(&self, reason: &str) {
        let _ = self.write(Command::QUIT(Some(reason.to_owned()))).await;
        let _ = tokio::time::timeout(QUIT_GRACE, self.closed()).await;
        self.close(reason);
    }

    /// Handles what the link itself must know; returns whether the owner
    /// should see the message too.
    async fn observe(&self, message: &Message) -> bool {
        let me = self.nick();
        let from_me = message
            .source_nickname()
            .is_some_and(|n| irc_lowercase(n) == irc_lowercase(&me));
        match &message.command {
            Command::PING(token, _) => {
                let _ = self.write(Command::PONG(token.clone(), None)).await;
                return false;
            }
            Command::PONG(server, token) => {
                let token = token.as_deref().unwrap_or(server);
                if let Ok(mut state) = self.state.lock() {
                    if let Some(waiter) = state.pongs.remove(token) {
                        let _ = waiter.send(());
                    }
                }
                return false;
            }
            Command::NICK(new) if from_me => {
                if let Ok(mut state) = self.state.lock() {
                    state.nick = new.clone();
                    state.pending_nick = None;
                }
            }
            Command::JOIN(channel, _, _) if from_me => {
                let prefix_len = match &message.prefix {
                    Some(Prefix::Nickname(n, u, h)) => Some(n.len() + 1 + u.len() + 1 + h.len()),
                    _ => None,
                };
                if let Ok(mut state) = self.state.lock() {
                    let folded = irc_lowercase(channel);
                    state.prefix_len = prefix_len.or(state.prefix_len);
                    for waiter in state.joins.remove(&folded).unwrap_or_default() {
                        let _ = waiter.send(Ok(()));
                    }
                    state.joined.insert(folded);
                }
            }
            Command::PART(channel, _) if from_me => {
                if let Ok(mut state) = self.state.lock() {
                    state.joined.remove(&irc_lowercase(channel));
                }
            }
            Command::KICK(channel, target, _) if irc_lowercase(target) == irc_lowercase(&me) => {
                if let Ok(mut state) = self.state.lock() {
                    state.joined.remove(&irc_lowercase(channel));
                }
            }
            Command::ERROR(reason) | Command::KILL(_, reason) => {
                if let Ok(mut state) = self.state.lock() {
                    state.closing_reason = Some(reason.clone());
                }
            }
            _ => {}
        }
        if let Some((number, args)) = numeric(message) {
            if JOIN_REFUSALS.contains(&number) {
                if let (Some(channel), Ok(mut state)) = (args.get(1), self.state.lock()) {
                    let why = args.last().cloned().unwrap_or_default();
                    for waiter in state
                        .joins
                        .remove(&irc_lowercase(channel))
                        .unwrap_or_default()
                    {
                        let _ = waiter.send(Err(format!("{number} {why}")));
                    }
                }
            }
            if number == 401 || number == 404 {
                if let (Some(target), Ok(mut state)) = (args.get(1), self.state.lock()) {
                    state.undelivered.insert(irc_lowercase(target));
                }
            }
            if matches!(number, 432 | 433 | 436 | 437) {
                if let Ok(mut state) = self.state.lock() {
                    state.pending_nick = None;
                }
            }
        }
        match self.forward {
            Forward::All => true,
            Forward::ToMe => match &message.command {
                Command::PRIVMSG(target, _) | Command::NOTICE(target, _) => {
                    irc_lowercase(target) == irc_lowercase(&me)
                }
                Command::KICK(_, target, _) => irc_lowercase(target) == irc_lowercase(&me),
                _ => false,
            },
        }
    }

    /// Whether the server refused a message to `target` (no such nick,
    /// cannot send to channel) since the last call; clears the mark. Call
    /// before sending to start afresh, and after [`Link::confirm`] to learn
    /// whether the messages reached anyone.
    pub fn take_undelivered(&self, target: &str) -> bool {
        self.state
            .lock()
            .is_ok_and(|mut s| s.undelivered.remove(&irc_lowercase(target)))
    }
}

async fn read_loop(link: Arc<Link>, mut reader: LineReader<BoxRead>, events: LinkEvents) {
    let mut closed = link.closed.subscribe();
    let mut pinged = false;
    let reason = loop {
        let wait = if pinged { KEEPALIVE_REPLY } else { KEEPALIVE };
        let frame = tokio::select! {
            _ = closed.changed() => break link.closed_reason(),
            frame = tokio::time::timeout(wait, reader.next_frame()) => frame,
        };
        let line = match frame {
            Err(_) if pinged => break "ping timeout".to_owned(),
            Err(_) => {
                pinged = true;
                let _ = link
                    .write(Command::PING("keepalive".to_owned(), None))
                    .await;
                continue;
            }
            Ok(Err(e)) => break format!("read failed: {e}"),
            Ok(Ok(None)) => {
                break link
                    .state
                    .lock()
                    .ok()
                    .and_then(|s| s.closing_reason.clone())
                    .unwrap_or_else(|| "the server closed the connection".to_owned())
            }
            Ok(Ok(Some(Frame::TooLong))) => continue,
            Ok(Ok(Some(Frame::Line(line)))) => line,
        };
        pinged = false;
        let Ok(message) = parse_line(&line) else {
            continue;
        };
        if link.observe(&message).await {
            let _ = events.send((link.tag, link.id, LinkEvent::Message(Box::new(message))));
        }
    };
    link.close(&reason);
    // Best effort: a write half left open keeps a TLS session half alive.
    let _ = link.writer.lock().await.shutdown().await;
    let _ = events.send((link.tag, link.id, LinkEvent::Closed { reason }));
}
