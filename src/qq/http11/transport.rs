//! One HTTP QQ 1.1 exchange: a fresh TCP connection, one `POST`, and every
//! byte the server writes until it closes (http11.md §2).
//!
//! This is hand-written on tokio rather than an HTTP library because the
//! server's answers are not ordinary HTTP: NULL is a connection closed
//! without a single byte, and Query_Stat without `TN` writes two complete
//! replies on one connection. Every way of getting no usable reply (no
//! bytes, reset, timeout, empty body, a reply cut off) is a [`NullCause`],
//! which callers retry; bytes that are not a reply are [`Exchange::Malformed`].

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{timeout, timeout_at, Instant};

use super::codec::{
    http_request, parse_http_replies, CodecError, HttpReply, RequestShape, MAX_REPLY_BODY,
};
use crate::qq::QqError;

/// Most bytes read from one connection: room for the largest reply body,
/// its head, and the second reply of the Query_Stat quirk.
pub const MAX_REPLY_BYTES: usize = MAX_REPLY_BODY + 16 * 1024;

/// Why an exchange produced no reply: the spec's NULL and its look-alikes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NullCause {
    /// The TCP connection could not be opened.
    Connect,
    /// The server closed the connection without writing anything.
    NoBytes,
    /// The connection was reset (while writing the request or reading).
    Reset,
    /// No complete reply before the read timeout.
    Timeout,
    /// A reply with an empty body (the simulator's alternative NULL mode).
    EmptyBody,
    /// The connection closed in the middle of a reply.
    Truncated,
}

impl fmt::Display for NullCause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            NullCause::Connect => "cannot connect",
            NullCause::NoBytes => "connection closed without a reply",
            NullCause::Reset => "connection reset",
            NullCause::Timeout => "no reply in time",
            NullCause::EmptyBody => "empty reply",
            NullCause::Truncated => "reply cut off",
        })
    }
}

/// What one request got back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exchange {
    /// One or more complete replies (two for the Query_Stat quirk); the
    /// first one has a non-empty body.
    Replies(Vec<HttpReply>),
    /// No usable reply: worth retrying.
    Null(NullCause),
    /// Bytes that are not an HTTP QQ reply (bad framing, a status other
    /// than 200, too large). Retrying would most likely get the same.
    Malformed(String),
}

/// Where the server is and how long to wait for it.
#[derive(Debug, Clone)]
pub struct Transport {
    host: String,
    port: u16,
    /// `host:port` as written in the URL, for the `Host` header.
    host_header: String,
    connect_timeout: Duration,
    read_timeout: Duration,
    /// The local (source) address connections are bound to, if any. The
    /// server identifies a session by source address and UIN, so one
    /// session must always use the same one.
    local_addr: Option<IpAddr>,
}

/// How a read loop ended.
enum ReadEnd {
    Eof,
    Reset,
    Timeout,
    TooLarge,
}

impl Transport {
    /// Parses `http://host[:port][/]` (port 80 when absent, as in any URL).
    pub fn from_url(
        url: &str,
        connect_timeout: Duration,
        read_timeout: Duration,
    ) -> Result<Self, QqError> {
        let bad = || {
            QqError::Unsupported(format!(
                "HTTP QQ server address {:?} is not http://host:port",
                url.chars().take(80).collect::<String>()
            ))
        };
        let rest = url.trim().strip_prefix("http://").ok_or_else(bad)?;
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.is_empty() || authority.contains(['/', '?', '#', '@', ' ']) {
            return Err(bad());
        }
        let (host, port) = match authority.rsplit_once(':') {
            // An IPv6 literal without a port has colons but ends with ']'.
            Some((host, port)) if !port.ends_with(']') => {
                (host, port.parse::<u16>().map_err(|_| bad())?)
            }
            _ => (authority, 80),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Transport {
            host: host.to_owned(),
            port,
            host_header: authority.to_owned(),
            connect_timeout,
            read_timeout,
            local_addr: None,
        })
    }

    /// The server as `host:port`, for logs.
    pub fn authority(&self) -> &str {
        &self.host_header
    }

    pub(crate) fn set_timeouts(&mut self, connect: Duration, read: Duration) {
        self.connect_timeout = connect;
        self.read_timeout = read;
    }

