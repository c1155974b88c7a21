//! The `KEY=VALUE&KEY=VALUE` body grammar shared by requests and replies
//! (http11.md §2.2, §4.3): splitting into ordered pairs, typed field access
//! for each direction, and writing bodies back.
//!
//! Parsing splits on `&`, then each pair on its first `=`; empty pairs (a
//! trailing `&`, `&&`) are ignored; the first occurrence of a key wins.
//! Values stay raw bytes until a typed accessor decodes them with the
//! percent rules of its direction ([`super::escape`]).

use std::fmt::Display;
use std::str::FromStr;

use super::error::CodecError;
use super::escape::{
    decode_reply_value, decode_request_value, encode_reply_text, encode_request_value,
};

/// Largest request body accepted (the simulator's HTTP limit is the same).
pub const MAX_REQUEST_BODY: usize = 64 * 1024;
/// Largest reply body accepted. Replies carry lists of up to 500 friends
/// with escaped nicknames, so they get more room than requests.
pub const MAX_REPLY_BODY: usize = 256 * 1024;
/// Most items accepted in one comma list.
pub const MAX_LIST_ITEMS: usize = 1024;

/// A body split into its ordered pairs; values are still wire bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawBody<'a> {
    pairs: Vec<(&'a str, &'a [u8])>,
}

impl<'a> RawBody<'a> {
    /// Splits `body`. Leading whitespace and trailing CR/LF are ignored
    /// (clients read replies until EOF; the probe appends CR LF CR LF).
    pub fn parse(body: &'a [u8], max_len: usize) -> Result<Self, CodecError> {
        if body.len() > max_len {
            return Err(CodecError::TooLarge {
                len: body.len(),
                max: max_len,
            });
        }
        let start = body
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .unwrap_or(body.len());
        let end = body
            .iter()
            .rposition(|b| *b != b'\r' && *b != b'\n')
            .map_or(start, |last| last + 1)
            .max(start);
        let trimmed = body.get(start..end).unwrap_or_default();
        if trimmed.is_empty() {
            return Err(CodecError::Empty);
        }
        let mut pairs = Vec::new();
        for (index, piece) in trimmed.split(|b| *b == b'&').enumerate() {
            if piece.is_empty() {
                continue;
            }
            let eq = piece
                .iter()
                .position(|b| *b == b'=')
                .ok_or(CodecError::MalformedPair { index })?;
            let key = piece.get(..eq).unwrap_or_default();
            let value = piece.get(eq + 1..).unwrap_or_default();
            if key.is_empty() || !key.iter().all(u8::is_ascii_graphic) {
                return Err(CodecError::BadKey { index });
            }
            let key = std::str::from_utf8(key).map_err(|_| CodecError::BadKey { index })?;
            pairs.push((key, value));
        }
        Ok(Self { pairs })
    }

    /// The raw value of the first pair named `key`.
    pub fn raw(&self, key: &str) -> Option<&'a [u8]> {
        self.pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
    }

    /// Whether a pair named `key` exists.
    pub fn has(&self, key: &str) -> bool {
        self.raw(key).is_some()
    }

    /// All pairs in wire order.
    pub fn pairs(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> + '_ {
        self.pairs.iter().copied()
    }
}

/// Parses an unsigned decimal number made of ASCII digits only.
pub(crate) fn parse_number<T: FromStr>(key: &'static str, text: &str) -> Result<T, CodecError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CodecError::BadNumber { key });
    }
    text.parse()
        .map_err(|_| CodecError::NumberOutOfRange { key })
}

fn into_text(key: &'static str, bytes: Vec<u8>) -> Result<String, CodecError> {
    String::from_utf8(bytes).map_err(|_| CodecError::InvalidUtf8 { key })
}

/// Typed access to a request body: values are percent-decoded once and
/// numbers are strict (no spaces, no signs).
pub(crate) struct RequestFields<'a>(pub RawBody<'a>);

