//! WAL checkpoints off the message path. SQLite normally checkpoints inside
//! whichever commit pushes the write-ahead log past its threshold, so every
//! few hundred messages one of them waited several milliseconds for the
//! database file to be written and synced: the bridge's p99 per message
//! (README, Performance). Here a thread with its own connection checkpoints
//! a few times a second in PASSIVE mode, which never blocks the writer; the
//! writer's own automatic checkpoint stays as a backstop at a larger size.

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use rusqlite::Connection;

/// How often the log is folded back into the database.
const INTERVAL: Duration = Duration::from_millis(250);

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
                    // Busy (another checkpoint running) or failed: the next
                    // round or the backstop will do it.
                    if let Err(e) =
                        conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| r.get::<_, i64>(0))
                    {
                        tracing::debug!(error = %e, "background checkpoint failed");
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
