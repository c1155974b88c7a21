//! A small, tolerant HTTP/1.x server front end, written for what 2005-era
//! QQ clients sent rather than for the RFCs:
//!
//! * request lines of 3 tokens (`POST / HTTP/1.1`) or 2 (`POST HTTP/1.1`,
//!   \[001\]'s PHP probe, no target);
//! * header names matched case-insensitively, only `Content-Length`
//!   required (for a body), exactly that many bytes read as the body and
//!   anything after it ignored (the probe appends `\r\n\r\n`);
//! * limits on head size, body size and read time; a violation closes the
//!   connection without a reply.
//!
//! Requests are dispatched to the first [`Route`] that claims them, else
//! answered 404. A route answers with exact bytes (HTTP QQ 1.1 needs
//! byte-exact, sometimes doubled, replies) or with [`HttpResponse::Close`]
//! (NULL). Routes that allow it (e.g. WebQQ, later) keep the connection
//! alive when the client asks for it.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use super::shutdown::ShutdownSignal;
use crate::qq::http11::codec::http_head_len;

/// Limits of one server.
#[derive(Debug, Clone)]
pub struct HttpLimits {
    pub max_head_bytes: usize,
    pub max_body_bytes: usize,
    /// Time to receive one whole request (and to wait for the next one on a
    /// kept-alive connection).
    pub read_timeout: Duration,
    /// After the reply, how long to drain what the client still sends, so
    /// closing does not reset the connection before the reply is read.
    pub linger: Duration,
    pub max_connections: usize,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_head_bytes: 8 * 1024,
            max_body_bytes: 64 * 1024,
            read_timeout: Duration::from_secs(30),
            linger: Duration::from_secs(2),
            max_connections: 16 * 1024,
        }
    }
}

/// One parsed request.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    /// Upper case, e.g. `POST`.
    pub method: String,
    /// `None` for a two-token request line.
    pub target: Option<String>,
    /// e.g. `HTTP/1.1`.
    pub version: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub peer: SocketAddr,
}

impl HttpRequest {
    /// The first header named `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The target's path without a query string (`/` when absent).
    pub fn path(&self) -> &str {
        let target = self.target.as_deref().unwrap_or("/");
        target.split('?').next().unwrap_or(target)
    }

    /// Whether the client allows another request on this connection.
    pub fn wants_keep_alive(&self) -> bool {
        let connection = self.header("connection").map(str::to_ascii_lowercase);
        match connection.as_deref() {
            Some(value) if value.contains("close") => false,
            Some(value) if value.contains("keep-alive") => true,
            _ => self.version.eq_ignore_ascii_case("HTTP/1.1"),
        }
    }
}

/// What a route answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpResponse {
    /// Close without writing anything (HTTP QQ's NULL).
    Close,
    /// Write exactly these bytes; keep the connection if both sides agree.
    Bytes { data: Vec<u8>, keep_alive: bool },
}

impl HttpResponse {
    /// A conventional response: status line, `headers` (e.g. `Set-Cookie`),
    /// then `Content-Length`, `Connection` and the body.
    pub fn with_headers(
        status: u16,
        reason: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        keep_alive: bool,
    ) -> Self {
        let mut head = format!("HTTP/1.1 {status} {reason}\r\n");
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        let connection = if keep_alive { "keep-alive" } else { "close" };
        head.push_str(&format!(
            "Content-Length: {}\r\nConnection: {connection}\r\n\r\n",
            body.len()
        ));
        let mut data = head.into_bytes();
        data.extend_from_slice(body);
        HttpResponse::Bytes { data, keep_alive }
    }

    /// A conventional response with a `Content-Type`.
    pub fn simple(
        status: u16,
        reason: &str,
        content_type: &str,
        body: &[u8],
        keep_alive: bool,
    ) -> Self {
        let headers = [("Content-Type", content_type)];
        HttpResponse::with_headers(status, reason, &headers, body, keep_alive)
    }

    pub fn not_found() -> Self {
        HttpResponse::simple(
            404,
            "Not Found",
            "text/plain; charset=UTF-8",
            b"not found\n",
            false,
        )
    }

    /// A JSON response (the control API's).
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        let reason = match status {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            409 => "Conflict",
            _ => "Error",
        };
        let body = value.to_string();
        HttpResponse::simple(status, reason, "application/json", body.as_bytes(), true)
    }
}

/// A handler for some of the requests of a server.
#[async_trait]
pub trait Route: Send + Sync {
    /// Whether this route answers `request` (method, path, headers).
    fn matches(&self, request: &HttpRequest) -> bool;
    async fn handle(&self, request: HttpRequest) -> HttpResponse;
    /// Whether `request` may be held for long before its answer (a long
    /// poll). A held request is dropped when its client closes the
    /// connection: nobody could read the answer, and what it would have
    /// taken from a queue must stay there for the next poll \[SIM\].
    fn holds(&self, _request: &HttpRequest) -> bool {
        false
    }
}

/// Routes in priority order; unmatched requests get 404.
#[derive(Default, Clone)]
pub struct Router {
    routes: Vec<Arc<dyn Route>>,
}

