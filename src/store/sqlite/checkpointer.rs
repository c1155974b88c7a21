//! WAL checkpoints off the message path. SQLite normally checkpoints inside
//! whichever commit pushes the write-ahead log past its threshold, so every
//! few hundred messages one of them waited several milliseconds for the
//! database file to be written and synced: the bridge's p99 per message
//! (README, Performance). Here a thread with its own connection looks at
//! the log four times a second and checkpoints in PASSIVE mode, which never
//! blocks the writer; the writer's own automatic checkpoint stays as a
//! backstop at a larger size.
//!
//! A checkpoint waits until the log holds [`MIN_PAGES`] pages. One that
//! catches up completely lets the next commit start the log over, and that
//! commit syncs the log's new header (SQLite requires it, so that a write
//! reordered after the restart cannot corrupt the database): 0.25–1.3 ms on
//! the development machine, on the message's own thread. Checkpointing every
//! 250 ms whatever the log held, that was nearly every message of a quiet
//! conversation.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use rusqlite::Connection;

/// How often the log is looked at.
const INTERVAL: Duration = Duration::from_millis(250);

/// Pages the log holds before a checkpoint is worth the restart that
/// follows it (~4 MiB; ~125 relayed messages). A busy bridge writes this
/// many in well under a second, so for it nothing changes.
const MIN_PAGES: u32 = 1_000;

/// Pages in the log not yet copied into the database, read from the
/// wal-index header at the start of the `-shm` file. Its layout for the
/// unix VFS is documented in SQLite's `walformat.html`: the 48-byte header
/// twice (a writer changes one copy, then the other), `mxFrame` at byte 16
/// of each, then `nBackfill` at byte 96, all in native byte order. `None`
/// when it cannot be read or a writer is between the two copies.
fn pages_waiting(shm: &File) -> Option<u32> {
    let mut head = [0u8; 100];
    shm.read_exact_at(&mut head, 0).ok()?;
    if head[..48] != head[48..96] {
        return None;
    }
    let word = |at: usize| {
        head.get(at..at + 4)?
            .try_into()
            .ok()
            .map(u32::from_ne_bytes)
    };
    Some(word(16)?.saturating_sub(word(96)?))
}

/// WAL pages after which a commit checkpoints by itself anyway (about
/// 80 MiB). Under a steady write load this is how the log starts over:
/// the writer finishes the checkpoint and syncs the log's new header, a
/// stall of ~7 ms for the messages queued behind it. This thread's passive
/// checkpoints never see the log idle (a message arrives while one runs),
/// so they cannot restart it. At 1,000 msg/s the log grows ~8,000 pages a
/// second: 10,000 stalled every 1.25 s and set the p99 (~0.9 ms), 20,000
/// halves how often (p99 ~0.4 ms); 2,000 put it back at 4 ms (README,
/// Performance). The price is up to 80 MiB of log file on disk.
pub(super) const BACKSTOP_PAGES: u32 = 20_000;

/// Stops the thread when dropped and waits for it: one last checkpoint,
/// then its connection is closed.
pub(super) struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Checkpointer {
    /// `None` if the thread cannot start or open the database: the writer's
    /// automatic checkpoints then do the work as before.
    pub fn start(path: &Path) -> Option<Checkpointer> {
        let conn = match Connection::open(path) {
            Ok(conn) => conn,
            Err(e) => {
                tracing::warn!(error = %e, "no background checkpoints; commits checkpoint themselves");
                return None;
            }
        };
        let mut shm_path = path.as_os_str().to_owned();
        shm_path.push("-shm");
        let shm = File::open(&shm_path)
            .inspect_err(|e| tracing::debug!(error = %e, "cannot read the wal-index; checkpoints every round"))
            .ok();
        let (stop, stopped) = mpsc::channel::<()>();
        let started = thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || {
                yield_to_the_message_path();
                loop {
                    let last = match stopped.recv_timeout(INTERVAL) {
                        Err(RecvTimeoutError::Timeout) => false,
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => true,
                    };
                    // Unknown (no `-shm` to read): every round, as SQLite
                    // without this thread would.
                    let waiting = shm.as_ref().and_then(pages_waiting);
                    if last || waiting.is_none_or(|pages| pages >= MIN_PAGES) {
                        // Busy (another checkpoint running) or failed: the
                        // next round or the backstop will do it.
                        if let Err(e) = conn
                            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0))
                        {
                            tracing::debug!(error = %e, "background checkpoint failed");
                        }
                    }
                    if last {
                        break;
                    }
                }
            });
        match started {
            Ok(thread) => Some(Checkpointer {
                stop: Some(stop),
                thread: Some(thread),
            }),
            Err(e) => {
                tracing::warn!(error = %e, "no background checkpoints; commits checkpoint themselves");
                None
            }
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop = None;
        if let Some(thread) = self.thread.take() {
            super::connection_thread::join_unless_current(thread);
        }
    }
}

