//! Pacing: token buckets that make callers wait their turn, so a burst of
//! QQ messages or a 200-member group drains at the rate the IRC network
//! allows instead of tripping its flood control.

use std::time::Duration;

use tokio::sync::{Mutex, Semaphore, SemaphorePermit};
use tokio::time::Instant;

/// A token bucket: `burst` tokens at most, refilled at `rate` per second.
/// Waiters are served in arrival order (the lock is fair and held while
/// waiting), so whoever asked first sends first.
pub(crate) struct TokenBucket {
    rate: f64,
    burst: f64,
    state: Mutex<BucketState>,
}

struct BucketState {
    tokens: f64,
    refilled: Instant,
}

impl TokenBucket {
    /// A full bucket. `rate` below a millionth per second counts as that.
    pub fn new(rate: f64, burst: u32) -> TokenBucket {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            rate: rate.max(1e-6),
            burst,
            state: Mutex::new(BucketState {
                tokens: burst,
                refilled: Instant::now(),
            }),
        }
    }

    /// Waits for a token and takes it.
    pub async fn acquire(&self) {
        let mut state = self.state.lock().await;
        loop {
            let now = Instant::now();
            let earned = now.duration_since(state.refilled).as_secs_f64() * self.rate;
            state.tokens = (state.tokens + earned).min(self.burst);
            state.refilled = now;
            if state.tokens >= 1.0 {
                state.tokens -= 1.0;
                return;
            }
            let missing = 1.0 - state.tokens;
            tokio::time::sleep(Duration::from_secs_f64(missing / self.rate)).await;
        }
    }
}

/// The network-wide gate for new connections: a rate (connections per
/// second) and a cap on registrations in flight, because servers accept
/// with a short backlog (ngIRCd's is about 10) and drop the excess.
pub(crate) struct ConnectGate {
    bucket: TokenBucket,
    in_flight: Semaphore,
}

/// Registrations one network may have in flight at once.
pub(crate) const MAX_CONNECTS_IN_FLIGHT: usize = 8;

impl ConnectGate {
    pub fn new(per_second: f64) -> ConnectGate {
        // A burst of about one second's worth, at least one.
        let burst = per_second.ceil().clamp(1.0, MAX_CONNECTS_IN_FLIGHT as f64) as u32;
        ConnectGate {
            bucket: TokenBucket::new(per_second, burst),
            in_flight: Semaphore::new(MAX_CONNECTS_IN_FLIGHT),
        }
    }

    /// Waits for a slot; hold the permit until the registration finished.
    pub async fn enter(&self) -> Option<SemaphorePermit<'_>> {
        let permit = self.in_flight.acquire().await.ok()?;
        self.bucket.acquire().await;
        Some(permit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn bucket_allows_a_burst_then_the_rate() {
        let bucket = TokenBucket::new(2.0, 3);
        let start = Instant::now();
        for _ in 0..3 {
            bucket.acquire().await;
        }
        assert!(
            start.elapsed() < Duration::from_millis(10),
            "the burst is free"
        );
        for _ in 0..4 {
            bucket.acquire().await;
        }
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(1990) && elapsed <= Duration::from_millis(2100),
            "four more at 2/s take 2 s, took {elapsed:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn gate_paces_connections() {
        let gate = ConnectGate::new(4.0);
        let start = Instant::now();
        for _ in 0..12 {
            let _permit = gate.enter().await;
        }
        // 4 at once, then 8 more at 4/s.
        let elapsed = start.elapsed();
        assert!(
            elapsed >= Duration::from_millis(1990) && elapsed <= Duration::from_millis(2100),
            "{elapsed:?}"
        );
    }
}