impl Router {
    pub fn new() -> Self {
        Router::default()
    }

    pub fn with(mut self, route: Arc<dyn Route>) -> Self {
        self.routes.push(route);
        self
    }

    pub async fn dispatch(&self, request: HttpRequest) -> HttpResponse {
        match self.route_for(&request) {
            Some(route) => route.handle(request).await,
            None => HttpResponse::not_found(),
        }
    }

    fn route_for(&self, request: &HttpRequest) -> Option<&Arc<dyn Route>> {
        self.routes.iter().find(|r| r.matches(request))
    }
}

/// Why a request could not be read; the connection is closed silently.
#[derive(Debug, thiserror::Error)]
enum ReadError {
    #[error("connection closed mid-request")]
    Eof,
    #[error("request head over the limit")]
    HeadTooLarge,
    #[error("request body over the limit")]
    BodyTooLarge,
    #[error("malformed request: {0}")]
    Malformed(&'static str),
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Accepts connections until shutdown. `allow_peer` can refuse peers
/// (the control listener only serves loopback).
pub async fn serve(
    listener: TcpListener,
    router: Arc<Router>,
    limits: HttpLimits,
    mut shutdown: ShutdownSignal,
    allow_peer: fn(IpAddr) -> bool,
) {
    let limits = Arc::new(limits);
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let permit = tokio::select! {
            _ = shutdown.triggered() => return,
            permit = Arc::clone(&slots).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
        };
        let accepted = tokio::select! {
            _ = shutdown.triggered() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                // Typically out of file descriptors: back off instead of spinning.
                tracing::warn!(%error, "accept failed");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        if !allow_peer(peer.ip()) {
            tracing::warn!(%peer, "refused connection from a non-allowed address");
            continue;
        }
        let router = Arc::clone(&router);
        let limits = Arc::clone(&limits);
        let mut shutdown = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = shutdown.triggered() => {}
                _ = serve_connection(stream, peer, &router, &limits) => {}
            }
            drop(permit);
        });
    }
}

async fn serve_connection(
    mut stream: TcpStream,
    peer: SocketAddr,
    router: &Router,
    limits: &HttpLimits,
) {
    let _ = stream.set_nodelay(true);
    let mut buffer = Vec::with_capacity(1024);
    loop {
        let read = tokio::time::timeout(
            limits.read_timeout,
            read_request(&mut stream, &mut buffer, limits, peer),
        )
        .await;
        let request = match read {
            Ok(Ok(Some(request))) => request,
            Ok(Ok(None)) => break,
            Ok(Err(error)) => {
                tracing::debug!(%peer, %error, "closing connection");
                break;
            }
            Err(_) => {
                tracing::debug!(%peer, "read timeout");
                break;
            }
        };
        let client_keeps = request.wants_keep_alive();
        let response = match router.route_for(&request) {
            None => HttpResponse::not_found(),
            Some(route) if route.holds(&request) => {
                let answer = route.handle(request);
                match unless_client_leaves(answer, &mut stream, &mut buffer, limits).await {
                    Some(response) => response,
                    None => {
                        tracing::debug!(%peer, "client left while its request was held");
                        return;
                    }
                }
            }
            Some(route) => route.handle(request).await,
        };
        match response {
            HttpResponse::Close => break,
            HttpResponse::Bytes { data, keep_alive } => {
                if stream.write_all(&data).await.is_err() {
                    return;
                }
                if !(keep_alive && client_keeps) {
                    break;
                }
            }
        }
    }
    close_gracefully(stream, limits.linger).await;
}

/// Waits for the answer to a held request while watching its connection:
/// `None` once the client has closed it (or it failed), with the answer
/// dropped before it could take anything. Bytes the client sends meanwhile
/// (a pipelined request) stay in `buffer`.
async fn unless_client_leaves(
    answer: impl std::future::Future<Output = HttpResponse>,
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
    limits: &HttpLimits,
) -> Option<HttpResponse> {
    tokio::pin!(answer);
    let room = limits.max_head_bytes.saturating_add(limits.max_body_bytes);
    loop {
        tokio::select! {
            // A close seen together with the answer wins: the answer could
            // not be read anyway.
            biased;
            read = read_more(stream, buffer), if buffer.len() <= room => match read {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            },
            response = &mut answer => return Some(response),
        }
    }
}

/// Sends FIN, then reads and discards until the client closes (bounded),
/// so unread request bytes never turn the close into a reset.
async fn close_gracefully(mut stream: TcpStream, linger: Duration) {
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 1024];
    let mut budget: usize = 64 * 1024;
    let _ = tokio::time::timeout(linger, async {
        while budget > 0 {
            match stream.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => budget = budget.saturating_sub(n),
            }
        }
    })
    .await;
}

