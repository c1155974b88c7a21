//! The body of an appservice transaction (`PUT
//! /_matrix/app/v1/transactions/{txnId}`) as plain JSON: parsing it, the
//! events it stores and the key that makes its processing exactly-once.
//!
//! It needs neither ruma nor matrix-sdk, so it builds without the `matrix`
//! feature: the `matrix_txn` fuzz target (`fuzz/`) uses it without pulling
//! the Matrix SDK into the instrumented build. `matrix::appservice` is its
//! one user in the bridge.

use serde::Deserialize;
use serde_json::Value;

/// The body of `PUT /_matrix/app/v1/transactions/{txnId}`. serde_json
/// refuses nesting deeper than 128 levels, so no body can exhaust the stack.
#[derive(Debug, Deserialize)]
pub struct TransactionBody {
    #[serde(default)]
    pub events: Vec<Value>,
    #[serde(default)]
    pub ephemeral: Vec<Value>,
    #[serde(default, rename = "de.sorunome.msc2409.ephemeral")]
    pub ephemeral_unstable: Vec<Value>,
}

/// A transaction as it goes into the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredTransaction {
    /// See [`transaction_key`].
    pub key: String,
    /// `(kind, event JSON)` in arrival order: the timeline events
    /// (`"timeline"`), then the ephemeral ones (`"ephemeral"`).
    pub events: Vec<(String, String)>,
}

/// Parses a transaction body.
pub fn parse_transaction(body: &[u8]) -> Result<TransactionBody, serde_json::Error> {
    serde_json::from_slice(body)
}

impl TransactionBody {
    /// The events to store and the transaction's key. The stable
    /// `ephemeral` list wins over the MSC2409 one when both are present.
    pub fn into_stored(self, txn_id: &str) -> Result<StoredTransaction, serde_json::Error> {
        let ephemeral = if self.ephemeral.is_empty() {
            self.ephemeral_unstable
        } else {
            self.ephemeral
        };
        let timeline_ids: Vec<String> = self
            .events
            .iter()
            .map(|e| {
                e.get("event_id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned()
            })
            .collect();
        let mut events = Vec::with_capacity(self.events.len() + ephemeral.len());
        for (kind, list) in [("timeline", self.events), ("ephemeral", ephemeral)] {
            for event in list {
                events.push((kind.to_owned(), serde_json::to_string(&event)?));
            }
        }
        // Synapse retries a transaction with its timeline events only (the
        // ephemeral ones are sent once), so those identify it; one with
        // ephemeral events only is told apart by their content.
        let identity = if timeline_ids.is_empty() {
            events.iter().map(|(_, json)| json.clone()).collect()
        } else {
            timeline_ids
        };
        Ok(StoredTransaction {
            key: transaction_key(txn_id, &identity),
            events,
        })
    }
}

/// What identifies a transaction: its id and a digest of its events' ids.
///
/// The id alone is not enough: Synapse on SQLite derives the next id from
/// the transactions it still has pending, so after a homeserver restart it
/// hands out ids it used before. A retry of one transaction always carries
/// the same events (their `unsigned.age` changes, their ids do not).
pub fn transaction_key(txn_id: &str, event_ids: &[String]) -> String {
    use md5::{Digest, Md5};
    let mut hasher = Md5::new();
    for id in event_ids {
        hasher.update(id.as_bytes());
        hasher.update([0u8]);
    }
    let digest: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("{txn_id} {digest}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_bodies_are_bounded_in_depth() {
        let deep = format!("{{\"events\":[{}{}]}}", "[".repeat(300), "]".repeat(300));
        assert!(parse_transaction(deep.as_bytes()).is_err());
        let ok =
            parse_transaction(br#"{"events":[{"type":"m.room.message"}],"ephemeral":[]}"#).unwrap();
        assert_eq!(ok.events.len(), 1);
    }

    #[test]
    fn stored_events_keep_order_and_kind() {
        let body = br#"{"events":[{"event_id":"$a"},{"event_id":"$b"}],
            "de.sorunome.msc2409.ephemeral":[{"type":"m.presence"}]}"#;
        let stored = parse_transaction(body).unwrap().into_stored("7").unwrap();
        let kinds: Vec<&str> = stored.events.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(kinds, ["timeline", "timeline", "ephemeral"]);
        assert_eq!(
            stored.key,
            transaction_key("7", &["$a".to_owned(), "$b".to_owned()])
        );
    }
}
