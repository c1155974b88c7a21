//! Durable, ordered delivery: one worker per outbox destination drains the
//! store's outbox in id order, so a message survives a crash between being
//! accepted and being delivered, and one slow destination (a disconnected
//! IRC client, a QQ account being throttled) never stalls another. A
//! worker exists only while its destination has items: an idle one retires,
//! so ten thousand quiet users do not keep twenty thousand tasks alive.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::backoff::Backoff;
use crate::store::{NewOutboxItem, OutboxItem, Store, StoreError};

mod ahead;

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

/// Carries items to their destination. Implemented by the bridge core and
/// the chat sides.
#[async_trait]
pub trait Courier: Send + Sync {
    async fn carry(&self, destination: &str, item: &OutboxItem) -> Carried;

    /// Items of a destination read per store round trip, and so the most
    /// one [`Courier::carry_run`] call can see. A courier that folds a
    /// backlog into fewer deliveries (Matrix rooms merging lines) asks for
    /// more.
    fn batch(&self) -> u32 {
        BATCH
    }

    /// Carries a run from the head of `items` (never empty) that the
    /// destination confirms as one unit, e.g. several lines behind one IRC
    /// PING, and returns one outcome per item carried: at least one, in
    /// order, and nothing after a [`Carried::Later`]. The worker removes
    /// the run's delivered items in one transaction, so a crash re-sends
    /// at most one unconfirmed run. The default carries the head alone.
    async fn carry_run(&self, destination: &str, items: &[OutboxItem]) -> Vec<Carried> {
        match items.first() {
            Some(item) => vec![self.carry(destination, item).await],
            None => Vec::new(),
        }
    }

    /// `destination`'s queue, after carrying something, was found empty
    /// and its worker retired.
    fn drained(&self, _destination: &str) {}

    /// Whether items of `destination` may be carried before they are
    /// stored, i.e. carrying never looks at [`OutboxItem::id`] (it is 0
    /// then). See [`Outbox::push_all`].
    fn carries_unstored(&self, _destination: &str) -> bool {
        false
    }
}

