//! The one error type of the HTTP QQ 1.1 codec.
//!
//! Every malformed input maps to a variant here; the codec never panics on
//! input. Messages name keys, never values, so a password hash (`PS`) or a
//! message text can never end up in a log line through an error.

/// Why a body, a value or an HTTP frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CodecError {
    /// Nothing but whitespace: for a reply this is the NULL answer.
    #[error("the body is empty")]
    Empty,
    #[error("the body is {len} bytes, over the {max}-byte limit")]
    TooLarge { len: usize, max: usize },
    /// A non-empty `&`-separated piece without `=` (typically a body cut off
    /// in the middle of a key).
    #[error("truncated or malformed pair #{index}: no '=' after the key")]
    MalformedPair { index: usize },
    #[error("a key is not printable ASCII (pair #{index})")]
    BadKey { index: usize },
    #[error("missing key {key}")]
    MissingKey { key: &'static str },
    #[error("{key} is empty")]
    EmptyValue { key: &'static str },
    #[error("{key} is not a number")]
    BadNumber { key: &'static str },
    #[error("{key} is too large for a number")]
    NumberOutOfRange { key: &'static str },
    #[error("{key} has a value outside the documented codes")]
    BadValue { key: &'static str },
    #[error("{key} is not valid UTF-8")]
    InvalidUtf8 { key: &'static str },
    #[error("unsupported protocol version (VER)")]
    BadVersion,
    #[error("unknown command (CMD)")]
    UnknownCommand,
    #[error("the login code LC is not the documented constant")]
    BadLoginCode,
    #[error("list {key} has more than {max} items")]
    TooManyItems { key: &'static str, max: usize },
    #[error("list {key} has {found} items but {expected_from} has {expected}")]
    ListLengthMismatch {
        key: &'static str,
        found: usize,
        expected_from: &'static str,
        expected: usize,
    },
    #[error("{count_key}={count} but list {list_key} has {items} items")]
    CountMismatch {
        count_key: &'static str,
        count: usize,
        list_key: &'static str,
        items: usize,
    },
    #[error("unknown result code RES={0}")]
    UnknownResult(u32),
    /// An HTTP frame ended before its head or its declared body was complete.
    #[error("the HTTP reply is truncated")]
    Truncated,
    #[error("malformed HTTP reply: {0}")]
    MalformedHttp(&'static str),
}
