//! The gateway's wire format: reading lines from a client with the IRC
//! length limits, parsing them with `irc::proto` (guarded, so no input can
//! bring a connection down), and encoding outgoing messages so that nothing
//! coming from QQ can add a line or overflow one.

use std::panic::{catch_unwind, AssertUnwindSafe};

use irc::proto::error::ProtocolError;
use irc::proto::{Command, Message};
use tokio::io::{AsyncRead, AsyncReadExt};

/// Longest message body a client may send, without tags but including the
/// final CR LF (RFC 1459 / 2812).
pub const MAX_LINE_BYTES: usize = 512;
/// Longest tags section a client may send, including the `@` and the space
/// after it (IRCv3 message-tags).
pub const MAX_TAGS_BYTES: usize = 8191;
/// Longest body we send: 512 minus CR LF.
pub const MAX_BODY_BYTES: usize = MAX_LINE_BYTES - 2;
/// Bytes kept while looking for the end of a line; anything longer is
/// certainly too long and is discarded as it arrives.
const MAX_FRAME_BYTES: usize = MAX_TAGS_BYTES + MAX_LINE_BYTES;
/// Spare room made in the buffer before each read. Small on purpose: a
/// gateway holds thousands of idle connections, each waiting in a read
/// with this much room reserved, and client lines are short (flood
/// control allows a few per second anyway); a longer line just takes
/// more reads.
const READ_CHUNK: usize = 512;

/// One line read from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A line within the limits, without its line ending, decoded as UTF-8
    /// (invalid bytes replaced).
    Line(String),
    /// A line over the limits; it was discarded (answer 417).
    TooLong,
}

/// Reads [`Frame`]s. CR, LF and CR LF all end a line; empty lines are
/// skipped. At most `MAX_FRAME_BYTES` are buffered, whatever the client sends.
pub struct LineReader<R> {
    inner: R,
    buf: Vec<u8>,
    /// Bytes of `buf` already searched for a line end.
    scanned: usize,
    /// Inside a line that already overflowed the buffer.
    discarding: bool,
}

impl<R: AsyncRead + Unpin> LineReader<R> {
    pub fn new(inner: R) -> Self {
        LineReader {
            inner,
            buf: Vec::new(),
            scanned: 0,
            discarding: false,
        }
    }

    /// The next frame, or `None` at end of stream (a final unterminated
    /// line is dropped, as IRC servers do).
    pub async fn next_frame(&mut self) -> std::io::Result<Option<Frame>> {
        loop {
            if let Some(frame) = self.take_buffered() {
                return Ok(Some(frame));
            }
            // Read straight into the buffer: a stack chunk would live in
            // the connection's task for as long as it waits.
            if self.buf.capacity() - self.buf.len() < READ_CHUNK {
                self.buf.reserve(READ_CHUNK);
            }
            let n = self.inner.read_buf(&mut self.buf).await?;
            if n == 0 {
                return Ok(None);
            }
        }
    }

    /// A complete frame from the buffer, if there is one.
    fn take_buffered(&mut self) -> Option<Frame> {
        loop {
            let end = self
                .buf
                .get(self.scanned..)
                .unwrap_or(&[])
                .iter()
                .position(|b| *b == b'\n' || *b == b'\r')
                .map(|p| p + self.scanned);
            let Some(end) = end else {
                self.scanned = self.buf.len();
                if self.buf.len() > MAX_FRAME_BYTES {
                    self.buf.clear();
                    self.scanned = 0;
                    self.discarding = true;
                }
                return None;
            };
            let line: Vec<u8> = self.buf.drain(..=end).collect();
            self.scanned = 0;
            if self.buf.is_empty() && self.buf.capacity() > 2 * READ_CHUNK {
                // A long line grew the buffer: give the memory back rather
                // than keep it for the life of the connection.
                self.buf = Vec::new();
            }
            let body = line.get(..line.len().saturating_sub(1)).unwrap_or(&[]);
            if self.discarding {
                self.discarding = false;
                return Some(Frame::TooLong);
            }
            if body.is_empty() {
                continue;
            }
            return Some(classify(body));
        }
    }
}

/// Applies the length limits to one line (without its line ending).
pub fn classify(line: &[u8]) -> Frame {
    let (tags_len, body_len) = match line.first() {
        Some(b'@') => match line.iter().position(|b| *b == b' ') {
            // The tags section counts its trailing space.
            Some(space) => (space + 1, line.len() - space - 1),
            None => (line.len(), 0),
        },
        _ => (0, line.len()),
    };
    if tags_len > MAX_TAGS_BYTES || body_len > MAX_BODY_BYTES {
        return Frame::TooLong;
    }
    Frame::Line(String::from_utf8_lossy(line).into_owned())
}

/// Why a line could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseFailure {
    /// The command word, upper-cased (at most 32 characters), when there is one.
    pub verb: Option<String>,
    /// Why, without the line's content.
    pub reason: String,
}

