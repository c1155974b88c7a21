//! Exactly-once processing of appservice transactions.
//!
//! A transaction is answered 200 only after its key (the id plus a digest
//! of its event ids, see [`transaction_key`]) and all its events are in
//! the store, written in one database transaction
//! ([`Store::matrix_accept_transaction`](crate::store::Store::matrix_accept_transaction)).
//! A transaction seen before is answered 200 without queueing anything,
//! so the homeserver's retries (it retries until it gets a 200, also after
//! our crash) never run an event twice; a crash after the 200 loses
//! nothing, because the worker here processes the stored queue in arrival
//! order and removes an event only once it was handled. Message events are
//! also recorded by event id before they are queued for QQ (see
//! `inbound.rs`), so re-processing one after a crash does not send it
//! twice.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;

use crate::backoff::Backoff;
use crate::store::StoreError;

use super::super::{Matrix, MatrixError};

/// Events read from the store per round trip.
const BATCH: u32 = 64;
/// Attempts at one event before it is dropped (logged): an event that
/// cannot be handled must not block every later one forever.
const MAX_ATTEMPTS: u32 = 12;

/// The body of `PUT /_matrix/app/v1/transactions/{txnId}`.
#[derive(Debug, Deserialize)]
pub struct TransactionBody {
    #[serde(default)]
    pub events: Vec<Value>,
    #[serde(default)]
    pub ephemeral: Vec<Value>,
    #[serde(default, rename = "de.sorunome.msc2409.ephemeral")]
    pub ephemeral_unstable: Vec<Value>,
}

impl Matrix {
    /// Stores a transaction (unless its id is known) and wakes the worker.
    /// Returns whether it was new.
    pub(crate) async fn accept_transaction(
        &self,
        txn_id: &str,
        body: TransactionBody,
    ) -> Result<bool, StoreError> {
        let ephemeral = if body.ephemeral.is_empty() {
            body.ephemeral_unstable
        } else {
            body.ephemeral
        };
        let timeline_ids: Vec<String> = body
            .events
            .iter()
            .map(|e| {
                e.get("event_id")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned()
            })
            .collect();
        let mut events = Vec::with_capacity(body.events.len() + ephemeral.len());
        for (kind, list) in [("timeline", body.events), ("ephemeral", ephemeral)] {
            for event in list {
                let json = serde_json::to_string(&event)
                    .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                events.push((kind.to_owned(), json));
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
        let key = transaction_key(txn_id, &identity);
        let new = self.store.matrix_accept_transaction(&key, &events).await?;
        if new {
            self.inbound_wake.notify_one();
        }
        Ok(new)
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

/// The worker: processes stored events in order, forever.
pub async fn run(matrix: Arc<Matrix>) {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
    loop {
        let items = match matrix.store.matrix_inbound(BATCH).await {
            Ok(items) => items,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the appservice queue; retrying");
                tokio::time::sleep(backoff.next_delay()).await;
                continue;
            }
        };
        if items.is_empty() {
            matrix.inbound_wake.notified().await;
            continue;
        }
        for item in &items {
            let mut attempts = 0;
            loop {
                attempts += 1;
                match matrix.process(item).await {
                    Ok(()) => {
                        backoff.reset();
                        break;
                    }
                    Err(e) if attempts < MAX_ATTEMPTS && is_retryable(&e) => {
                        tracing::warn!(txn = %item.txn_id, error = %e, "cannot handle a Matrix event yet; retrying");
                        tokio::time::sleep(backoff.next_delay()).await;
                    }
                    Err(e) => {
                        tracing::error!(txn = %item.txn_id, error = %e, "dropping a Matrix event that cannot be handled");
                        break;
                    }
                }
            }
            while let Err(e) = matrix.store.matrix_inbound_done(item.id).await {
                tracing::error!(error = %e, "cannot mark a Matrix event done; retrying");
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
    }
}

fn is_retryable(e: &MatrixError) -> bool {
    match e {
        MatrixError::Homeserver(h) => h.is_transient(),
        MatrixError::Store(_) | MatrixError::NotReady(_) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_tell_reused_ids_apart() {
        let a = transaction_key("1", &["$a".to_owned()]);
        assert_eq!(a, transaction_key("1", &["$a".to_owned()]));
        assert_ne!(a, transaction_key("1", &["$b".to_owned()]));
        assert_ne!(a, transaction_key("2", &["$a".to_owned()]));
        assert_ne!(
            transaction_key("1", &["$a".to_owned(), "$b".to_owned()]),
            transaction_key("1", &["$a$b".to_owned()])
        );
    }
}
