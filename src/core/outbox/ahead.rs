//! Carrying items while they are being stored. A destination's worker
//! normally starts on items read back from the store after their commit;
//! for a message into an idle destination that commit (~0.05–0.1 ms) was
//! the largest single wait between QQ and an IRC client (README,
//! Performance). Here the worker starts on the pushed items themselves,
//! the commit runs right behind it, and the worker learns the items' ids
//! from the commit before it records what happened to them.
//!
//! Nothing is stored later than before: the commit is not waiting for the
//! delivery, only for the worker's first step (handing the message to a
//! connection or a request). A crash before the commit loses what it
//! always could (messages taken from QQ or IRC not yet stored), unless it
//! was delivered already; after it, the outbox carries what was not
//! confirmed, as always.
//!
//! Only where it cannot change what is carried or in what order: the
//! destination has no worker and nothing stored (every destination left
//! with items by an earlier run was given a worker, [`Outbox::resume`]),
//! its courier does not need item ids ([`Courier::carries_unstored`]), no
//! item's link is known (a repeat, which the commit would drop) and no
//! two items share one.
//!
//! When the worker has delivered every item before the commit starts (a
//! chat side that takes a message at once, like the built-in IRC gateway),
//! there is nothing left to keep: the commit writes only the items' links
//! (what later repeats and replies are checked against), not outbox rows
//! that the worker would remove right after. The worker stays until those
//! links are written, so a repeat pushed meanwhile finds the destination
//! busy and goes through the store, which drops it.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, PoisonError};

use tokio::sync::oneshot;

use crate::store::{MessageLink, NewOutboxItem, OutboxItem, Store, StoreError};

use super::{settle_run, Carried, Courier, First, Outbox};

/// The commit's answer: one id per item (`None`: a repeat, not stored).
pub(super) type Stored = Result<Vec<Option<i64>>, String>;

/// Items handed to a new worker before they are stored.
pub(in crate::core::outbox) struct Ahead {
    /// With id 0 until the commit names them.
    items: Vec<OutboxItem>,
    ids: oneshot::Receiver<Stored>,
    phase: Arc<AtomicU8>,
}

/// Who got there first: the worker with every item delivered, or the
/// pusher with its commit. Moved on from `CARRYING` once, by either.
const CARRYING: u8 = 0;
/// Every item was delivered before the commit started: only links are
/// written, and the worker is told once they are.
const DELIVERED: u8 = 1;
/// The commit started first: the worker settles with the ids it is sent.
const COMMITTING: u8 = 2;

/// The pusher's end of items carried ahead.
pub(super) struct AheadTicket {
    ids: oneshot::Sender<Stored>,
    phase: Arc<AtomicU8>,
}

impl AheadTicket {
    /// Stores `items` (or, if the worker delivered them all already, only
    /// their links) and tells the worker. Ids as [`Store::enqueue_all`]
    /// gives them; `Some(0)` for an item delivered before it was stored.
    pub(super) async fn store(
        self,
        store: &dyn Store,
        destination: &str,
        items: Vec<NewOutboxItem>,
        cap: Option<u64>,
    ) -> Result<Vec<Option<i64>>, StoreError> {
        let committing =
            self.phase
                .compare_exchange(CARRYING, COMMITTING, Ordering::AcqRel, Ordering::Acquire);
        let stored = if committing.is_ok() {
            store.enqueue_all(destination, items, cap).await
        } else {
            store_links(store, destination, &items).await
        };
        // A worker that delivered everything only waits for this message.
        let _ = self.ids.send(match &stored {
            Ok(ids) => Ok(ids.clone()),
            Err(e) => Err(e.to_string()),
        });
        stored
    }
}

