//! The connection's own thread. rusqlite is blocking, and every store call
//! used to be a `spawn_blocking` round trip: a task handed to tokio's
//! blocking pool, a pooled thread woken for it, a mutex taken, and the
//! caller woken again. A relayed message makes three store calls, and a
//! profile at a few thousand messages a second showed a third of the time in
//! the kernel's task switching for those hand-offs (README, Performance).
//! Here one thread owns the connection and takes calls from a queue: while
//! it is busy, calls queue up and are run back to back with no wake-up in
//! between, and the async caller only waits on a oneshot. Calls are queued
//! when they are made, not when their future is first polled, so a caller
//! can queue a write and go on without waiting for it (the outbox removes
//! delivered items that way) and still know that every later call sees it.
//!
//! A *light* call (a few rows: an outbox write or read) made while the
//! thread is idle runs at once on the caller's thread instead. Handing it
//! over would wake the store thread and then the caller again, two wake-ups
//! that on an idle machine cost more than the statement: ~0.15 ms of a
//! relayed message's ~1 ms on the sub-millisecond IRC and QQ paths (README,
//! Performance). Under load the queue is rarely empty and calls go through
//! it as before, run back to back. "Idle" means no call queued or running,
//! decided under the connection's lock, so a light call never overtakes
//! one made before it and the order stays the order the calls were made.

use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError, TryLockError};
use std::thread;

use futures::future::Either;
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::store::StoreError;

/// A queued call: runs with the connection and returns the hand-over of
/// its answer, which the thread makes after letting go of the connection,
/// so the caller it wakes finds the store idle.
type Call = Box<dyn FnOnce(&mut Connection) -> Reply + Send>;
type Reply = Box<dyn FnOnce() + Send>;

/// The queue into the thread. Dropping it closes the queue, lets the calls
/// already queued run, and waits for the thread to close the connection: a
/// store that has been dropped has let go of its files, so another process
/// (or a restart) opens a database whose log SQLite has already folded in.
pub(super) struct ConnectionThread {
    shared: Arc<Shared>,
    calls: Option<mpsc::Sender<Call>>,
    thread: Option<thread::JoinHandle<()>>,
}

struct Shared {
    /// Held by whoever runs a call: the thread, or a light call's caller.
    conn: Mutex<Connection>,
    /// Calls queued and not finished. Raised before a call is queued and
    /// lowered by the thread under the lock once it has run, so a light
    /// call that holds the lock and reads zero has nothing before it.
    queued: AtomicUsize,
}