    /// Binds every connection to this source address (port chosen by the
    /// system), or to whatever the system picks with `None`.
    pub fn set_local_addr(&mut self, local: Option<IpAddr>) {
        self.local_addr = local;
    }

    /// Opens the TCP connection of one exchange.
    async fn connect(&self) -> std::io::Result<TcpStream> {
        let Some(local) = self.local_addr else {
            return TcpStream::connect((self.host.as_str(), self.port)).await;
        };
        // Only a server address of the source address's family can be
        // reached from it.
        let server = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await?
            .find(|addr| addr.is_ipv4() == local.is_ipv4())
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::AddrNotAvailable,
                    "the server has no address of the local address's family",
                )
            })?;
        let socket = if local.is_ipv4() {
            TcpSocket::new_v4()?
        } else {
            TcpSocket::new_v6()?
        };
        socket.bind(SocketAddr::new(local, 0))?;
        socket.connect(server).await
    }

    /// Sends one request body on a new connection and reads every reply.
    pub async fn post(&self, body: &str) -> Exchange {
        let mut stream = match timeout(self.connect_timeout, self.connect()).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(_)) | Err(_) => return Exchange::Null(NullCause::Connect),
        };
        let deadline = Instant::now() + self.read_timeout;
        let request = http_request(body, &self.host_header, RequestShape::Standard);
        match timeout_at(deadline, stream.write_all(&request)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Exchange::Null(NullCause::Reset),
            Err(_) => return Exchange::Null(NullCause::Timeout),
        }
        let (bytes, end) = read_until_eof(&mut stream, deadline).await;
        interpret(&bytes, end)
    }
}

/// Free room ensured in the reply buffer before each read.
const READ_ROOM: usize = 2048;

/// Reads until EOF, an error, the deadline or the size limit.
///
/// Bytes are read straight into the heap buffer that is returned: a read
/// buffer array in this future would be part of every session's poller
/// task for the session's whole life (8 KiB of each idle session's RSS).
async fn read_until_eof(stream: &mut TcpStream, deadline: Instant) -> (Vec<u8>, ReadEnd) {
    let mut bytes = Vec::new();
    loop {
        bytes.reserve(READ_ROOM);
        match timeout_at(deadline, stream.read_buf(&mut bytes)).await {
            Err(_) => return (bytes, ReadEnd::Timeout),
            Ok(Err(_)) => return (bytes, ReadEnd::Reset),
            Ok(Ok(0)) => return (bytes, ReadEnd::Eof),
            Ok(Ok(_)) if bytes.len() > MAX_REPLY_BYTES => return (bytes, ReadEnd::TooLarge),
            Ok(Ok(_)) => {}
        }
    }
}

/// Turns what was read into an [`Exchange`].
fn interpret(bytes: &[u8], end: ReadEnd) -> Exchange {
    if matches!(end, ReadEnd::TooLarge) {
        return Exchange::Malformed(format!("reply larger than {MAX_REPLY_BYTES} bytes"));
    }
    let cut_short = match end {
        ReadEnd::Eof | ReadEnd::TooLarge => None,
        ReadEnd::Reset => Some(NullCause::Reset),
        ReadEnd::Timeout => Some(NullCause::Timeout),
    };
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Exchange::Null(cut_short.unwrap_or(NullCause::NoBytes));
    }
    let replies = match parse_http_replies(bytes) {
        Ok(replies) => replies,
        // A reply cut off, or a reset after the complete first reply but in
        // the middle of a second one: the first reply is what matters.
        Err(CodecError::Truncated) => match parse_http_replies(first_reply_only(bytes)) {
            Ok(replies) if !replies.is_empty() => replies,
            _ => return Exchange::Null(cut_short.unwrap_or(NullCause::Truncated)),
        },
        Err(error) => return Exchange::Malformed(error.to_string()),
    };
    let Some(first) = replies.first() else {
        return Exchange::Null(cut_short.unwrap_or(NullCause::NoBytes));
    };
    if first.status != 200 {
        return Exchange::Malformed(format!("HTTP status {}", first.status));
    }
    if first.body.iter().all(|b| b.is_ascii_whitespace()) {
        return Exchange::Null(NullCause::EmptyBody);
    }
    Exchange::Replies(replies)
}