/// The links of items delivered before they were stored.
async fn store_links(
    store: &dyn Store,
    destination: &str,
    items: &[NewOutboxItem],
) -> Result<Vec<Option<i64>>, StoreError> {
    let links: Vec<MessageLink> = items.iter().filter_map(|i| i.link.clone()).collect();
    if !links.is_empty() {
        let inserted = store.insert_message_links(&links).await?;
        if inserted.contains(&false) {
            // Checked before they were carried: only a repeat linked
            // meanwhile by another destination's push lands here.
            tracing::warn!(%destination, "an item delivered ahead was a repeat");
        }
    }
    Ok(vec![Some(0); items.len()])
}

/// What carrying items ahead came to.
pub(super) struct AheadRun {
    pub carried_any: bool,
    pub postponed: bool,
}

impl Outbox {
    /// Starts `destination`'s worker on `items` if they may be carried
    /// ahead (see the module comment); the caller then stores them and
    /// sends the worker the outcome.
    pub(super) async fn start_ahead(
        &self,
        courier: &Arc<dyn Courier>,
        destination: &str,
        items: &[NewOutboxItem],
        cap: Option<u64>,
    ) -> Option<AheadTicket> {
        let eligible = self.workers.resumed.load(Ordering::Acquire)
            && cap != Some(0)
            && !items.is_empty()
            && courier.carries_unstored(destination)
            && self.is_idle(destination);
        if !eligible || !self.links_are_new(items).await {
            return None;
        }
        let unstored = items
            .iter()
            .map(|item| OutboxItem {
                id: 0,
                destination: destination.to_owned(),
                lane: item.lane.clone(),
                payload: item.payload.clone(),
                attempts: 0,
                last_error: None,
            })
            .collect();
        let (tell, ids) = oneshot::channel();
        let phase = Arc::new(AtomicU8::new(CARRYING));
        let mut workers = self
            .workers
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Checked again under the lock, as the link lookups gave way to
        // others, and stricter than `is_idle`: a worker that ended without
        // retiring (rather than finding its queue empty) may have left
        // items stored.
        if workers.contains_key(destination) || self.workers.stopped.load(Ordering::Acquire) {
            return None;
        }
        let first = First::Ahead(Ahead {
            items: unstored,
            ids,
            phase: phase.clone(),
        });
        self.spawn_worker(&mut workers, courier, destination, Some(first));
        tracing::trace!(%destination, items = items.len(), "carrying ahead of the commit");
        Some(AheadTicket { ids: tell, phase })
    }

    /// Whether no item's link is known and no two items share one.
    async fn links_are_new(&self, items: &[NewOutboxItem]) -> bool {
        let links: Vec<_> = items.iter().filter_map(|i| i.link.as_ref()).collect();
        for (i, link) in links.iter().enumerate() {
            let repeated = links[..i]
                .iter()
                .any(|l| l.side == link.side && l.side_id == link.side_id);
            if repeated {
                return false;
            }
            if !matches!(
                self.store.message_link(&link.side, &link.side_id).await,
                Ok(None)
            ) {
                return false;
            }
        }
        true
    }
}