/// A run whose items are carried one at a time, in order, but removed from
/// the outbox together: at most `max` of them, ending after the first one
/// postponed. For destinations where each item is confirmed on its own but
/// one removal per item would cost a store round trip each.
pub async fn carry_each<'a, F, Fut>(
    items: &'a [OutboxItem],
    max: usize,
    mut carry: F,
) -> Vec<Carried>
where
    F: FnMut(&'a OutboxItem) -> Fut,
    Fut: std::future::Future<Output = Carried>,
{
    let mut outcomes = Vec::new();
    for item in items.iter().take(max.max(1)) {
        let outcome = carry(item).await;
        let postponed = matches!(outcome, Carried::Later(_));
        outcomes.push(outcome);
        if postponed {
            break;
        }
    }
    outcomes
}

/// Items fetched per store round trip unless the courier asks otherwise.
pub const BATCH: u32 = 64;

pub struct Outbox {
    store: Arc<dyn Store>,
    workers: Arc<Workers>,
}

struct Workers {
    live: Mutex<HashMap<String, Worker>>,
    /// Counts retirements, so a push can tell whether its destination's
    /// head, read together with its item, may have changed since (see
    /// [`Outbox::push`]).
    retired: AtomicU64,
    /// Set by [`Outbox::stop`]: items are still stored, but no worker
    /// starts any more (the chat sides are going away).
    stopped: AtomicBool,
    /// Set by [`Outbox::resume`]: every destination left with items by an
    /// earlier run has a worker, so an idle one has nothing stored.
    resumed: AtomicBool,
}

struct Worker {
    signal: Arc<Signal>,
    task: JoinHandle<()>,
}

/// How a destination's worker learns there is more to do.
#[derive(Default)]
struct Signal {
    /// Cuts a backoff wait short.
    notify: Notify,
    /// Set (under the workers lock) by every wake-up, so a worker that found
    /// its queue empty re-reads it instead of retiring when an item was
    /// queued meanwhile.
    woken: AtomicBool,
}

impl Outbox {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Outbox {
            store,
            workers: Arc::new(Workers {
                live: Mutex::new(HashMap::new()),
                retired: AtomicU64::new(0),
                stopped: AtomicBool::new(false),
                resumed: AtomicBool::new(false),
            }),
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
        let (id, head) = self
            .stored_with_head(
                destination,
                courier.batch(),
                self.store.enqueue(destination, lane, payload),
            )
            .await?;
        self.wake_with(courier, destination, head);
        Ok(id)
    }

    /// Stores the items, with their links, in one transaction (see
    /// [`Store::enqueue_all`], also for `cap`), then wakes the worker. One
    /// entry per item: `None` when its link was known, a duplicate not
    /// queued.
    ///
    /// When nothing of `destination` is stored or being carried, and its
    /// courier allows it, the worker starts on the items while they are
    /// being stored instead of after (see `outbox/ahead.rs`): a message is
    /// on its way as early as it would be without a store, and is stored
    /// as soon as before. An item the worker delivered before the commit
    /// started is not stored at all, only its link, and its entry is
    /// `Some(0)`.
    pub async fn push_all(
        &self,
        courier: &Arc<dyn Courier>,
        destination: &str,
        items: Vec<NewOutboxItem>,
        cap: Option<u64>,
    ) -> Result<Vec<Option<i64>>, StoreError> {
        if let Some(ticket) = self.start_ahead(courier, destination, &items, cap).await {
            // The new worker is next in line on this thread: let it hand
            // the items on before the commit takes the thread.
            tokio::task::yield_now().await;
            return ticket
                .store(self.store.as_ref(), destination, items, cap)
                .await;
        }
        let (ids, head) = self
            .stored_with_head(
                destination,
                courier.batch(),
                self.store.enqueue_all(destination, items, cap),
            )
            .await?;
        if ids.iter().any(Option::is_some) {
            self.wake_with(courier, destination, head);
        }
        Ok(ids)
    }

    /// Runs `store` (a write to `destination`) and, when the destination
    /// has no worker, also reads its head right behind the write: the
    /// store runs both back to back, and the worker started for
    /// the item begins with that head instead of a store round trip of its
    /// own (README, Performance). The head is only good while no worker of
    /// the destination can have removed anything since it was read, which
    /// [`Outbox::wake_with`] checks against the retirement count read here.
    async fn stored_with_head<T>(
        &self,
        destination: &str,
        batch: u32,
        store: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<(T, Option<Head>), StoreError> {
        let retired = self.workers.retired.load(Ordering::Acquire);
        if !self.is_idle(destination) {
            return Ok((store.await?, None));
        }
        // Polled in this order, so the read is queued behind the write.
        let (stored, items) =
            futures::future::join(store, self.store.pending(destination, batch)).await;
        let head = items.ok().map(|items| Head { items, retired });
        Ok((stored?, head))
    }

    /// Wakes (starting if needed) the worker of `destination`, e.g. when an
    /// IRC client reconnects or a QQ session comes back.
    pub fn wake(&self, courier: &Arc<dyn Courier>, destination: &str) {
        self.wake_with(courier, destination, None);
    }

    /// [`Outbox::wake`]; a worker started now begins with `head` if no
    /// worker has retired since it was read (one that did may have carried
    /// some of it, and carrying them again would send them twice).
    fn wake_with(&self, courier: &Arc<dyn Courier>, destination: &str, head: Option<Head>) {
        let mut workers = self
            .workers
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if self.workers.stopped.load(Ordering::Acquire) {
            return;
        }
        let mut ended = false;
        if let Some(w) = workers.get(destination) {
            if !w.task.is_finished() {
                w.signal.woken.store(true, Ordering::Release);
                w.signal.notify.notify_one();
                return;
            }
            // Stopped without retiring: it may have carried part of it.
            ended = true;
        }
        let retired = self.workers.retired.load(Ordering::Acquire);
        // Never empty when read behind this push's own item; an empty one
        // would let the new worker retire without reading.
        let first = head
            .filter(|h| !ended && h.retired == retired && !h.items.is_empty())
            .map(|h| First::Stored(h.items));
        self.spawn_worker(&mut workers, courier, destination, first);
    }

    fn spawn_worker(
        &self,
        workers: &mut HashMap<String, Worker>,
        courier: &Arc<dyn Courier>,
        destination: &str,
        first: Option<First>,
    ) {
        let signal = Arc::new(Signal::default());
        let task = tokio::spawn(run_worker(
            self.store.clone(),
            Arc::downgrade(courier),
            destination.to_owned(),
            signal.clone(),
            Arc::downgrade(&self.workers),
            first,
        ));
        workers.insert(destination.to_owned(), Worker { signal, task });
    }

    /// Starts a worker for every destination whose name starts with one of
    /// `prefixes` and that has items stored (left by an earlier run), then
    /// lets [`Outbox::push_all`] carry ahead: from now on an idle
    /// destination has nothing stored that new items could overtake.
    pub async fn resume(
        &self,
        courier: &Arc<dyn Courier>,
        prefixes: &[&str],
    ) -> Result<(), StoreError> {
        for prefix in prefixes {
            for destination in self.store.outbox_destinations(prefix).await? {
                self.wake(courier, &destination);
            }
        }
        self.workers.resumed.store(true, Ordering::Release);
        Ok(())
    }

    /// Whether `destination` has no live worker. Every item pushed through
    /// this outbox keeps its destination's worker alive until the worker
    /// has read the destination empty, so once items left by an earlier run
    /// have been woken (see [`Outbox::wake`]), an idle destination has
    /// nothing waiting and something new may skip its queue without
    /// overtaking anything. Never after [`Outbox::stop`]: what comes then
    /// is stored for the next start.
    pub fn is_idle(&self, destination: &str) -> bool {
        let workers = self
            .workers
            .live
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        !self.workers.stopped.load(Ordering::Acquire)
            && workers
                .get(destination)
                .is_none_or(|w| w.task.is_finished())
    }

    /// Whether nothing of `destination` is stored or being carried: it is
    /// idle ([`Outbox::is_idle`]) and [`Outbox::resume`] has given the
    /// items of an earlier run their workers.
    pub fn is_empty(&self, destination: &str) -> bool {
        self.workers.resumed.load(Ordering::Acquire) && self.is_idle(destination)
    }

    /// Stops all workers and starts none afterwards; undelivered items
    /// (and items pushed later) stay in the store for the next start.
    pub fn stop(&self) {
        if let Ok(mut workers) = self.workers.live.lock() {
            self.workers.stopped.store(true, Ordering::Release);
            for (_, w) in workers.drain() {
                w.task.abort();
            }
            // Stopped workers count as retired: no head read before this
            // is trusted afterwards.
            self.workers.retired.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// A destination's first items, read right behind a push; `retired` is the
/// retirement count before that read.
struct Head {
    items: Vec<OutboxItem>,
    retired: u64,
}

/// What a new worker starts with instead of reading its queue.
enum First {
    /// Items read from the store (a [`Head`]).
    Stored(Vec<OutboxItem>),
    /// Items still being stored.
    Ahead(ahead::Ahead),
}

async fn run_worker(
    store: Arc<dyn Store>,
    courier: Weak<dyn Courier>,
    destination: String,
    signal: Arc<Signal>,
    workers: Weak<Workers>,
    mut first: Option<First>,
) {
    let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(30));
    let Some(batch) = courier.upgrade().map(|c| c.batch()) else {
        return;
    };
    let mut carried_any = false;
    'outer: loop {
        let read = match first.take() {
            Some(First::Stored(items)) => Ok(items),
            Some(First::Ahead(items)) => {
                let Some(courier) = courier.upgrade() else {
                    return;
                };
                let run = ahead::carry(store.as_ref(), courier.as_ref(), &destination, items).await;
                drop(courier);
                carried_any |= run.carried_any;
                if run.postponed {
                    wait_to_retry(&mut backoff, &signal).await;
                } else {
                    backoff.reset();
                }
                continue 'outer;
            }
            None => store.pending(&destination, batch).await,
        };
        let items = match read {
            Ok(items) => items,
            Err(e) => {
                tracing::error!(%destination, error = %e, "cannot read the outbox; retrying");
                tokio::time::sleep(backoff.next_delay()).await;
                continue;
            }
        };
        if items.is_empty() {
            if retire(&workers, &destination, &signal) {
                if let Some(courier) = courier.upgrade().filter(|_| carried_any) {
                    courier.drained(&destination);
                }
                return;
            }
            continue;
        }
        let mut next = 0;
        while next < items.len() {
            let Some(courier) = courier.upgrade() else {
                return;
            };
            let outcomes = courier.carry_run(&destination, &items[next..]).await;
            drop(courier);
            let run = &items[next..(next + outcomes.len()).min(items.len())];
            next += run.len();
            carried_any |= outcomes.iter().any(|o| !matches!(o, Carried::Later(_)));
            let postponed = settle_run(store.as_ref(), &destination, run, &outcomes).await;
            if postponed || run.is_empty() {
                wait_to_retry(&mut backoff, &signal).await;
                continue 'outer;
            }
            backoff.reset();
        }
    }
}

/// Keeps order after a postponed item: waits, then the worker retries the
/// same head item. A wake-up (client back, session back) cuts the wait
/// short.
async fn wait_to_retry(backoff: &mut Backoff, signal: &Signal) {
    let delay = backoff.next_delay();
    tokio::select! {
        _ = tokio::time::sleep(delay) => {}
        _ = signal.notify.notified() => backoff.reset(),
    }
}

/// Removes an idle worker from the map, unless a wake-up came after its
/// last read (then it reads again). Deciding under the lock that
/// [`Outbox::wake`] takes means a wake-up either reaches this worker before
/// it retires or finds no worker and starts a new one.
fn retire(workers: &Weak<Workers>, destination: &str, signal: &Arc<Signal>) -> bool {
    let Some(workers) = workers.upgrade() else {
        return true;
    };
    let mut live = workers.live.lock().unwrap_or_else(PoisonError::into_inner);
    if signal.woken.swap(false, Ordering::AcqRel) {
        return false;
    }
    if live
        .get(destination)
        .is_some_and(|w| Arc::ptr_eq(&w.signal, signal))
    {
        live.remove(destination);
    }
    workers.retired.fetch_add(1, Ordering::AcqRel);
    true
}

/// Records what happened to one carried run: its delivered and failed items
/// leave the outbox together, a postponed one keeps its place with the
/// attempt noted. Returns whether the run ended with a postponed item.
async fn settle_run(
    store: &dyn Store,
    destination: &str,
    run: &[OutboxItem],
    outcomes: &[Carried],
) -> bool {
    let mut finished = Vec::with_capacity(run.len());
    let mut postponed = None;
    for (item, outcome) in run.iter().zip(outcomes) {
        match outcome {
            Carried::Done => finished.push(item.id),
            Carried::Failed(reason) => {
                tracing::warn!(%destination, id = item.id, %reason, "outbox item failed for good");
                finished.push(item.id);
            }
            Carried::Later(reason) => {
                tracing::debug!(%destination, id = item.id, %reason, "delivery postponed");
                postponed = Some((item.id, reason));
                break;
            }
        }
    }
    if !finished.is_empty() {
        // Not waited for: the removal is queued ahead of this worker's next
        // read, so the next item goes out without a store round trip (a
        // failure is logged by the store; the items would be sent again).
        drop(store.complete(&finished));
    }
    match postponed {
        Some((id, reason)) => {
            if let Err(e) = store.record_attempt(id, reason).await {
                tracing::error!(%destination, id, error = %e, "cannot update the outbox");
            }
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;

    /// Records what it carried; carries runs of up to `run` items.
    struct Recorder {
        run: usize,
        carried: Mutex<Vec<String>>,
        calls: Mutex<usize>,
    }

    impl Recorder {
        fn new(run: usize) -> Arc<Recorder> {
            Arc::new(Recorder {
                run,
                carried: Mutex::new(Vec::new()),
                calls: Mutex::new(0),
            })
        }
        fn carried(&self) -> Vec<String> {
            self.carried.lock().unwrap().clone()
        }
    }

    #[async_trait]
    impl Courier for Recorder {
        async fn carry(&self, _: &str, item: &OutboxItem) -> Carried {
            self.carried.lock().unwrap().push(item.payload.clone());
            Carried::Done
        }

        async fn carry_run(&self, destination: &str, items: &[OutboxItem]) -> Vec<Carried> {
            *self.calls.lock().unwrap() += 1;
            carry_each(items, self.run, |item| self.carry(destination, item)).await
        }
    }

    fn item(id: i64) -> OutboxItem {
        OutboxItem {
            id,
            destination: "dest".into(),
            lane: String::new(),
            payload: id.to_string(),
            attempts: 0,
            last_error: None,
        }
    }

    #[tokio::test]
    async fn carry_each_stops_after_the_first_postponed_item_and_at_its_limit() {
        let items: Vec<OutboxItem> = (1..=6).map(item).collect();
        let seen = Mutex::new(Vec::new());
        let outcomes = carry_each(&items, 10, |item| {
            seen.lock().unwrap().push(item.id);
            let outcome = match item.id {
                2 => Carried::Failed("gone".into()),
                4 => Carried::Later("not now".into()),
                _ => Carried::Done,
            };
            async move { outcome }
        })
        .await;
        assert_eq!(
            outcomes,
            vec![
                Carried::Done,
                Carried::Failed("gone".into()),
                Carried::Done,
                Carried::Later("not now".into()),
            ]
        );
        assert_eq!(
            *seen.lock().unwrap(),
            vec![1, 2, 3, 4],
            "nothing after item 4"
        );

        let outcomes = carry_each(&items, 3, |_| async { Carried::Done }).await;
        assert_eq!(outcomes.len(), 3);
        let outcomes = carry_each(&items, 0, |_| async { Carried::Done }).await;
        assert_eq!(outcomes.len(), 1, "a run always carries its head");
    }

    async fn wait_until(what: &str, done: impl Fn() -> bool) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn items_pushed_while_workers_retire_are_all_delivered_in_order() {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
        let outbox = Arc::new(Outbox::new(store.clone()));
        let recorder = Recorder::new(1);
        let courier: Arc<dyn Courier> = recorder.clone();
        // Bursts with pauses, so workers keep retiring and being restarted
        // right as new items arrive.
        let mut expected = Vec::new();
        for burst in 0..40 {
            for i in 0..(burst % 4) + 1 {
                let payload = format!("{burst}.{i}");
                outbox
                    .push(&courier, "dest", "lane", &payload)
                    .await
                    .unwrap();
                expected.push(payload);
            }
            if burst % 3 == 0 {
                tokio::task::yield_now().await;
            } else {
                tokio::time::sleep(Duration::from_micros(300)).await;
            }
        }
        let n = expected.len();
        wait_until("every item carried", || recorder.carried().len() >= n).await;
        assert_eq!(recorder.carried(), expected);
        wait_until("the idle worker retired", || {
            outbox.workers.live.lock().unwrap().is_empty()
        })
        .await;
        assert_eq!(store.pending("dest", 10).await.unwrap().len(), 0);
        // A retired destination starts again on the next item.
        outbox
            .push(&courier, "dest", "lane", "again")
            .await
            .unwrap();
        wait_until("the item after retiring", || {
            recorder.carried().len() == n + 1
        })
        .await;
    }

    #[tokio::test]
    async fn after_stop_pushes_are_stored_and_nothing_is_carried() {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
        let outbox = Outbox::new(store.clone());
        let recorder = Recorder::new(4);
        let courier: Arc<dyn Courier> = recorder.clone();
        outbox.stop();
        outbox.push(&courier, "dest", "lane", "late").await.unwrap();
        outbox.wake(&courier, "dest");
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(recorder.carried().is_empty(), "no worker after stop");
        assert!(outbox.workers.live.lock().unwrap().is_empty());
        let kept = store.pending("dest", 10).await.unwrap();
        assert_eq!(kept.len(), 1, "kept for the next start");
        assert_eq!(kept[0].payload, "late");
    }

    #[tokio::test]
    async fn a_run_is_carried_in_one_call_and_removed_from_the_store() {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
        for i in 0..10 {
            store
                .enqueue("dest", "lane", &format!("m{i}"))
                .await
                .unwrap();
        }
        let outbox = Outbox::new(store.clone());
        let recorder = Recorder::new(4);
        let courier: Arc<dyn Courier> = recorder.clone();
        outbox.wake(&courier, "dest");
        wait_until("all ten carried", || recorder.carried().len() == 10).await;
        let want: Vec<String> = (0..10).map(|i| format!("m{i}")).collect();
        assert_eq!(recorder.carried(), want);
        // 4 + 4 + 2.
        assert_eq!(*recorder.calls.lock().unwrap(), 3);
        wait_until("the store emptied", || {
            outbox.workers.live.lock().unwrap().is_empty()
        })
        .await;
        assert!(store.pending("dest", 20).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_wake_up_after_the_last_read_keeps_the_worker_reading() {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
        let outbox = Outbox::new(store);
        let courier: Arc<dyn Courier> = Recorder::new(1);
        // A worker that is between reading an empty queue and retiring.
        let signal = Arc::new(Signal::default());
        let task = tokio::spawn(std::future::pending::<()>());
        outbox.workers.live.lock().unwrap().insert(
            "dest".to_owned(),
            Worker {
                signal: signal.clone(),
                task,
            },
        );
        outbox.wake(&courier, "dest");
        let workers = Arc::downgrade(&outbox.workers);
        assert!(!retire(&workers, "dest", &signal), "woken: read again");
        assert!(outbox.workers.live.lock().unwrap().contains_key("dest"));
        assert!(retire(&workers, "dest", &signal), "nothing new: retire");
        assert!(outbox.workers.live.lock().unwrap().is_empty());
    }

    /// Postpones everything until opened.
    struct Gate {
        open: AtomicBool,
        carried: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl Courier for Gate {
        async fn carry(&self, _: &str, item: &OutboxItem) -> Carried {
            if !self.open.load(Ordering::Acquire) {
                return Carried::Later("closed".into());
            }
            self.carried.lock().unwrap().push(item.payload.clone());
            Carried::Done
        }
    }

    #[tokio::test]
    async fn a_destination_is_idle_only_when_nothing_waits_in_it_once_woken() {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
        let gate = Arc::new(Gate {
            open: AtomicBool::new(false),
            carried: Mutex::new(Vec::new()),
        });
        let courier: Arc<dyn Courier> = gate.clone();
        // Left by an earlier run: no worker until someone wakes it, which
        // is why callers of `is_idle` wake their queues first.
        store.enqueue("dest", "lane", "old").await.unwrap();
        let outbox = Outbox::new(store.clone());
        assert!(outbox.is_idle("dest"));
        outbox.wake(&courier, "dest");
        assert!(!outbox.is_idle("dest"));
        outbox.push(&courier, "dest", "lane", "new").await.unwrap();
        // Postponed items keep the worker, so the destination is busy.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!outbox.is_idle("dest"));
        assert!(outbox.is_idle("elsewhere"));
        gate.open.store(true, Ordering::Release);
        outbox.wake(&courier, "dest");
        wait_until("the worker read its queue empty", || outbox.is_idle("dest")).await;
        assert_eq!(*gate.carried.lock().unwrap(), vec!["old", "new"]);
        assert!(store.pending("dest", 10).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_new_worker_starts_with_the_head_read_behind_a_push_unless_a_worker_retired_since() {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
        let outbox = Outbox::new(store.clone());
        let recorder = Recorder::new(8);
        let courier: Arc<dyn Courier> = recorder.clone();
        // The store holds only "b"; the head was read when "a" (since
        // carried and removed) was still there.
        let b = store.enqueue("dest", "lane", "b").await.unwrap();
        let stale = |b: i64| Head {
            items: vec![
                OutboxItem {
                    payload: "a".into(),
                    ..item(b - 1)
                },
                OutboxItem {
                    payload: "b".into(),
                    ..item(b)
                },
            ],
            retired: 0,
        };
        // A worker retired after the read: the head is not trusted.
        outbox.workers.retired.store(1, Ordering::Release);
        outbox.wake_with(&courier, "dest", Some(stale(b)));
        wait_until("b carried", || !recorder.carried().is_empty()).await;
        wait_until("retired", || outbox.is_idle("dest")).await;
        assert_eq!(recorder.carried(), vec!["b"], "read from the store");

        // Nothing retired since the read: the worker starts from the head
        // as given (which is how it would carry "a" if it were still there).
        let b = store.enqueue("dest", "lane", "b").await.unwrap();
        let mut head = stale(b);
        head.retired = outbox.workers.retired.load(Ordering::Acquire);
        outbox.wake_with(&courier, "dest", Some(head));
        wait_until("the head carried", || recorder.carried().len() >= 3).await;
        wait_until("retired", || outbox.is_idle("dest")).await;
        assert_eq!(recorder.carried(), vec!["b", "a", "b"]);
    }

    #[tokio::test]
    async fn a_push_to_an_idle_destination_is_carried_from_the_head_read_with_it() {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
        // Left by an earlier run and never woken: the head read behind the
        // new item starts with it.
        store.enqueue("dest", "lane", "old").await.unwrap();
        let outbox = Outbox::new(store.clone());
        let recorder = Recorder::new(8);
        let courier: Arc<dyn Courier> = recorder.clone();
        for payload in ["new", "newer"] {
            outbox
                .push(&courier, "dest", "lane", payload)
                .await
                .unwrap();
        }
        wait_until("all carried", || recorder.carried().len() >= 3).await;
        wait_until("retired", || outbox.is_idle("dest")).await;
        assert_eq!(recorder.carried(), vec!["old", "new", "newer"]);
        assert!(store.pending("dest", 10).await.unwrap().is_empty());
    }
}
