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

use crate::backoff::Backoff;
use crate::matrix_txn::TransactionBody;
use crate::store::StoreError;

use super::super::{Matrix, MatrixError};

/// Events read from the store per round trip.
const BATCH: u32 = 64;
/// Attempts at one event before it is dropped (logged): an event that
/// cannot be handled must not block every later one forever.
const MAX_ATTEMPTS: u32 = 12;

impl Matrix {
    /// Stores a transaction (unless its id is known) and wakes the worker.
    /// Returns whether it was new.
    pub(crate) async fn accept_transaction(
        &self,
        txn_id: &str,
        body: TransactionBody,
    ) -> Result<bool, StoreError> {
        let stored = body
            .into_stored(txn_id)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let new = self
            .store
            .matrix_accept_transaction(&stored.key, &stored.events)
            .await?;
        if new {
            self.inbound_wake.notify_one();
        }
        Ok(new)
    }
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
    use crate::matrix_txn::transaction_key;

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