/// Carries a run from the head of `ahead`'s items, waits for their ids,
/// then settles the run as the worker settles any other. Items after the
/// run are read back from the store by the worker's next round.
pub(super) async fn carry(
    store: &dyn Store,
    courier: &dyn Courier,
    destination: &str,
    ahead: Ahead,
) -> AheadRun {
    let outcomes = courier.carry_run(destination, &ahead.items).await;
    let carried_any = outcomes.iter().any(|o| !matches!(o, Carried::Later(_)));
    let all_delivered =
        outcomes.len() == ahead.items.len() && outcomes.iter().all(|o| matches!(o, Carried::Done));
    let delivered_first = all_delivered
        && ahead
            .phase
            .compare_exchange(CARRYING, DELIVERED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
    if delivered_first {
        // Nothing to remove; wait only until the links are written.
        let _ = ahead.ids.await;
        return AheadRun {
            carried_any,
            postponed: false,
        };
    }
    let ids = match ahead.ids.await {
        Ok(Ok(ids)) => ids,
        // Not stored: the pusher reports it. What was carried is out.
        Ok(Err(_)) | Err(_) => {
            return AheadRun {
                carried_any,
                postponed: false,
            }
        }
    };
    let mut run = Vec::with_capacity(outcomes.len());
    let mut settled = Vec::with_capacity(outcomes.len());
    for ((mut item, id), outcome) in ahead.items.into_iter().zip(ids).zip(outcomes) {
        match id {
            Some(id) => {
                item.id = id;
                run.push(item);
                settled.push(outcome);
            }
            // Checked before: only a repeat queued meanwhile by someone
            // else lands here.
            None => tracing::warn!(%destination, "an item carried ahead was a repeat"),
        }
    }
    let postponed = settle_run(store, destination, &run, &settled).await;
    AheadRun {
        carried_any,
        postponed,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use async_trait::async_trait;

    use super::*;
    use crate::core::model::{ChatId, Uin};
    use crate::store::{MessageLink, SqliteStore};

    /// Carries what it is given, or postpones everything while `away`;
    /// records each delivery's payload and the id it had then.
    #[derive(Default)]
    struct Gate {
        away: AtomicBool,
        /// Takes a while to deliver (a request to a server), so the commit
        /// starts first.
        slow: AtomicBool,
        carried: Mutex<Vec<(String, i64)>>,
    }

    #[async_trait]
    impl Courier for Gate {
        async fn carry(&self, _: &str, item: &OutboxItem) -> Carried {
            if self.away.load(Ordering::Acquire) {
                return Carried::Later("away".into());
            }
            if self.slow.load(Ordering::Acquire) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            let mut carried = self.carried.lock().unwrap();
            carried.push((item.payload.clone(), item.id));
            Carried::Done
        }

        fn carries_unstored(&self, _: &str) -> bool {
            true
        }
    }

    impl Gate {
        fn payloads(&self) -> Vec<String> {
            let carried = self.carried.lock().unwrap();
            carried.iter().map(|(p, _)| p.clone()).collect()
        }
    }

    fn new_item(payload: &str, link: Option<&str>) -> NewOutboxItem {
        NewOutboxItem {
            lane: String::new(),
            payload: payload.to_owned(),
            link: link.map(|id| MessageLink {
                side: "qq:1".into(),
                side_id: id.to_owned(),
                owner: Uin(1),
                chat: ChatId::Buddy(Uin(2)),
                message: format!("m-{id}"),
            }),
        }
    }

    async fn settled(store: &Arc<dyn Store>, gate: &Gate, n: usize) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let left = store.pending("dest", 100).await.unwrap();
            if gate.carried.lock().unwrap().len() >= n && left.is_empty() {
                return;
            }
            assert!(tokio::time::Instant::now() < deadline, "not settled");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    fn rig() -> (Arc<dyn Store>, Outbox, Arc<Gate>, Arc<dyn Courier>) {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
        let outbox = Outbox::new(store.clone());
        let gate = Arc::new(Gate::default());
        let courier: Arc<dyn Courier> = gate.clone();
        (store, outbox, gate, courier)
    }

    #[tokio::test]
    async fn an_idle_destinations_items_are_carried_while_being_stored_and_then_removed() {
        let (store, outbox, gate, courier) = rig();
        // Before `resume`, never ahead: the item is carried from the store.
        let ids = outbox
            .push_all(&courier, "dest", vec![new_item("a", Some("r-a"))], None)
            .await
            .unwrap();
        settled(&store, &gate, 1).await;
        outbox.resume(&courier, &["dest"]).await.unwrap();
        let ids_b = outbox
            .push_all(&courier, "dest", vec![new_item("b", Some("r-b"))], None)
            .await
            .unwrap();
        assert_eq!(
            ids_b,
            vec![Some(0)],
            "delivered before the commit: not stored"
        );
        settled(&store, &gate, 2).await;
        let carried = gate.carried.lock().unwrap().clone();
        assert_eq!(carried[0], ("a".to_owned(), ids[0].unwrap()));
        assert_eq!(
            carried[1],
            ("b".to_owned(), 0),
            "carried before it had an id"
        );
        // A repeat (known link) is not carried ahead, and the store drops it.
        let ids = outbox
            .push_all(&courier, "dest", vec![new_item("b", Some("r-b"))], None)
            .await
            .unwrap();
        assert_eq!(ids, vec![None]);
        // Two items sharing a link: not ahead either; the second is dropped.
        let both = vec![new_item("c", Some("r-c")), new_item("c", Some("r-c"))];
        let ids = outbox.push_all(&courier, "dest", both, None).await.unwrap();
        assert!(ids[0].is_some() && ids[1].is_none(), "{ids:?}");
        settled(&store, &gate, 3).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(gate.payloads(), vec!["a", "b", "c"]);
    }

    /// A delivery slower than the commit: the item is stored with its
    /// link, and removed once the worker learns its id.
    #[tokio::test]
    async fn an_item_still_being_delivered_when_the_commit_starts_is_stored_and_removed() {
        let (store, outbox, gate, courier) = rig();
        outbox.resume(&courier, &["dest"]).await.unwrap();
        gate.slow.store(true, Ordering::Release);
        let ids = outbox
            .push_all(&courier, "dest", vec![new_item("s", Some("r-s"))], None)
            .await
            .unwrap();
        let id = ids[0].expect("stored");
        assert!(id > 0, "{ids:?}");
        assert_eq!(store.pending("dest", 10).await.unwrap()[0].id, id);
        settled(&store, &gate, 1).await;
        assert_eq!(
            gate.carried.lock().unwrap().clone(),
            vec![("s".to_owned(), 0)]
        );
        let again = outbox
            .push_all(&courier, "dest", vec![new_item("s", Some("r-s"))], None)
            .await
            .unwrap();
        assert_eq!(again, vec![None], "its link was stored with it");
    }

    /// Items an earlier run left get a worker at `resume`, so new items
    /// queue behind them instead of being carried ahead of them.
    #[tokio::test]
    async fn items_left_by_an_earlier_run_go_before_new_ones() {
        let (store, outbox, gate, courier) = rig();
        store.enqueue("dest", "", "left").await.unwrap();
        gate.away.store(true, Ordering::Release);
        outbox.resume(&courier, &["dest"]).await.unwrap();
        // Its worker found the destination away and waits to retry; the
        // destination is back when the new item comes.
        tokio::time::sleep(Duration::from_millis(50)).await;
        gate.away.store(false, Ordering::Release);
        outbox
            .push_all(&courier, "dest", vec![new_item("new", None)], None)
            .await
            .unwrap();
        outbox.wake(&courier, "dest");
        settled(&store, &gate, 2).await;
        assert_eq!(gate.payloads(), vec!["left", "new"]);
    }

    /// Postponed while ahead: it keeps its place in the store and is
    /// carried from there, once, with its id.
    #[tokio::test]
    async fn an_item_postponed_while_ahead_is_carried_later_from_the_store() {
        let (store, outbox, gate, courier) = rig();
        outbox.resume(&courier, &["dest"]).await.unwrap();
        gate.away.store(true, Ordering::Release);
        let ids = outbox
            .push_all(&courier, "dest", vec![new_item("x", None)], None)
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let waiting = store.pending("dest", 10).await.unwrap();
        assert_eq!(waiting.len(), 1);
        assert_eq!(waiting[0].attempts, 1, "the ahead attempt is counted");
        gate.away.store(false, Ordering::Release);
        outbox.wake(&courier, "dest");
        settled(&store, &gate, 1).await;
        let carried = gate.carried.lock().unwrap().clone();
        assert_eq!(carried, vec![("x".to_owned(), ids[0].unwrap())]);
    }
}
