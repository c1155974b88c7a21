//! The ledger of chat messages: every message the load sends gets an id
//! carried in its text (`bs<id>`), and every IRC client reports the tagged
//! messages it receives; from both the ledger tells what was delivered,
//! lost, duplicated or misrouted, and how long delivery took.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use serde_json::{json, Value};

/// The text tag of the load's messages.
pub const TAG: &str = "bs";

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Direction {
    /// A QQ user (the simulator's control API) writes to a bridge user, who
    /// reads it on IRC.
    QqToIrc,
    /// A bridge user writes on IRC to a QQ buddy, who is also a bridge user
    /// and reads it on IRC: IRC → QQ → IRC.
    IrcToQq,
}

struct Sent {
    direction: Direction,
    to: u64,
    at: Instant,
    deliveries: u32,
    latency_s: Option<f64>,
}

#[derive(Default)]
pub struct Ledger {
    next_id: AtomicU64,
    sent: Mutex<HashMap<u64, Sent>>,
    /// Tagged messages with an id never sent (should stay 0).
    unknown: AtomicU64,
    /// Delivered to somebody other than the recipient (should stay 0).
    misrouted: AtomicU64,
    /// Sends that failed before reaching the bridge, by reason.
    send_errors: Mutex<HashMap<String, u64>>,
    /// NOTICEs from the bridge telling a user a message was not delivered.
    failure_notices: AtomicU64,
}

/// The text of message `id`.
pub fn message_text(id: u64) -> String {
    format!("{TAG}{id} scale test message")
}

/// The id in a received text, if it is one of ours.
pub fn message_id(text: &str) -> Option<u64> {
    let rest = text.strip_prefix(TAG)?;
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    rest[..end].parse().ok()
}

impl Ledger {
    /// Registers a message about to be sent; returns its id.
    pub fn sending(&self, direction: Direction, to: u64) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut sent) = self.sent.lock() {
            sent.insert(
                id,
                Sent {
                    direction,
                    to,
                    at: Instant::now(),
                    deliveries: 0,
                    latency_s: None,
                },
            );
        }
        id
    }

    /// The send of `id` failed: it will not count as sent.
    pub fn send_failed(&self, id: u64, reason: String) {
        if let Ok(mut sent) = self.sent.lock() {
            sent.remove(&id);
        }
        if let Ok(mut errors) = self.send_errors.lock() {
            *errors.entry(reason).or_default() += 1;
        }
    }

    /// Bridge user `at` received message `id` on IRC.
    pub fn received(&self, id: u64, at: u64) {
        let Ok(mut sent) = self.sent.lock() else {
            return;
        };
        match sent.get_mut(&id) {
            None => {
                self.unknown.fetch_add(1, Ordering::Relaxed);
            }
            Some(s) if s.to != at => {
                self.misrouted.fetch_add(1, Ordering::Relaxed);
            }
            Some(s) => {
                s.deliveries += 1;
                if s.latency_s.is_none() {
                    s.latency_s = Some(s.at.elapsed().as_secs_f64());
                }
            }
        }
    }

    pub fn failure_notice(&self) {
        self.failure_notices.fetch_add(1, Ordering::Relaxed);
    }

    /// Messages sent so far that have not arrived yet.
    pub fn outstanding(&self) -> usize {
        self.sent.lock().map_or(0, |sent| {
            sent.values().filter(|s| s.deliveries == 0).count()
        })
    }

    /// Figures of one direction.
    pub fn summary(&self, direction: Direction) -> Value {
        let Ok(sent) = self.sent.lock() else {
            return json!({});
        };
        let mine: Vec<&Sent> = sent.values().filter(|s| s.direction == direction).collect();
        let delivered = mine.iter().filter(|s| s.deliveries > 0).count();
        let duplicated = mine.iter().filter(|s| s.deliveries > 1).count();
        let mut latencies: Vec<f64> = mine.iter().filter_map(|s| s.latency_s).collect();
        latencies.sort_by(f64::total_cmp);
        json!({
            "sent": mine.len(),
            "delivered": delivered,
            "lost": mine.len() - delivered,
            "duplicated": duplicated,
            "latency_s": {
                "p50": percentile(&latencies, 0.50),
                "p90": percentile(&latencies, 0.90),
                "p99": percentile(&latencies, 0.99),
                "max": latencies.last().copied().unwrap_or(0.0),
            },
        })
    }

    /// Figures that concern both directions.
    pub fn problems(&self) -> Value {
        let errors = self
            .send_errors
            .lock()
            .map(|e| e.clone())
            .unwrap_or_default();
        json!({
            "unknown_ids": self.unknown.load(Ordering::Relaxed),
            "misrouted": self.misrouted.load(Ordering::Relaxed),
            "failure_notices": self.failure_notices.load(Ordering::Relaxed),
            "send_errors": errors,
        })
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}