/// The bytes up to the start of a second status line, if there is one.
fn first_reply_only(bytes: &[u8]) -> &[u8] {
    const SECOND: &[u8] = b"\nHTTP/";
    bytes
        .windows(SECOND.len())
        .position(|w| w == SECOND)
        .and_then(|at| bytes.get(..at + 1))
        .unwrap_or(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transport(url: &str) -> Result<Transport, QqError> {
        Transport::from_url(url, Duration::from_secs(1), Duration::from_secs(1))
    }

    #[test]
    fn parses_server_urls() {
        let t = transport("http://127.0.0.1:8000").map_err(|e| e.to_string());
        assert_eq!(
            t.as_ref().map(|t| (t.host.as_str(), t.port)),
            Ok(("127.0.0.1", 8000))
        );
        let t = transport("http://tqq.tencent.com/").map_err(|e| e.to_string());
        assert_eq!(t.as_ref().map(|t| t.port), Ok(80));
        let t = transport("http://[::1]:8000").map_err(|e| e.to_string());
        assert_eq!(t.as_ref().map(|t| t.host.as_str()), Ok("::1"));
        for bad in [
            "https://x:1",
            "127.0.0.1:8000",
            "http://",
            "http://x:99999",
            "http://x/y",
        ] {
            assert!(transport(bad).is_err(), "{bad}");
        }
    }

    /// The connection comes from the configured source address (any
    /// 127.x address is local on Linux), and a source address of the other
    /// family than the server's is a connect failure, not a panic.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn binds_the_configured_source_address() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let (mut stream, peer) = listener.accept().await.unwrap();
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request).await.unwrap();
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nRES=0")
                .await
                .unwrap();
            peer.ip()
        });
        let mut t = transport(&url).unwrap();
        let source: IpAddr = "127.0.0.2".parse().unwrap();
        t.set_local_addr(Some(source));
        assert!(matches!(t.post("VER=1.1").await, Exchange::Replies(_)));
        assert_eq!(server.await.unwrap(), source);

        t.set_local_addr(Some("::1".parse().unwrap()));
        assert_eq!(t.post("VER=1.1").await, Exchange::Null(NullCause::Connect));
    }

    #[test]
    fn interprets_null_look_alikes() {
        assert_eq!(
            interpret(b"", ReadEnd::Eof),
            Exchange::Null(NullCause::NoBytes)
        );
        assert_eq!(
            interpret(b"", ReadEnd::Reset),
            Exchange::Null(NullCause::Reset)
        );
        assert_eq!(
            interpret(b"\r\n", ReadEnd::Timeout),
            Exchange::Null(NullCause::Timeout)
        );
        let empty = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            interpret(empty, ReadEnd::Eof),
            Exchange::Null(NullCause::EmptyBody)
        );
        let cut = b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nVER=1.1";
        assert_eq!(
            interpret(cut, ReadEnd::Eof),
            Exchange::Null(NullCause::Truncated)
        );
        assert_eq!(
            interpret(cut, ReadEnd::Reset),
            Exchange::Null(NullCause::Reset)
        );
    }

    #[test]
    fn keeps_both_replies_and_survives_a_cut_second_one() {
        let one = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nRES=0";
        let two = format!("{one}\r\n{one}");
        match interpret(two.as_bytes(), ReadEnd::Eof) {
            Exchange::Replies(replies) => assert_eq!(replies.len(), 2),
            other => panic!("{other:?}"),
        }
        let cut = format!("{one}\r\nHTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\nRES");
        match interpret(cut.as_bytes(), ReadEnd::Reset) {
            Exchange::Replies(replies) => assert_eq!(replies.len(), 1),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rejects_what_is_not_a_reply() {
        assert!(matches!(
            interpret(b"garbage\r\n\r\n", ReadEnd::Eof),
            Exchange::Malformed(_)
        ));
        let not_ok = b"HTTP/1.1 500 Oops\r\nContent-Length: 1\r\n\r\nx";
        assert!(matches!(
            interpret(not_ok, ReadEnd::Eof),
            Exchange::Malformed(_)
        ));
        assert!(matches!(
            interpret(b"x", ReadEnd::TooLarge),
            Exchange::Malformed(_)
        ));
    }
}
