//! Durable, ordered delivery: one worker per outbox destination drains the
//! store's outbox in id order, so a message survives a crash between being
//! accepted and being delivered, and one slow destination (a disconnected
//! IRC client, a QQ account being throttled) never stalls another.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::backoff::Backoff;
use crate::store::{MessageLink, OutboxItem, Store, StoreError};

/// What happened to one outbox item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Carried {
    /// Delivered: remove it.
    Done,
    /// Not now: keep it at the head of its queue and try again later.
    Later(String),
    /// Never: remove it; the courier has already told the sender why.
    Failed(String),
}

/// Carries an item to its destination. Implemented by the bridge core.
#[async_trait]
pub trait Courier: Send + Sync {
    async fn carry(&self, destination: &str, item: &OutboxItem) -> Carried;
}

/// Items fetched per store round trip.
const BATCH: u32 = 64;

pub struct Outbox {
    store: Arc<dyn Store>,
    workers: Mutex<HashMap<String, Worker>>,
}

struct Worker {
    wake: Arc<Notify>,
    task: JoinHandle<()>,
}

impl Outbox {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Outbox {
            store,
            workers: Mutex::new(HashMap::new()),
        }
    }

    /// Stores an item, then makes sure its destination's worker runs.
    pub async fn push(
        &self,
        courier: &Arc<dyn Courier>,
        destination: &str,
        lane: &str,
        payload: &str,
    ) -> Result<i64, StoreError> {
        let id = self.store.enqueue(destination, lane, payload).await?;
        self.wake(courier, destination);
        Ok(id)
    }

    /// Records `link` and stores the item in one transaction (see
    /// [`Store::enqueue_linked`]), then wakes the worker. `None`: the link
    /// was known, the message is a duplicate and nothing was queued.
    pub async fn push_linked(
        &self,
        courier: &Arc<dyn Courier>,
        link: &MessageLink,
        destination: &str,
        lane: &str,
        payload: &str,
    ) -> Result<Option<i64>, StoreError> {
        let id = self
            .store
            .enqueue_linked(link, destination, lane, payload)
            .await?;
        if id.is_some() {
            self.wake(courier, destination);
        }
        Ok(id)
    }

    /// Wakes (starting if needed) the worker of `destination`, e.g. when an
    /// IRC client reconnects or a QQ session comes back.
    pub fn wake(&self, courier: &Arc<dyn Courier>, destination: &str) {
        let Ok(mut workers) = self.workers.lock() else {
            return;
        };
        if let Some(w) = workers.get(destination) {
            if !w.task.is_finished() {
                w.wake.notify_one();
                return;
            }
        }
        let wake = Arc::new(Notify::new());
        let task = tokio::spawn(run_worker(
            self.store.clone(),
            Arc::downgrade(courier),
            destination.to_owned(),
            wake.clone(),
        ));
        workers.insert(destination.to_owned(), Worker { wake, task });
    }

    /// Stops all workers; undelivered items stay in the store.
    pub fn stop(&self) {
        if let Ok(mut workers) = self.workers.lock() {
            for (_, w) in workers.drain() {
                w.task.abort();
            }
        }
    }
}

async fn run_worker(
    store: Arc<dyn Store>,
    courier: Weak<dyn Courier>,
    destination: String,
    wake: Arc<Notify>,
) {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
    'outer: loop {
        let items = match store.pending(&destination, BATCH).await {
            Ok(items) => items,
            Err(e) => {
                tracing::error!(%destination, error = %e, "cannot read the outbox; retrying");
                tokio::time::sleep(backoff.next_delay()).await;
                continue;
            }
        };
        if items.is_empty() {
            wake.notified().await;
            continue;
        }
        for item in &items {
            let Some(courier) = courier.upgrade() else {
                return;
            };
            let outcome = courier.carry(&destination, item).await;
            drop(courier);
            let stored = match &outcome {
                Carried::Done => store.complete(item.id).await,
                Carried::Failed(reason) => {
                    tracing::warn!(%destination, id = item.id, %reason, "outbox item failed for good");
                    store.complete(item.id).await
                }
                Carried::Later(reason) => {
                    tracing::debug!(%destination, id = item.id, %reason, "delivery postponed");
                    store.record_attempt(item.id, reason).await
                }
            };
            if let Err(e) = stored {
                tracing::error!(%destination, id = item.id, error = %e, "cannot update the outbox");
            }
            if let Carried::Later(_) = outcome {
                // Keep order: wait, then retry the same head item. A wake-up
                // (client back, session back) cuts the wait short.
                let delay = backoff.next_delay();
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = wake.notified() => backoff.reset(),
                }
                continue 'outer;
            }
            backoff.reset();
        }
    }
}
