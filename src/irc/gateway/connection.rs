//! One client connection: the bounded write queue (a client that stops
//! reading is disconnected instead of holding anything up), the writer task,
//! and the read loop with flood control, the length limits and PING/PONG
//! liveness. What a line means is decided in `registration` and `commands`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use irc::proto::message::Tag;
use irc::proto::{Command, Message, Prefix};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;

use super::caps::Caps;
use super::control_channel::{bot_worker, BotJob};
use super::flood::TokenBucket;
use super::numerics::{
    Numerics, ERR_INPUTTOOLONG, ERR_INVALIDCAPCMD, ERR_UNKNOWNCOMMAND, ERR_UNKNOWNMODE,
};
use super::registration::Registration;
use super::server_time::now_tag;
use super::sessions::Gateway;
use super::wire::{encode, parse_line, Frame, LineReader, ParseFailure};

/// Bot commands that may wait for the bot worker of one connection.
const BOT_QUEUE: usize = 32;
/// The write buffer of one connection (see `write_loop`).
const WRITE_BUFFER_BYTES: usize = 1024;
/// How long a closing connection may take to write its last lines.
const CLOSE_WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// An item of a client's write queue.
pub(crate) enum Outbound {
    Line(String),
    /// Bytes written as they are: the HTTP answer for a captcha link.
    Raw(Vec<u8>),
    /// Answered once every line before it has been written to the socket.
    Flush(oneshot::Sender<()>),
}

/// What is known about a client, shared by its tasks and the deliveries.
#[derive(Debug, Clone)]
pub(crate) struct ClientInfo {
    /// `*` until the client sends NICK.
    pub nick: String,
    pub ident: String,
    pub host: String,
    pub realname: String,
    pub caps: Caps,
    pub away: Option<String>,
    pub invisible: bool,
    pub registered: bool,
    /// The bridge user this connection registered as (`gateway:<nick>`).
    pub user: Option<String>,
    /// A connection not (yet) authenticated for its user: whether it shows
    /// `&qq` (with only the bot and itself).
    pub pending_control: bool,
}

/// The shareable half of a connection: its write queue and its state.
pub(crate) struct ClientLink {
    pub id: u64,
    out: mpsc::Sender<Outbound>,
    close_tx: watch::Sender<Option<String>>,
    info: Mutex<ClientInfo>,
}

impl ClientLink {
    fn lock(&self) -> MutexGuard<'_, ClientInfo> {
        self.info
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn info(&self) -> ClientInfo {
        self.lock().clone()
    }

    pub fn update(&self, change: impl FnOnce(&mut ClientInfo)) {
        change(&mut self.lock());
    }

    pub fn nick(&self) -> String {
        self.lock().nick.clone()
    }

    /// `nick!ident@host` of the client itself.
    pub fn prefix(&self) -> Prefix {
        let info = self.lock();
        Prefix::Nickname(info.nick.clone(), info.ident.clone(), info.host.clone())
    }

    /// Queues a message, adding the tags the client asked for. A full queue
    /// means the client is not reading: it is disconnected. False when the
    /// message was not queued.
    pub fn send(&self, mut message: Message) -> bool {
        if self.is_closed() {
            return false;
        }
        let caps = self.lock().caps;
        let offered = message.tags.take().unwrap_or_default();
        let original_time = offered
            .iter()
            .find(|t| t.0 == "time")
            .and_then(|t| t.1.clone());
        let mut tags: Vec<Tag> = offered
            .into_iter()
            .filter(|t| caps.message_tags && t.0 == "msgid")
            .collect();
        if caps.server_time {
            let time = original_time.unwrap_or_else(now_tag);
            tags.insert(0, Tag("time".to_owned(), Some(time)));
        }
        message.tags = (!tags.is_empty()).then_some(tags);
        match self.out.try_send(Outbound::Line(encode(&message))) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(client = self.id, "client is not reading; disconnecting it");
                self.close("SendQ exceeded");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    pub fn send_all(&self, messages: Vec<Message>) -> bool {
        messages.into_iter().all(|m| self.send(m))
    }

    /// Waits until everything queued so far is written to the socket.
    pub async fn flush(&self, wait: Duration) -> bool {
        let (tx, rx) = oneshot::channel();
        match self.out.try_send(Outbound::Flush(tx)) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.close("SendQ exceeded");
                return false;
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return false,
        }
        matches!(tokio::time::timeout(wait, rx).await, Ok(Ok(())))
    }

