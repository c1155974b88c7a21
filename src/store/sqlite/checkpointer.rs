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
/// 40 MiB): reached when this thread cannot keep up, or under a steady
/// write load that never leaves the log idle long enough to start it over.
/// (2,000 was tried: the p99 at 1,000 msg/s went back to 4 ms.)
pub(super) const BACKSTOP_PAGES: u32 = 10_000;

/// Stops the thread (after one last checkpoint) when dropped.
pub(super) struct Checkpointer {
    _stop: mpsc::Sender<()>,
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
            .spawn(move || loop {
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
            });
        match started {
            Ok(_) => Some(Checkpointer { _stop: stop }),
            Err(e) => {
                tracing::warn!(error = %e, "no background checkpoints; commits checkpoint themselves");
                None
            }
        }
    }
}