impl RequestFields<'_> {
    pub fn text(&self, key: &'static str) -> Result<Option<String>, CodecError> {
        self.0
            .raw(key)
            .map(|raw| into_text(key, decode_request_value(raw)))
            .transpose()
    }

    pub fn required_text(&self, key: &'static str) -> Result<String, CodecError> {
        self.text(key)?.ok_or(CodecError::MissingKey { key })
    }

    pub fn number<T: FromStr>(&self, key: &'static str) -> Result<Option<T>, CodecError> {
        match self.text(key) {
            Ok(Some(text)) => parse_number(key, &text).map(Some),
            Ok(None) => Ok(None),
            // Bytes that are not UTF-8 are certainly not a number.
            Err(_) => Err(CodecError::BadNumber { key }),
        }
    }

    pub fn required_number<T: FromStr>(&self, key: &'static str) -> Result<T, CodecError> {
        self.number(key)?.ok_or(CodecError::MissingKey { key })
    }
}

/// Typed access to a reply body: `%252c` commas, comma lists with a
/// trailing comma, numbers that may carry spaces (`MG=30 `).
pub(crate) struct ReplyFields<'a>(pub RawBody<'a>);

impl ReplyFields<'_> {
    pub fn text(&self, key: &'static str) -> Result<Option<String>, CodecError> {
        self.0
            .raw(key)
            .map(|raw| into_text(key, decode_reply_value(raw)))
            .transpose()
    }

    pub fn required_text(&self, key: &'static str) -> Result<String, CodecError> {
        self.text(key)?.ok_or(CodecError::MissingKey { key })
    }

    pub fn required_number<T: FromStr>(&self, key: &'static str) -> Result<T, CodecError> {
        let text = self.required_text(key)?;
        parse_number(key, text.trim_matches(' '))
    }

    /// A comma list: split on raw commas, drop the empty element left by
    /// the trailing comma, decode each item.
    pub fn text_list(&self, key: &'static str) -> Result<Vec<String>, CodecError> {
        let raw = self.0.raw(key).ok_or(CodecError::MissingKey { key })?;
        let mut items: Vec<&[u8]> = raw.split(|b| *b == b',').collect();
        if items.last().is_some_and(|last| last.is_empty()) {
            items.pop();
        }
        if items.len() > MAX_LIST_ITEMS {
            return Err(CodecError::TooManyItems {
                key,
                max: MAX_LIST_ITEMS,
            });
        }
        items
            .into_iter()
            .map(|item| into_text(key, decode_reply_value(item)))
            .collect()
    }

    pub fn number_list<T: FromStr>(&self, key: &'static str) -> Result<Vec<T>, CodecError> {
        self.text_list(key)?
            .iter()
            .map(|item| parse_number(key, item.trim_matches(' ')))
            .collect()
    }
}

/// Writes a body pair by pair, in the order of the calls.
#[derive(Debug, Default)]
pub struct BodyWriter {
    out: String,
}

impl BodyWriter {
    pub fn new() -> Self {
        Self::default()
    }

    fn key(&mut self, key: &str) {
        if !self.out.is_empty() {
            self.out.push('&');
        }
        self.out.push_str(key);
        self.out.push('=');
    }

    /// A number (or any value whose `Display` needs no escaping).
    pub fn number(&mut self, key: &str, value: impl Display) -> &mut Self {
        self.key(key);
        self.out.push_str(&value.to_string());
        self
    }

    /// A text value escaped the way a client sends it.
    pub fn request_text(&mut self, key: &str, text: &str) -> &mut Self {
        self.key(key);
        encode_request_value(text, &mut self.out);
        self
    }

    /// A text value escaped the way the server sends it.
    pub fn reply_text(&mut self, key: &str, text: &str) -> &mut Self {
        self.key(key);
        encode_reply_text(text, &mut self.out);
        self
    }

    /// A reply comma list of numbers, each followed by a comma.
    pub fn number_list<T: Display>(
        &mut self,
        key: &str,
        items: impl IntoIterator<Item = T>,
    ) -> &mut Self {
        self.key(key);
        for item in items {
            self.out.push_str(&item.to_string());
            self.out.push(',');
        }
        self
    }

    /// A reply comma list of texts, each escaped and followed by a comma.
    pub fn text_list<'t>(
        &mut self,
        key: &str,
        items: impl IntoIterator<Item = &'t str>,
    ) -> &mut Self {
        self.key(key);
        for item in items {
            encode_reply_text(item, &mut self.out);
            self.out.push(',');
        }
        self
    }

    /// The body, optionally with the bare trailing `&` some replies carry.
    pub fn finish(self, trailing_amp: bool) -> String {
        let mut out = self.out;
        if trailing_amp {
            out.push('&');
        }
        out
    }
}
