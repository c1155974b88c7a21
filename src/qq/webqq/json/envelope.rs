//! The envelope every WebQQ API reply shares (webqq.md §1.4):
//! `{"retcode":N,…}` with `result` on success, `errmsg`, `p` (retcode 116)
//! or `t` (retcode 121) otherwise.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::lenient::{opt_secret, value_to_i64};
use crate::secret::Secret;

/// Why a reply body could not be used. Messages name positions and
/// retcodes, never values from the body (which may hold tokens).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    #[error("the reply is not JSON (line {line}, column {column})")]
    NotJson { line: usize, column: usize },
    #[error("the reply has no retcode")]
    NoRetcode,
    #[error("the server answered retcode {0}")]
    Retcode(i64),
    #[error("the {what} result is malformed")]
    BadResult { what: &'static str },
}

/// The parsed envelope. `retcode` is `None` when absent or not a number.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Envelope {
    #[serde(
        deserialize_with = "opt_retcode",
        skip_serializing_if = "Option::is_none"
    )]
    pub retcode: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errmsg: Option<Value>,
    /// The new ptwebqq of retcode 116.
    #[serde(
        deserialize_with = "opt_secret",
        skip_serializing_if = "Option::is_none"
    )]
    pub p: Option<Secret>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub t: Option<Value>,
}

fn opt_retcode<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(value_to_i64(&Value::deserialize(d)?))
}

impl Envelope {
    /// `{"retcode":0,"result":…}`.
    pub fn ok(result: Value) -> Self {
        Envelope {
            retcode: Some(0),
            result: Some(result),
            ..Envelope::default()
        }
    }

    /// `{"retcode":N,"errmsg":""}`, the usual error form.
    pub fn error(retcode: i64) -> Self {
        Envelope {
            retcode: Some(retcode),
            errmsg: Some(Value::String(String::new())),
            ..Envelope::default()
        }
    }

    /// The typed `result` of a `retcode 0` reply.
    pub fn into_result<T: DeserializeOwned>(self, what: &'static str) -> Result<T, JsonError> {
        match self.retcode {
            Some(0) => {}
            Some(code) => return Err(JsonError::Retcode(code)),
            None => return Err(JsonError::NoRetcode),
        }
        let result = self.result.ok_or(JsonError::BadResult { what })?;
        T::deserialize(&result).map_err(|_| JsonError::BadResult { what })
    }

    /// Whether this is the `{"retcode":0,"result":"ok"}` of the send calls.
    pub fn is_ok_string(&self) -> bool {
        self.retcode == Some(0) && matches!(&self.result, Some(Value::String(s)) if s == "ok")
    }
}

/// Parses a reply body into its envelope. A JSON value that is not an
/// object (or an object without usable fields) gives an empty envelope.
pub fn parse_envelope(body: &str) -> Result<Envelope, JsonError> {
    let value: Value = serde_json::from_str(body.trim()).map_err(|e| JsonError::NotJson {
        line: e.line(),
        column: e.column(),
    })?;
    if !value.is_object() {
        return Ok(Envelope::default());
    }
    Ok(Envelope::deserialize(&value).unwrap_or_default())
}

/// Parses a body and returns its typed `result` (retcode 0 only).
pub fn parse_result<T: DeserializeOwned>(body: &str, what: &'static str) -> Result<T, JsonError> {
    parse_envelope(body)?.into_result(what)
}

/// `{"retcode":0,"result":<result>}` with the result's keys in declaration
/// order (a [`Value`] would sort them), for the simulator.
pub fn ok_body<T: Serialize>(result: &T) -> Result<String, serde_json::Error> {
    #[derive(Serialize)]
    struct OkReply<'a, T> {
        retcode: i64,
        result: &'a T,
    }
    serde_json::to_string(&OkReply { retcode: 0, result })
}
