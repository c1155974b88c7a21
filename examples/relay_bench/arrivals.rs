//! Where and when each benchmark message arrived. Every message carries a
//! tag (`rb-<run>-<seq>`); each receiving client records the first time it
//! saw a tag, under its own name, and the measuring loop waits for it.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// The prefix that marks a benchmark tag in a message body.
pub const TAG_PREFIX: &str = "rb-";

pub fn tag(run: &str, seq: usize) -> String {
    format!("{TAG_PREFIX}{run}-{seq}")
}

#[derive(Default)]
pub struct Arrivals {
    seen: Mutex<HashMap<String, Instant>>,
    /// Messages (events, lines) carrying at least one tag, per place: a
    /// bridge that merges lines delivers fewer messages than tags.
    messages: Mutex<HashMap<String, usize>>,
    notify: Notify,
}

impl Arrivals {
    /// Records every tag in `body` as seen by `place` now.
    pub fn record(&self, place: &str, body: &str) {
        let now = Instant::now();
        let mut any = false;
        if let Ok(mut seen) = self.seen.lock() {
            for word in body.split_whitespace() {
                if word.starts_with(TAG_PREFIX) {
                    seen.entry(format!("{place}/{word}")).or_insert(now);
                    any = true;
                }
            }
        }
        if any {
            if let Ok(mut messages) = self.messages.lock() {
                *messages.entry(place.to_owned()).or_default() += 1;
            }
            self.notify.notify_waiters();
        }
    }

    pub fn get(&self, place: &str, tag: &str) -> Option<Instant> {
        self.seen
            .lock()
            .ok()?
            .get(&format!("{place}/{tag}"))
            .copied()
    }

    /// Waits until `place` has seen `tag`, at most `timeout`.
    pub async fn wait(&self, place: &str, tag: &str, timeout: Duration) -> Option<Instant> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(at) = self.get(place, tag) {
                return Some(at);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.get(place, tag);
            }
        }
    }

    /// How many tags of `run` `place` has seen, and the latest arrival.
    pub fn count(&self, place: &str, run: &str) -> (usize, Option<Instant>) {
        let prefix = format!("{place}/{TAG_PREFIX}{run}-");
        let Ok(seen) = self.seen.lock() else {
            return (0, None);
        };
        let mut n = 0;
        let mut last: Option<Instant> = None;
        for (k, at) in seen.iter() {
            if k.starts_with(&prefix) {
                n += 1;
                last = Some(last.map_or(*at, |l| l.max(*at)));
            }
        }
        (n, last)
    }

    /// How many tagged messages `place` has received since the last
    /// [`Arrivals::clear`].
    pub fn messages(&self, place: &str) -> usize {
        self.messages
            .lock()
            .ok()
            .and_then(|m| m.get(place).copied())
            .unwrap_or(0)
    }

    /// Forgets everything (between runs, so lookups stay cheap).
    pub fn clear(&self) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.clear();
        }
        if let Ok(mut messages) = self.messages.lock() {
            messages.clear();
        }
    }
}
