//! HTTP framing of HTTP QQ 1.1 (http11.md §2): the exact reply the server
//! writes, the two request shapes clients used, and a tolerant parser for
//! what a client reads until EOF, which may hold two replies (the
//! Query_Stat double reply, §6.3) or nothing at all (NULL).

use super::error::CodecError;

/// The `Server` header of every reply.
pub const SERVER_NAME: &str = "tencent imserver/1.0.0";
/// The `Content-Type` header of every reply.
pub const REPLY_CONTENT_TYPE: &str = "text/plain; charset=UTF-8";
/// Largest reply head the parser accepts.
const MAX_HEAD: usize = 8 * 1024;
/// Most replies the parser accepts on one connection.
const MAX_REPLIES: usize = 4;

/// One complete reply as the server writes it: status line, `Server`,
/// `Content-Type`, a `Content-Length` counting exactly the body, the body.
pub fn http_reply(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nServer: {SERVER_NAME}\r\nContent-Type: {REPLY_CONTENT_TYPE}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// The request line a client uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestShape {
    /// `POST / HTTP/1.1` with Host and Content-Type, as .NET and Indy send.
    Standard,
    /// \[001\]'s PHP probe: `POST HTTP/1.1`, only `Content-length` and
    /// `Connection`, and `\r\n\r\n` after the counted body.
    Probe,
}

/// A complete request for `body` (`host` is used by [`RequestShape::Standard`]).
pub fn http_request(body: &str, host: &str, shape: RequestShape) -> Vec<u8> {
    match shape {
        RequestShape::Standard => format!(
            "POST / HTTP/1.1\r\nHost: {host}\r\nContent-Type: {REPLY_CONTENT_TYPE}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
        RequestShape::Probe => format!(
            "POST HTTP/1.1\r\nContent-length: {}\r\nConnection: close\r\n\r\n{body}\r\n\r\n",
            body.len()
        ),
    }
    .into_bytes()
}

/// One reply read off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpReply {
    /// The first header named `name`, compared case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Splits everything read until EOF into replies. No bytes at all (NULL)
/// gives an empty vector. A reply without `Content-Length` takes the rest.
pub fn parse_http_replies(mut bytes: &[u8]) -> Result<Vec<HttpReply>, CodecError> {
    let mut replies = Vec::new();
    loop {
        let skip = bytes
            .iter()
            .position(|b| *b != b'\r' && *b != b'\n')
            .unwrap_or(bytes.len());
        bytes = bytes.get(skip..).unwrap_or_default();
        if bytes.is_empty() {
            return Ok(replies);
        }
        if replies.len() == MAX_REPLIES {
            return Err(CodecError::MalformedHttp(
                "too many replies on one connection",
            ));
        }
        let (reply, rest) = parse_one(bytes)?;
        replies.push(reply);
        bytes = rest;
    }
}

/// Where an HTTP head ends: the index just after the blank line (CRLF or
/// bare LF), if it has arrived. Shared with the simulator's server.
pub fn http_head_len(bytes: &[u8]) -> Option<usize> {
    let mut line_start = 0;
    for (index, byte) in bytes.iter().enumerate() {
        if *byte != b'\n' {
            continue;
        }
        let line = bytes.get(line_start..index).unwrap_or_default();
        if line.is_empty() || line == b"\r" {
            return Some(index + 1);
        }
        line_start = index + 1;
    }
    None
}

fn parse_one(bytes: &[u8]) -> Result<(HttpReply, &[u8]), CodecError> {
    let Some(end) = http_head_len(bytes) else {
        return Err(if bytes.len() > MAX_HEAD {
            CodecError::MalformedHttp("head too large")
        } else {
            CodecError::Truncated
        });
    };
    if end > MAX_HEAD {
        return Err(CodecError::MalformedHttp("head too large"));
    }
    let head = std::str::from_utf8(bytes.get(..end).unwrap_or_default())
        .map_err(|_| CodecError::MalformedHttp("head is not UTF-8"))?;
    let mut lines = head.lines().map(|l| l.trim_end_matches('\r'));
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.split_whitespace();
    if !parts.next().is_some_and(|v| v.starts_with("HTTP/")) {
        return Err(CodecError::MalformedHttp("no HTTP status line"));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or(CodecError::MalformedHttp("bad status code"))?;
    let mut headers = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .ok_or(CodecError::MalformedHttp("header without ':'"))?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let rest = bytes.get(end..).unwrap_or_default();
    let length = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.parse::<usize>())
        .transpose()
        .map_err(|_| CodecError::MalformedHttp("bad Content-Length"))?
        .unwrap_or(rest.len());
    let body = rest.get(..length).ok_or(CodecError::Truncated)?;
    let reply = HttpReply {
        status,
        headers,
        body: body.to_vec(),
    };
    Ok((reply, rest.get(length..).unwrap_or_default()))
}
