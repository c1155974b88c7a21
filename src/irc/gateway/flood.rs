//! Per-client flood control: a token bucket that delays reading a client's
//! next line when it sends too fast. Nothing is dropped; a flooding client
//! only slows itself down, and TCP pushes back on it.

use std::time::Duration;

use tokio::time::Instant;

#[derive(Debug)]
pub struct TokenBucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// `burst` lines at once, then `per_second` lines a second. Values
    /// below one line (or a rate of zero) are raised so a client can always
    /// make progress.
    pub fn new(burst: u32, per_second: f64) -> Self {
        let capacity = f64::from(burst.max(1));
        let per_second = if per_second.is_finite() && per_second > 0.01 {
            per_second
        } else {
            0.01
        };
        TokenBucket {
            capacity,
            per_second,
            tokens: capacity,
            last: Instant::now(),
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        self.last = now;
    }

    /// How long to wait before the next line may be handled (zero if now),
    /// taking its token.
    pub fn reserve(&mut self) -> Duration {
        self.refill(Instant::now());
        self.tokens -= 1.0;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / self.per_second)
        }
    }

    /// Waits until the next line may be handled.
    pub async fn take(&mut self) {
        let wait = self.reserve();
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_is_free_then_lines_wait() {
        let mut b = TokenBucket::new(3, 2.0);
        assert!(b.reserve().is_zero());
        assert!(b.reserve().is_zero());
        assert!(b.reserve().is_zero());
        let wait = b.reserve();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_millis(500),
            "{wait:?}"
        );
    }
}