/// Runs this thread only when no other thread wants the CPU (Linux
/// `SCHED_IDLE`). Copying a quarter second of log into the database takes a
/// few milliseconds of CPU; on a busy two-core machine a message whose
/// threads had to share a core with it waited that long (README,
/// Performance). When the machine is busy without pause it may not run at
/// all; the writer's backstop checkpoint then does the work. Best effort:
/// where the policy is refused, the thread runs at normal priority.
fn yield_to_the_message_path() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: plain system call on the calling thread (pid 0) with a
        // valid parameter struct that outlives the call.
        let refused = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) } != 0;
        if refused {
            tracing::debug!(error = %std::io::Error::last_os_error(), "checkpoints run at normal priority");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_pages(conn: &Connection, pages: usize) {
        let page = "x".repeat(4000);
        let tx = conn.unchecked_transaction().unwrap();
        for _ in 0..pages {
            tx.execute("INSERT INTO t (v) VALUES (?1)", [&page])
                .unwrap();
        }
        tx.commit().unwrap();
    }

    /// The writer as the store sets it up: WAL, the backstop only.
    fn writer(path: &Path) -> Connection {
        let conn = Connection::open(path).unwrap();
        conn.pragma_update(None, "journal_mode", "WAL").unwrap();
        conn.pragma_update(None, "wal_autocheckpoint", BACKSTOP_PAGES)
            .unwrap();
        conn.execute("CREATE TABLE t (v TEXT)", []).unwrap();
        conn
    }

    fn shm(path: &Path) -> File {
        File::open(format!("{}-shm", path.display())).unwrap()
    }

    #[test]
    fn the_pages_waiting_are_read_from_the_wal_index() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let conn = writer(&path);
        let before = pages_waiting(&shm(&path)).unwrap();
        write_pages(&conn, 20);
        let after = pages_waiting(&shm(&path)).unwrap();
        assert!(after >= before + 20, "{before} -> {after}");
        let (_, log, done): (i64, i64, i64) = conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!(i64::from(after), log, "the log's own count");
        assert_eq!(log, done);
        assert_eq!(pages_waiting(&shm(&path)), Some(0));
    }

    #[test]
    fn a_small_log_waits_and_a_large_one_is_checkpointed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let conn = writer(&path);
        let checkpointer = Checkpointer::start(&path).unwrap();
        write_pages(&conn, 50);
        std::thread::sleep(INTERVAL * 3);
        let waiting = pages_waiting(&shm(&path)).unwrap();
        assert!(waiting >= 50, "checkpointed below MIN_PAGES: {waiting}");
        write_pages(&conn, MIN_PAGES as usize);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while pages_waiting(&shm(&path)) != Some(0) {
            assert!(std::time::Instant::now() < deadline, "never checkpointed");
            std::thread::sleep(INTERVAL / 5);
        }
        // What is left at the end is folded in when the thread stops.
        write_pages(&conn, 5);
        drop(checkpointer);
        assert_eq!(pages_waiting(&shm(&path)), Some(0));
    }
}
