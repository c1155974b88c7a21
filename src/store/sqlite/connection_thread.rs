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

use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;
use std::thread;

use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::store::StoreError;

type Call = Box<dyn FnOnce(&mut Connection) + Send>;

/// The queue into the thread. Dropping it closes the queue, lets the calls
/// already queued run, and waits for the thread to close the connection: a
/// store that has been dropped has let go of its files, so another process
/// (or a restart) opens a database whose log SQLite has already folded in.
pub(super) struct ConnectionThread {
    calls: Option<mpsc::Sender<Call>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl ConnectionThread {
    pub fn start(mut conn: Connection) -> Result<ConnectionThread, StoreError> {
        let (calls, queue) = mpsc::channel::<Call>();
        let thread = thread::Builder::new()
            .name("sqlite-store".into())
            .spawn(move || {
                while let Ok(call) = queue.recv() {
                    // A panicking call drops its reply, so its caller gets
                    // an error; an open transaction rolled back as it was
                    // dropped during unwinding, so the connection is still
                    // sound and the other callers keep being served.
                    if panic::catch_unwind(AssertUnwindSafe(|| call(&mut conn))).is_err() {
                        tracing::error!("a store operation panicked; it was rolled back");
                    }
                }
            })
            .map_err(|e| StoreError::Database(format!("cannot start the store thread: {e}")))?;
        Ok(ConnectionThread {
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
            if let Err(Err(e)) = reply.send(f(conn)) {
                tracing::error!(error = %e, "{op} failed");
            }
        });
        let queued = self
            .calls
            .as_ref()
            .is_some_and(|calls| calls.send(call).is_ok());
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
