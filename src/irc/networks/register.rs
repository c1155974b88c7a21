//! Connection registration: `CAP`/SASL, `PASS`, `NICK` (with fallbacks when
//! the nick is taken) and `USER`, up to the end of the MOTD; what the server
//! tells about itself (ISUPPORT); and telling bans (K-line, G-line, 465)
//! apart from errors worth retrying.

use irc::proto::{CapSubCommand, Command, Message};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};

use crate::irc::gateway::wire::{encode, parse_line, Frame, LineReader};
use crate::secret::Secret;

use super::sasl;

/// Why a connection could not be made or registered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum LinkError {
    /// Network trouble, timeouts, a server going away: try again later.
    #[error("{0}")]
    Unreachable(String),
    /// The server refused us for a reason that may pass (too many
    /// connections, server full).
    #[error("refused: {0}")]
    Refused(String),
    /// Banned (K-line, G-line, 465): retrying would only annoy the
    /// network's operators.
    #[error("banned: {0}")]
    Banned(String),
    /// Every nick we offered is taken.
    #[error("every nick is taken")]
    NoNick,
}

impl LinkError {
    pub fn is_ban(&self) -> bool {
        matches!(self, LinkError::Banned(_))
    }
}

/// What registering needs.
pub(crate) struct Registration<'a> {
    pub password: Option<&'a Secret>,
    pub sasl: Option<(&'a str, &'a Secret)>,
    /// Nicks to offer in order; the first is the one we want.
    pub nicks: &'a [String],
    pub username: &'a str,
    pub realname: &'a str,
}

/// What the server told us while we registered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ServerFacts {
    /// The nick the server gave us.
    pub nick: String,
    /// ISUPPORT NICKLEN, when announced.
    pub nicklen: Option<usize>,
}

/// Reasons in ERROR and KILL messages that mean a ban, not a hiccup.
const BAN_WORDS: &[&str] = &[
    "k-line", "kline", "g-line", "gline", "z-line", "zline", "d-line", "dline", "akill", "banned",
];

/// Whether a server's closing reason says we are banned.
pub(crate) fn is_ban_reason(reason: &str) -> bool {
    let lower = reason.to_lowercase();
    BAN_WORDS.iter().any(|w| lower.contains(w))
}

/// A numeric reply as `(number, arguments)`, whether `irc::proto` knows
/// the number or not.
pub(crate) fn numeric(message: &Message) -> Option<(u16, &[String])> {
    match &message.command {
        Command::Response(response, args) => Some((*response as u16, args)),
        Command::Raw(verb, args) if verb.len() == 3 => {
            verb.parse().ok().map(|n| (n, args.as_slice()))
        }
        _ => None,
    }
}

/// Writes one command as one safe line (see [`encode`]).
pub(crate) async fn write_command<W: AsyncWrite + Unpin>(
    writer: &mut W,
    command: Command,
) -> std::io::Result<()> {
    writer
        .write_all(encode(&Message::from(command)).as_bytes())
        .await
}

fn io(e: std::io::Error) -> LinkError {
    LinkError::Unreachable(e.to_string())
}

/// Registers on a fresh connection; returns once the MOTD (or its absence)
/// was announced, which is when servers accept JOINs. The caller bounds
/// the time this may take.
pub(crate) async fn register<R, W>(
    reader: &mut LineReader<R>,
    writer: &mut W,
    reg: &Registration<'_>,
) -> Result<ServerFacts, LinkError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let Some(first) = reg.nicks.first() else {
        return Err(LinkError::NoNick);
    };
    if reg.sasl.is_some() {
        let req = Command::CAP(None, CapSubCommand::REQ, None, Some("sasl".to_owned()));
        write_command(writer, req).await.map_err(io)?;
    }
    if let Some(password) = reg.password {
        write_command(writer, Command::PASS(password.expose().to_owned()))
            .await
            .map_err(io)?;
    }
    write_command(writer, Command::NICK(first.clone()))
        .await
        .map_err(io)?;
    let user = Command::USER(
        reg.username.to_owned(),
        "0".to_owned(),
        reg.realname.to_owned(),
    );
    write_command(writer, user).await.map_err(io)?;
    writer.flush().await.map_err(io)?;

    let mut facts = ServerFacts::default();
    let mut nick_index = 0;
    let mut welcomed = false;
    loop {
        let line = match reader.next_frame().await.map_err(io)? {
            None => {
                return Err(LinkError::Unreachable(
                    "the server closed the connection during registration".to_owned(),
                ))
            }
            Some(Frame::TooLong) => continue,
            Some(Frame::Line(line)) => line,
        };
        let Ok(message) = parse_line(&line) else {
            continue;
        };
        if let Some((number, args)) = numeric(&message) {
            match number {
                1 => {
                    welcomed = true;
                    facts.nick = args.first().cloned().unwrap_or_else(|| first.clone());
                }
                5 => read_isupport(args, &mut facts),
                376 | 422 if welcomed => return Ok(facts),
                432 | 433 | 436 | 437 if !welcomed => {
                    nick_index += 1;
                    let Some(next) = reg.nicks.get(nick_index) else {
                        return Err(LinkError::NoNick);
                    };
                    write_command(writer, Command::NICK(next.clone()))
                        .await
                        .map_err(io)?;
                }
                463 | 465 => {
                    return Err(LinkError::Banned(args.last().cloned().unwrap_or_default()))
                }
                903 => end_cap(writer).await?,
                902 | 904 | 905 | 906 | 907 | 908 => {
                    tracing::warn!(numeric = number, "SASL login refused; continuing without");
                    end_cap(writer).await?;
                }
                _ => {}
            }
            continue;
        }
        match &message.command {
            Command::PING(token, _) => {
                write_command(writer, Command::PONG(token.clone(), None))
                    .await
                    .map_err(io)?;
            }
            Command::CAP(_, CapSubCommand::ACK, _, _) => {
                write_command(writer, Command::AUTHENTICATE("PLAIN".to_owned()))
                    .await
                    .map_err(io)?;
            }
            Command::CAP(_, CapSubCommand::NAK, _, _) => {
                tracing::warn!("the server has no SASL; continuing without");
                end_cap(writer).await?;
            }
            Command::AUTHENTICATE(challenge) if challenge == "+" => {
                if let Some((username, password)) = reg.sasl {
                    for chunk in sasl::plain_payload(username, password) {
                        write_command(writer, Command::AUTHENTICATE(chunk))
                            .await
                            .map_err(io)?;
                    }
                }
            }
            Command::ERROR(reason) => {
                return Err(if is_ban_reason(reason) {
                    LinkError::Banned(reason.clone())
                } else {
                    LinkError::Refused(reason.clone())
                })
            }
            _ => {}
        }
    }
}