impl ConnectionThread {
    pub fn start(conn: Connection) -> Result<ConnectionThread, StoreError> {
        let (calls, queue) = mpsc::channel::<Call>();
        let shared = Arc::new(Shared {
            conn: Mutex::new(conn),
            queued: AtomicUsize::new(0),
        });
        let on_thread = shared.clone();
        let thread = thread::Builder::new()
            .name("sqlite-store".into())
            .spawn(move || {
                while let Ok(call) = queue.recv() {
                    let reply = {
                        let mut conn = on_thread
                            .conn
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner);
                        let reply = panic::catch_unwind(AssertUnwindSafe(|| call(&mut conn)));
                        on_thread.queued.fetch_sub(1, Ordering::Release);
                        reply
                    };
                    match reply {
                        Ok(reply) => reply(),
                        // A panicking call drops its reply, so its caller
                        // gets an error; an open transaction rolled back as
                        // it was dropped during unwinding, so the connection
                        // is still sound and the other callers keep being
                        // served.
                        Err(_) => tracing::error!("a store operation panicked; it was rolled back"),
                    }
                }
            })
            .map_err(|e| StoreError::Database(format!("cannot start the store thread: {e}")))?;
        Ok(ConnectionThread {
            shared,
            calls: Some(calls),
            thread: Some(thread),
        })
    }

    /// Queues `f` to run on the connection's thread now, after the calls
    /// queued before it and before any queued later; the returned future
    /// only waits for its result. Dropping that future does not cancel the
    /// call (a write that was asked for happens whole or not at all); a
    /// failure nobody waits for is logged instead.
    pub fn submit<T, F>(
        &self,
        op: &'static str,
        f: F,
    ) -> impl Future<Output = Result<T, StoreError>> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let call: Call = Box::new(move |conn| {
            let result = f(conn);
            Box::new(move || {
                if let Err(Err(e)) = reply.send(result) {
                    tracing::error!(error = %e, "{op} failed");
                }
            })
        });
        self.shared.queued.fetch_add(1, Ordering::AcqRel);
        let queued = self
            .calls
            .as_ref()
            .is_some_and(|calls| calls.send(call).is_ok());
        if !queued {
            self.shared.queued.fetch_sub(1, Ordering::Release);
        }
        async move {
            if !queued {
                return Err(StoreError::Database(format!(
                    "{op}: the store thread has stopped"
                )));
            }
            answer
                .await
                .map_err(|_| StoreError::Database(format!("{op}: database task panicked")))?
        }
    }

    /// [`ConnectionThread::submit`] for a light call: one that touches a
    /// few rows and takes well under a millisecond. When no call is queued
    /// or running it runs right here, on the caller's thread, and the
    /// future is ready; otherwise it is queued like any other. Its failure
    /// is only returned, so it is for callers that await it.
    pub fn submit_light<T, F>(
        &self,
        op: &'static str,
        f: F,
    ) -> impl Future<Output = Result<T, StoreError>> + Send + 'static
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        match self.run_if_idle(op, f) {
            Ok(result) => Either::Left(std::future::ready(result)),
            Err(f) => Either::Right(self.submit(op, f)),
        }
    }

    /// Runs `f` now if the connection is free and nothing is queued;
    /// hands `f` back otherwise.
    fn run_if_idle<T, F>(&self, op: &'static str, f: F) -> Result<Result<T, StoreError>, F>
    where
        F: FnOnce(&mut Connection) -> Result<T, StoreError>,
    {
        let mut conn = match self.shared.conn.try_lock() {
            Ok(conn) => conn,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return Err(f),
        };
        if self.shared.queued.load(Ordering::Acquire) != 0 {
            return Err(f);
        }
        Ok(
            panic::catch_unwind(AssertUnwindSafe(|| f(&mut conn))).unwrap_or_else(|_| {
                tracing::error!("a store operation panicked; it was rolled back");
                Err(StoreError::Database(format!(
                    "{op}: database task panicked"
                )))
            }),
        )
    }
}

impl Drop for ConnectionThread {
    fn drop(&mut self) {
        self.calls = None;
        if let Some(thread) = self.thread.take() {
            join_unless_current(thread);
        }
    }
}

