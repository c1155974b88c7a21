//! Liberal field readers for WebQQ JSON: ids and counters arrive as numbers
//! or as numeric strings (`"clientid":"31415926"`, `"t":"0"`), text fields
//! are sometimes `null` or numbers. Each reader turns what it cannot use
//! into the field's default instead of failing the whole reply.

use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::secret::Secret;

/// A non-negative integer from a JSON number or numeric string; anything
/// else (negative, fractional, `null`, text) reads as 0.
pub fn u64_or_zero<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    Ok(value_to_u64(&Value::deserialize(d)?).unwrap_or(0))
}

/// Like [`u64_or_zero`] but keeps "absent or unusable" apart from 0.
pub fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    Ok(value_to_u64(&Value::deserialize(d)?))
}

/// A signed integer from a number or numeric string, else 0.
pub fn i64_or_zero<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    Ok(value_to_i64(&Value::deserialize(d)?).unwrap_or(0))
}

/// Text from a string or number; `null` and other shapes read as "".
pub fn string_or_empty<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => s,
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => String::new(),
    })
}

/// A list whose malformed items are skipped (one bad friend entry must not
/// hide the whole buddy list). A non-array reads as empty.
pub fn vec_skipping_bad<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned,
{
    Ok(match Value::deserialize(d)? {
        Value::Array(items) => items
            .into_iter()
            .filter_map(|item| serde_json::from_value(item).ok())
            .collect(),
        _ => Vec::new(),
    })
}

/// A non-negative integer from a JSON number (integral) or numeric string.
pub fn value_to_u64(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f <= u64::MAX as f64)
                .map(|f| f as u64)
        }),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    }
}

/// A signed integer from a JSON number (integral) or numeric string.
pub fn value_to_i64(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() <= i64::MAX as f64)
                .map(|f| f as i64)
        }),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
}

/// A secret token (`"p"` of retcode 116) from a string; other shapes read
/// as absent.
pub fn opt_secret<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Secret>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(Secret::new(s)),
        _ => None,
    })
}

/// A secret token from a string; other shapes read as empty.
pub fn secret_or_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Secret::new(s),
        _ => Secret::default(),
    })
}

/// A nested object; a malformed one reads as its default.
pub fn or_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: serde::de::DeserializeOwned + Default,
{
    Ok(serde_json::from_value(Value::deserialize(d)?).unwrap_or_default())
}

/// A JSON array of anything; other shapes read as empty.
pub fn array_or_empty<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Value>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Array(items) => items,
        _ => Vec::new(),
    })
}