/// Reads one request. `Ok(None)` means the client closed cleanly between
/// requests. Bytes after the body stay in `buffer` for a next request.
async fn read_request(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
    limits: &HttpLimits,
    peer: SocketAddr,
) -> Result<Option<HttpRequest>, ReadError> {
    let head_len = loop {
        // Blank lines before a request line are ignored (RFC 9112 §2.2).
        let blank = buffer
            .iter()
            .take_while(|b| **b == b'\r' || **b == b'\n')
            .count();
        buffer.drain(..blank);
        if let Some(end) = http_head_len(buffer) {
            break end;
        }
        if buffer.len() > limits.max_head_bytes {
            return Err(ReadError::HeadTooLarge);
        }
        if read_more(stream, buffer).await? == 0 {
            return if buffer.is_empty() {
                Ok(None)
            } else {
                Err(ReadError::Eof)
            };
        }
    };
    if head_len > limits.max_head_bytes {
        return Err(ReadError::HeadTooLarge);
    }
    let head = parse_head(buffer.get(..head_len).unwrap_or_default())?;
    let body_len = head.content_length.unwrap_or(0);
    if head.content_length.is_none() && head.method == "POST" {
        return Err(ReadError::Malformed("POST without Content-Length"));
    }
    if body_len > limits.max_body_bytes {
        return Err(ReadError::BodyTooLarge);
    }
    while buffer.len() < head_len + body_len {
        if read_more(stream, buffer).await? == 0 {
            return Err(ReadError::Eof);
        }
    }
    let body = buffer
        .get(head_len..head_len + body_len)
        .unwrap_or_default()
        .to_vec();
    buffer.drain(..head_len + body_len);
    Ok(Some(HttpRequest {
        method: head.method,
        target: head.target,
        version: head.version,
        headers: head.headers,
        body,
        peer,
    }))
}

async fn read_more(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> std::io::Result<usize> {
    let mut chunk = [0u8; 4096];
    let n = stream.read(&mut chunk).await?;
    buffer.extend_from_slice(chunk.get(..n).unwrap_or_default());
    Ok(n)
}

/// The method and Content-Length of a request head as [`serve`] reads it,
/// or `None` where it answers 400. Only for the fuzz targets
/// (`crate::fuzzing`).
pub(crate) fn head_summary(head: &[u8]) -> Option<(String, Option<usize>)> {
    parse_head(head)
        .ok()
        .map(|head| (head.method, head.content_length))
}

struct Head {
    method: String,
    target: Option<String>,
    version: String,
    headers: Vec<(String, String)>,
    content_length: Option<usize>,
}

fn parse_head(head: &[u8]) -> Result<Head, ReadError> {
    let text = std::str::from_utf8(head).map_err(|_| ReadError::Malformed("head is not UTF-8"))?;
    let mut lines = text.lines().map(|line| line.trim_end_matches('\r'));
    let tokens: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_ascii_whitespace()
        .collect();
    let (method, target, version) = match tokens.as_slice() {
        [method, version] => (*method, None, *version),
        [method, target, version] => (*method, Some((*target).to_owned()), *version),
        _ => return Err(ReadError::Malformed("request line")),
    };
    if !version.to_ascii_uppercase().starts_with("HTTP/1.") {
        return Err(ReadError::Malformed("HTTP version"));
    }
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Err(ReadError::Malformed("method"));
    }
    let mut headers = Vec::new();
    let mut content_length = None;
    for line in lines.filter(|line| !line.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .ok_or(ReadError::Malformed("header line"))?;
        let (name, value) = (name.trim(), value.trim());
        if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(ReadError::Malformed("Transfer-Encoding is not supported"));
        }
        if name.eq_ignore_ascii_case("content-length") {
            let length: usize = value
                .parse()
                .map_err(|_| ReadError::Malformed("Content-Length"))?;
            if content_length.is_some_and(|known| known != length) {
                return Err(ReadError::Malformed("conflicting Content-Length"));
            }
            content_length = Some(length);
        }
        headers.push((name.to_owned(), value.to_owned()));
    }
    Ok(Head {
        method: method.to_ascii_uppercase(),
        target,
        version: version.to_owned(),
        headers,
        content_length,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_of_both_request_line_shapes_parse() {
        let probe = parse_head(b"POST HTTP/1.1\r\nContent-length: 44\r\nConnection: close\r\n\r\n")
            .unwrap();
        assert_eq!(
            (probe.method.as_str(), probe.target.as_deref()),
            ("POST", None)
        );
        assert_eq!(probe.content_length, Some(44));
        let standard = parse_head(b"post / HTTP/1.0\nHost: x\n\n").unwrap();
        assert_eq!(
            (standard.method.as_str(), standard.target.as_deref()),
            ("POST", Some("/"))
        );
        assert!(parse_head(b"POST / HTTP/1.1 extra\r\n\r\n").is_err());
        assert!(parse_head(b"POST / SPDY/3\r\n\r\n").is_err());
        assert!(
            parse_head(b"POST / HTTP/1.1\r\nContent-Length: 1\r\ncontent-length: 2\r\n\r\n")
                .is_err()
        );
        assert_eq!(http_head_len(b"GET / HTTP/1.1\r\n\r\nrest"), Some(18));
        assert_eq!(http_head_len(b"GET / HTTP/1.1\r\nHost: a"), None);
    }
}