    /// Closes the connection with an ERROR line giving `reason`.
    pub fn close(&self, reason: &str) {
        self.close_tx.send_if_modified(|current| {
            if current.is_none() {
                *current = Some(reason.to_owned());
                true
            } else {
                false
            }
        });
    }

    pub fn is_closed(&self) -> bool {
        self.close_tx.borrow().is_some()
    }
}

/// The reading side of a connection.
pub(crate) struct Conn {
    pub gw: Arc<Gateway>,
    pub link: Arc<ClientLink>,
    /// Boxed jobs: the channel holds room for 32 from the start, per connection.
    pub bot: mpsc::Sender<Box<BotJob>>,
    pub reg: Registration,
    /// Stop reading (QUIT, bad password).
    pub quit: bool,
}

impl Conn {
    pub fn numerics(&self) -> Numerics {
        Numerics::new(&self.gw.settings.server_name, &self.link.nick())
    }

    pub fn reply(&self, code: u16, params: &[&str]) {
        self.link.send(self.numerics().reply(code, params));
    }

    /// Hands a job to this connection's bot worker (in order).
    pub async fn bot_job(&self, job: BotJob) {
        if self.bot.send(Box::new(job)).await.is_err() {
            tracing::debug!(client = self.link.id, "bot worker gone");
        }
    }

    async fn handle_frame(&mut self, frame: Frame) {
        let line = match frame {
            Frame::Line(line) => line,
            Frame::TooLong => {
                self.reply(ERR_INPUTTOOLONG, &["Input line was too long"]);
                return;
            }
        };
        if !self.link.info().registered && line.starts_with("GET /") {
            // Someone opened a captcha link (`http://<gateway>/captcha/..`)
            // in a browser: answer as HTTP and hang up.
            let response = self.gw.captchas.http_response(&line);
            let _ = self.link.out.try_send(Outbound::Raw(response));
            self.link.close("");
            self.quit = true;
            return;
        }
        let message = match parse_line(&line) {
            Ok(message) => message,
            Err(failure) => {
                self.parse_failed(failure);
                return;
            }
        };
        tracing::trace!(client = self.link.id, command = %command_name(&message.command), "client line");
        if self.link.info().registered {
            self.handle_registered(message).await;
        } else {
            self.handle_unregistered(message).await;
        }
    }

    fn parse_failed(&self, failure: ParseFailure) {
        let Some(verb) = failure.verb else { return };
        tracing::debug!(client = self.link.id, %verb, reason = %failure.reason, "unparsable line");
        match verb.as_str() {
            "MODE" => self.reply(ERR_UNKNOWNMODE, &["*", "is an unknown mode"]),
            "CAP" => self.reply(ERR_INVALIDCAPCMD, &["*", "Invalid CAP command"]),
            _ => self.reply(ERR_UNKNOWNCOMMAND, &[&verb, "Unknown command"]),
        }
    }

    /// Reads and handles lines until the client leaves, is dropped or the
    /// gateway closes.
    async fn run<R: AsyncRead + Unpin>(
        &mut self,
        read: R,
        mut close_rx: watch::Receiver<Option<String>>,
    ) {
        let settings = &self.gw.settings;
        let (interval, timeout) = (settings.ping_interval, settings.ping_timeout);
        let mut reader = LineReader::new(read);
        let mut flood = TokenBucket::new(settings.flood_burst, settings.flood_rate);
        let mut last_heard = Instant::now();
        let mut ping_sent: Option<Instant> = None;
        while !self.quit {
            let deadline = match ping_sent {
                Some(sent) => sent + timeout,
                None => last_heard + interval,
            };
            tokio::select! {
                frame = reader.next_frame() => match frame {
                    Ok(Some(frame)) => {
                        last_heard = Instant::now();
                        ping_sent = None;
                        flood.take().await;
                        // Boxed: a command's handling state is held only
                        // while it runs, not by every idle connection.
                        Box::pin(self.handle_frame(frame)).await;
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::debug!(client = self.link.id, error = %e, "read failed");
                        break;
                    }
                },
                _ = tokio::time::sleep_until(deadline) => {
                    if ping_sent.is_some() {
                        self.link.close(&format!("Ping timeout: {} seconds", timeout.as_secs()));
                        break;
                    }
                    let server = self.gw.settings.server_name.clone();
                    self.link.send(Message::from(Command::PING(server, None)));
                    ping_sent = Some(Instant::now());
                }
                _ = close_rx.changed() => break,
            }
        }
    }
}

