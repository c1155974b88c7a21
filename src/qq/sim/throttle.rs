//! HTTP QQ 1.1's penalties and the Ack_AddToList double send (http11.md
//! §6.6, §6.8, §6.10): per-account memory of recent CLTMSG and Change_Stat
//! requests and of the first half of each verification-request pair.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// Pairs remembered for the double send before old ones are pruned.
const MAX_ACK_PAIRS: usize = 10_000;

/// The limits, already time-scaled.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ThrottleLimits {
    pub message_interval: Duration,
    pub status_limit: usize,
    pub status_window: Duration,
    pub ack_window: Duration,
}

#[derive(Default)]
struct ThrottleState {
    last_message: HashMap<u64, Instant>,
    status_changes: HashMap<u64, VecDeque<Instant>>,
    /// (sender, target) → when the first CD=2 of a pair arrived.
    ack_first_half: HashMap<(u64, u64), Instant>,
}

pub(crate) struct Throttle {
    limits: ThrottleLimits,
    state: Mutex<ThrottleState>,
}

impl Throttle {
    pub fn new(limits: ThrottleLimits) -> Self {
        Throttle {
            limits,
            state: Mutex::new(ThrottleState::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ThrottleState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// CLTMSG: false if the previous one from `uin` was too recent.
    pub fn allow_message(&self, uin: u64) -> bool {
        let now = Instant::now();
        let previous = self.lock().last_message.insert(uin, now);
        previous.is_none_or(|at| now.saturating_duration_since(at) >= self.limits.message_interval)
    }

    /// Change_Stat: false if `uin` already changed `status_limit` times
    /// within the window. Refused attempts do not count.
    pub fn allow_status_change(&self, uin: u64) -> bool {
        let now = Instant::now();
        let mut state = self.lock();
        let recent = state.status_changes.entry(uin).or_default();
        while recent
            .front()
            .is_some_and(|at| now.saturating_duration_since(*at) >= self.limits.status_window)
        {
            recent.pop_front();
        }
        if recent.len() >= self.limits.status_limit {
            return false;
        }
        recent.push_back(now);
        true
    }

    /// Ack_AddToList CD=2: true for the first of a pair (to be refused and
    /// dropped), false for the second one inside the window (delivered).
    pub fn is_first_half(&self, uin: u64, target: u64) -> bool {
        let now = Instant::now();
        let window = self.limits.ack_window;
        let mut state = self.lock();
        let pairs = &mut state.ack_first_half;
        if let Some(at) = pairs.remove(&(uin, target)) {
            if now.saturating_duration_since(at) < window {
                return false;
            }
        }
        if pairs.len() >= MAX_ACK_PAIRS {
            pairs.retain(|_, at| now.saturating_duration_since(*at) < window);
        }
        pairs.insert((uin, target), now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> Throttle {
        Throttle::new(ThrottleLimits {
            message_interval: Duration::from_secs(60),
            status_limit: 3,
            status_window: Duration::from_secs(60),
            ack_window: Duration::from_secs(60),
        })
    }

    #[test]
    fn second_message_inside_the_interval_is_refused() {
        let t = throttle();
        assert!(t.allow_message(1));
        assert!(!t.allow_message(1));
        assert!(t.allow_message(2));
    }

    #[test]
    fn fourth_status_change_inside_the_window_is_refused() {
        let t = throttle();
        assert!((0..3).all(|_| t.allow_status_change(1)));
        assert!(!t.allow_status_change(1));
        assert!(t.allow_status_change(2));
    }

    #[test]
    fn double_send_alternates_per_pair() {
        let t = throttle();
        assert!(t.is_first_half(1, 2));
        assert!(t.is_first_half(1, 3));
        assert!(!t.is_first_half(1, 2));
        assert!(t.is_first_half(1, 2));
    }
}