/// Waits for `thread` to end, unless it is the calling thread itself (a
/// call that held the last handle): that one ends as soon as it returns.
pub(super) fn join_unless_current(thread: thread::JoinHandle<()>) {
    if thread.thread().id() != thread::current().id() && thread.join().is_err() {
        tracing::error!("a store thread panicked while closing the database");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A thread whose database has a table `t (n INTEGER)`.
    async fn thread() -> ConnectionThread {
        let thread = ConnectionThread::start(Connection::open_in_memory().unwrap()).unwrap();
        thread
            .submit("create", |c| {
                c.execute_batch("CREATE TABLE t (n INTEGER)")
                    .map_err(|e| StoreError::Database(e.to_string()))
            })
            .await
            .unwrap();
        thread
    }

    #[tokio::test]
    async fn calls_run_in_the_order_they_were_made() {
        let thread = thread().await;
        let inserts: Vec<_> = (0..100)
            .map(|n| {
                thread.submit("insert", move |c| {
                    c.execute("INSERT INTO t VALUES (?1)", [n])
                        .map_err(|e| StoreError::Database(e.to_string()))
                })
            })
            .collect();
        for insert in futures::future::join_all(inserts).await {
            insert.unwrap();
        }
        let order: Vec<i64> = thread
            .submit("read", |c| {
                let mut s = c.prepare("SELECT n FROM t ORDER BY rowid").unwrap();
                let rows = s.query_map([], |r| r.get(0)).unwrap();
                Ok(rows.map(Result::unwrap).collect())
            })
            .await
            .unwrap();
        assert_eq!(order, (0..100).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_panicking_call_is_an_error_and_the_thread_goes_on() {
        let thread = thread().await;
        let failed = thread
            .submit("explode", |_| -> Result<(), StoreError> {
                panic!("deliberate panic in a store call")
            })
            .await;
        match failed {
            Err(StoreError::Database(why)) => assert!(why.contains("explode"), "{why}"),
            other => panic!("expected a database error, got {other:?}"),
        }
        let answer = thread
            .submit("after", |c| {
                c.query_row("SELECT 41 + 1", [], |r| r.get::<_, i64>(0))
                    .map_err(|e| StoreError::Database(e.to_string()))
            })
            .await
            .unwrap();
        assert_eq!(answer, 42);
    }

    fn insert(n: i64) -> impl FnOnce(&mut Connection) -> Result<usize, StoreError> {
        move |c| {
            c.execute("INSERT INTO t VALUES (?1)", [n])
                .map_err(|e| StoreError::Database(e.to_string()))
        }
    }

    fn all(c: &mut Connection) -> Result<Vec<i64>, StoreError> {
        let mut s = c.prepare("SELECT n FROM t ORDER BY rowid").unwrap();
        let rows = s.query_map([], |r| r.get(0)).unwrap();
        Ok(rows.map(Result::unwrap).collect())
    }

    #[tokio::test]
    async fn a_light_call_on_an_idle_thread_runs_at_once_on_the_callers_thread() {
        let thread = thread().await;
        let caller = std::thread::current().id();
        let ran_on = thread.submit_light("where", |_| Ok(std::thread::current().id()));
        assert_eq!(ran_on.await.unwrap(), caller);
        // A queued call still runs on the store's thread.
        let queued_on = thread.submit("where", |_| Ok(std::thread::current().id()));
        assert_ne!(queued_on.await.unwrap(), caller);
    }

    #[tokio::test]
    async fn a_light_call_made_while_a_call_runs_waits_its_turn() {
        let thread = thread().await;
        let caller = std::thread::current().id();
        let slow = thread.submit("slow insert", |c| {
            std::thread::sleep(std::time::Duration::from_millis(50));
            insert(1)(c)
        });
        let light = thread.submit_light("light insert", |c| {
            insert(2)(c)?;
            Ok(std::thread::current().id())
        });
        slow.await.unwrap();
        assert_ne!(light.await.unwrap(), caller);
        assert_eq!(thread.submit("read", all).await.unwrap(), vec![1, 2]);
    }

    /// One caller makes queued and light calls in turn without waiting, so
    /// the store thread is often between two queued calls with its lock
    /// free: a light call must still not overtake the queued ones.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn light_and_queued_calls_keep_the_order_they_were_made_in() {
        let thread = thread().await;
        let mut waits = Vec::new();
        for n in 0..4000 {
            if n % 2 == 0 {
                waits.push(Either::Left(thread.submit("queued insert", insert(n))));
            } else {
                waits.push(Either::Right(
                    thread.submit_light("light insert", insert(n)),
                ));
            }
        }
        for wait in waits {
            wait.await.unwrap();
        }
        let order = thread.submit("read", all).await.unwrap();
        assert_eq!(order, (0..4000).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_call_is_queued_when_made_and_runs_though_nobody_waits() {
        let thread = thread().await;
        // Never polled: the write is queued by the call itself, so the read
        // queued after it sees it.
        drop(thread.submit("insert", |c| {
            std::thread::sleep(std::time::Duration::from_millis(50));
            c.execute("INSERT INTO t VALUES (7)", [])
                .map_err(|e| StoreError::Database(e.to_string()))
        }));
        let n: i64 = thread
            .submit("count", |c| {
                c.query_row("SELECT count(*) FROM t", [], |r| r.get(0))
                    .map_err(|e| StoreError::Database(e.to_string()))
            })
            .await
            .unwrap();
        assert_eq!(n, 1);
    }
}