/// The command word of a parsed message, for logs (never its parameters).
pub fn command_name(command: &Command) -> String {
    match command {
        Command::Raw(verb, _) => verb.chars().take(32).collect(),
        other => String::from(other)
            .split(' ')
            .next()
            .unwrap_or("")
            .chars()
            .take(32)
            .collect(),
    }
}

/// Serves one client until it leaves.
pub(crate) async fn serve<S>(gw: Arc<Gateway>, stream: S, peer: SocketAddr)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (read_half, write_half) = tokio::io::split(stream);
    let (out_tx, out_rx) = mpsc::channel(gw.settings.send_queue.max(16));
    let (close_tx, close_rx) = watch::channel(None);
    let id = gw.next_client_id();
    let link = Arc::new(ClientLink {
        id,
        out: out_tx,
        close_tx,
        info: Mutex::new(ClientInfo {
            nick: "*".to_owned(),
            ident: "user".to_owned(),
            host: peer.ip().to_string(),
            realname: String::new(),
            caps: Caps::default(),
            away: None,
            invisible: false,
            registered: false,
            user: None,
            pending_control: false,
        }),
    });
    let writer = tokio::spawn(write_loop(write_half, out_rx, close_rx.clone()));
    if let Err(why) = gw.add_client(link.clone()) {
        tracing::warn!(%peer, reason = why, "refused a client");
        link.close(why);
        let _ = writer.await;
        return;
    }
    tracing::info!(%peer, client = id, "IRC client connected");
    let (bot_tx, bot_rx) = mpsc::channel(BOT_QUEUE);
    tokio::spawn(bot_worker(gw.clone(), link.clone(), bot_rx));
    let mut conn = Conn {
        gw: gw.clone(),
        link: link.clone(),
        bot: bot_tx,
        reg: Registration::default(),
        quit: false,
    };
    conn.run(read_half, close_rx).await;
    drop(conn);
    link.close("Connection closed");
    gw.remove_client(id).await;
    let _ = writer.await;
    tracing::info!(%peer, client = id, "IRC client disconnected");
}

async fn write_loop<W: AsyncWrite + Unpin>(
    write: W,
    mut queue: mpsc::Receiver<Outbound>,
    mut close_rx: watch::Receiver<Option<String>>,
) {
    // A small buffer: it lives as long as the connection, and thousands of
    // mostly idle connections each holding the default 8 KiB add up (README,
    // Performance). Bursts (a login's buddy list) only take more writes.
    let mut w = BufWriter::with_capacity(WRITE_BUFFER_BYTES, write);
    let mut healthy = true;
    loop {
        tokio::select! {
            biased;
            _ = close_rx.changed() => break,
            item = queue.recv() => match item {
                Some(item @ (Outbound::Line(_) | Outbound::Raw(_))) => {
                    let bytes = match &item {
                        Outbound::Line(line) => line.as_bytes(),
                        Outbound::Raw(raw) => raw.as_slice(),
                        Outbound::Flush(_) => &[],
                    };
                    let written = tokio::select! {
                        r = w.write_all(bytes) => r.is_ok(),
                        _ = close_rx.changed() => false,
                    };
                    if !written {
                        healthy = false;
                        break;
                    }
                    if queue.is_empty() && w.flush().await.is_err() {
                        healthy = false;
                        break;
                    }
                }
                Some(Outbound::Flush(ack)) => {
                    if w.flush().await.is_err() {
                        healthy = false;
                        break;
                    }
                    let _ = ack.send(());
                }
                None => break,
            },
        }
    }
    // Last words: what is already queued, then the ERROR line.
    let reason = close_rx.borrow().clone();
    let _ = tokio::time::timeout(CLOSE_WRITE_TIMEOUT, async {
        if healthy {
            while let Ok(item) = queue.try_recv() {
                match item {
                    Outbound::Line(line) => {
                        if w.write_all(line.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                    Outbound::Raw(raw) => {
                        if w.write_all(&raw).await.is_err() {
                            return;
                        }
                    }
                    // Unanswered: the delivery waiting on it is retried
                    // later rather than counted as done.
                    Outbound::Flush(_) => {}
                }
            }
            if let Some(reason) = reason.filter(|r| !r.is_empty()) {
                let error = Message::from(Command::ERROR(format!("Closing link: {reason}")));
                let _ = w.write_all(encode(&error).as_bytes()).await;
            }
        }
        let _ = w.flush().await;
        let _ = w.shutdown().await;
    })
    .await;
}