/// Parses one client line (no line ending) with `irc::proto`. Never panics:
/// NUL bytes are refused up front and a panic inside the parser is caught
/// and reported as a failure.
pub fn parse_line(line: &str) -> Result<Message, ParseFailure> {
    let verb = command_word(line);
    if line.contains(['\0', '\r', '\n']) {
        return Err(ParseFailure {
            verb,
            reason: "line contains NUL, CR or LF".to_owned(),
        });
    }
    match catch_unwind(AssertUnwindSafe(|| line.parse::<Message>())) {
        Ok(Ok(mut message)) => {
            // irc-proto 1.1 parses ISON into Command::USERHOST.
            if verb.as_deref() == Some("ISON") {
                if let Command::USERHOST(nicks) = message.command {
                    message.command = Command::ISON(nicks);
                }
            }
            Ok(message)
        }
        // The error's own text quotes the whole line (which may hold a
        // password): keep only why it failed.
        Ok(Err(ProtocolError::InvalidMessage { cause, .. })) => Err(ParseFailure {
            verb,
            reason: cause.to_string().chars().take(200).collect(),
        }),
        Ok(Err(_)) => Err(ParseFailure {
            verb,
            reason: "unparsable line".to_owned(),
        }),
        Err(_) => Err(ParseFailure {
            verb,
            reason: "unparsable line".to_owned(),
        }),
    }
}

/// The command word of a line, skipping tags and prefix.
fn command_word(line: &str) -> Option<String> {
    let mut words = line.split(' ').filter(|w| !w.is_empty());
    let mut word = words.next()?;
    if word.starts_with('@') {
        word = words.next()?;
    }
    if word.starts_with(':') {
        word = words.next()?;
    }
    Some(
        word.chars()
            .take(32)
            .collect::<String>()
            .to_ascii_uppercase(),
    )
}

/// Encodes a message as exactly one wire line ending in CR LF: any CR, LF or
/// NUL inside it becomes a space (so no text can start another command) and
/// a body longer than 510 bytes is cut on a UTF-8 character boundary.
pub fn encode(message: &Message) -> String {
    let text = message.to_string();
    let text = text.strip_suffix("\r\n").unwrap_or(&text);
    let clean: String = text
        .chars()
        .map(|c| {
            if matches!(c, '\r' | '\n' | '\0') {
                ' '
            } else {
                c
            }
        })
        .collect();
    let (tags, body) = match clean.strip_prefix('@') {
        Some(_) => match clean.find(' ') {
            Some(space) => clean.split_at(space + 1),
            None => (clean.as_str(), ""),
        },
        None => ("", clean.as_str()),
    };
    let mut cut = body.len().min(MAX_BODY_BYTES);
    while !body.is_char_boundary(cut) {
        cut -= 1;
    }
    let body = body.get(..cut).unwrap_or("");
    let tags = if tags.len() > MAX_TAGS_BYTES {
        ""
    } else {
        tags
    };
    format!("{tags}{body}\r\n")
}

/// Builds a message from parts, for commands `irc::proto` has no variant
/// for (numerics it does not list, `AWAY` from another user...).
pub fn raw(command: &str, params: Vec<String>) -> Command {
    Command::Raw(command.to_owned(), params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use irc::proto::Prefix;

    #[test]
    fn classify_applies_both_limits() {
        assert_eq!(classify(b"PING x"), Frame::Line("PING x".into()));
        let long = vec![b'a'; 511];
        assert_eq!(classify(&long), Frame::TooLong);
        let mut tagged = b"@".to_vec();
        tagged.extend(vec![b'a'; 8000]);
        tagged.extend(b" PRIVMSG x :hi");
        assert!(matches!(classify(&tagged), Frame::Line(_)));
    }

    #[test]
    fn encode_cannot_inject_lines() {
        let m = Message {
            tags: None,
            prefix: Some(Prefix::Nickname("a".into(), "1".into(), "qq".into())),
            command: Command::PRIVMSG("me".into(), "hi\r\nQUIT :x\0".into()),
        };
        let line = encode(&m);
        assert_eq!(line.matches("\r\n").count(), 1);
        assert!(line.ends_with("\r\n"));
        assert!(!line.contains('\0'));
    }

    #[test]
    fn encode_cuts_on_char_boundaries() {
        let m = Message::from(Command::PRIVMSG("me".into(), "微".repeat(400)));
        let line = encode(&m);
        assert!(line.len() <= MAX_LINE_BYTES);
        assert!(line.ends_with("\r\n"));
    }

    #[test]
    fn parse_reports_the_verb() {
        assert!(parse_line("NICK bob").is_ok());
        let failure = parse_line("MODE #x +\0 secret").unwrap_err();
        assert_eq!(failure.verb.as_deref(), Some("MODE"));
        assert!(!failure.reason.contains("secret"));
    }
}
