//! Login sessions: the (client IP, UIN) key that HTTP QQ 1.1 identifies a
//! client by (there is no cookie or token, http11.md §3), the idle timeout
//! after which a silent client counts as gone, and the one background task
//! that expires idle sessions for the whole world.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::events::Origin;
use super::shutdown::ShutdownSignal;
use super::world::World;

/// Identifies a logged-in client: its source address and its account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionKey {
    pub ip: IpAddr,
    pub uin: u64,
}

/// One live session. There is at most one per account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    pub ip: IpAddr,
    pub protocol: Origin,
    pub started: Instant,
    pub last_seen: Instant,
    /// Unique among all sessions the world ever opened, so a protocol can
    /// tell its own session from a later one of the same account.
    pub serial: u64,
    /// Silence after which the session ends (already time-scaled); each
    /// protocol has its own (HTTP QQ 1.1 `LI`, WebQQ `session_idle_s`).
    pub idle_timeout: Duration,
}

impl Session {
    pub fn is_idle(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.last_seen) >= self.idle_timeout
    }
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionEnd {
    /// The account logged in again (from anywhere, over any protocol).
    Replaced,
    /// Silent for longer than its idle timeout.
    Expired,
    /// The client logged out.
    LoggedOut,
}

/// What became of a session a protocol opened earlier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStatus {
    Live,
    Ended(SessionEnd),
}

/// What a second login for an account that still has a session gets
/// (http11.md §3, flag `relogin_while_online`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReloginPolicy {
    /// The new login replaces the old session.
    #[default]
    Replace,
    /// The login fails until the old session has timed out.
    Strict,
}

/// How often the sweeper looks: a tenth of the timeout, within bounds, so
/// a session ends at most ~10% late (requests also check on their own).
fn sweep_interval(timeout: Duration) -> Duration {
    (timeout / 10).clamp(Duration::from_millis(10), Duration::from_secs(5))
}

/// Starts the task that expires idle sessions until shutdown.
pub(crate) fn spawn_sweeper(world: Arc<World>, mut shutdown: ShutdownSignal) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(sweep_interval(world.idle_timeout()));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.triggered() => return,
                _ = ticker.tick() => {
                    let expired = world.expire_idle_sessions(Instant::now());
                    if expired > 0 {
                        tracing::debug!(expired, "expired idle sessions");
                    }
                }
            }
        }
    })
}