async fn end_cap<W: AsyncWrite + Unpin>(writer: &mut W) -> Result<(), LinkError> {
    write_command(writer, Command::CAP(None, CapSubCommand::END, None, None))
        .await
        .map_err(io)
}

/// Picks what we use out of an RPL_ISUPPORT (`005 me TOKEN=value ... :are
/// supported`).
fn read_isupport(args: &[String], facts: &mut ServerFacts) {
    for token in args.iter().skip(1) {
        if let Some(value) = token.strip_prefix("NICKLEN=") {
            facts.nicklen = value.parse().ok().filter(|n| *n > 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bans_are_told_apart() {
        assert!(is_ban_reason("Closing connection: \"no bots\" (K-Line)"));
        assert!(is_ban_reason("You are banned from this server"));
        assert!(!is_ban_reason("Ping timeout: 120 seconds"));
        assert!(!is_ban_reason("Too many connections from your host"));
    }

    #[tokio::test]
    async fn registers_with_a_fallback_nick_and_reads_nicklen() {
        let server = b":s 433 * WeiCheng[qq] :Nickname already in use\r\n\
            :s 001 WeiCheng0002[qq] :Welcome\r\n\
            :s 005 WeiCheng0002[qq] NICKLEN=31 CHANTYPES=#& :are supported\r\n\
            :s 376 WeiCheng0002[qq] :End of MOTD\r\n";
        let mut reader = LineReader::new(&server[..]);
        let mut written = Vec::new();
        let nicks = vec!["WeiCheng[qq]".to_owned(), "WeiCheng0002[qq]".to_owned()];
        let password = Secret::new("s3cret");
        let reg = Registration {
            password: Some(&password),
            sasl: None,
            nicks: &nicks,
            username: "qq10002",
            realname: "微程 (QQ 10002)",
        };
        let facts = register(&mut reader, &mut written, &reg).await.unwrap();
        assert_eq!(facts.nick, "WeiCheng0002[qq]");
        assert_eq!(facts.nicklen, Some(31));
        let sent = String::from_utf8(written).unwrap();
        assert!(
            sent.starts_with("PASS s3cret\r\nNICK WeiCheng[qq]\r\n"),
            "{sent}"
        );
        assert!(
            sent.contains("USER qq10002 0 * :微程 (QQ 10002)\r\n"),
            "{sent}"
        );
        assert!(sent.ends_with("NICK WeiCheng0002[qq]\r\n"), "{sent}");
    }

    #[tokio::test]
    async fn a_kline_is_a_ban_and_sasl_is_spoken() {
        let server = b"CAP * ACK :sasl\r\nAUTHENTICATE +\r\n:s 903 bot :ok\r\n\
            ERROR :Closing connection: \"go away\" (K-Line)\r\n";
        let mut reader = LineReader::new(&server[..]);
        let mut written = Vec::new();
        let nicks = vec!["bot".to_owned()];
        let password = Secret::new("sesame");
        let reg = Registration {
            password: None,
            sasl: Some(("jilles", &password)),
            nicks: &nicks,
            username: "bot",
            realname: "bot",
        };
        let e = register(&mut reader, &mut written, &reg).await.unwrap_err();
        assert!(e.is_ban(), "{e:?}");
        let sent = String::from_utf8(written).unwrap();
        assert!(sent.starts_with("CAP REQ sasl\r\n"), "{sent}");
        assert!(sent.contains("AUTHENTICATE PLAIN\r\n"), "{sent}");
        assert!(
            sent.contains("AUTHENTICATE amlsbGVzAGppbGxlcwBzZXNhbWU=\r\n"),
            "{sent}"
        );
        assert!(sent.ends_with("CAP END\r\n"), "{sent}");
    }
}
