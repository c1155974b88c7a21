//! The one retry/backoff helper of the bridge: bounded exponential backoff
//! with jitter. QQ polling, re-login, outbox delivery and reconnecting chat
//! sides all use it, so their retry behaviour is tuned in one place.

use std::future::Future;
use std::time::Duration;

use rand::Rng;

/// Exponential backoff: `initial`, doubled on every failure up to `max`, with
/// up to 20 % random jitter so that many sessions failing together do not
/// retry in lock-step.
#[derive(Debug, Clone)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    current: Duration,
    failures: u32,
}

impl Backoff {
    pub fn new(initial: Duration, max: Duration) -> Self {
        Backoff {
            initial,
            max: max.max(initial),
            current: initial,
            failures: 0,
        }
    }

    /// The delay before the next attempt; each call counts one failure.
    pub fn next_delay(&mut self) -> Duration {
        let base = self.current;
        self.current = (self.current * 2).min(self.max);
        self.failures = self.failures.saturating_add(1);
        let jitter_ms = (base.as_millis() as u64) / 5;
        let jitter = if jitter_ms > 0 {
            rand::thread_rng().gen_range(0..=jitter_ms)
        } else {
            0
        };
        base.saturating_sub(Duration::from_millis(jitter_ms / 2)) + Duration::from_millis(jitter)
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Call after a success.
    pub fn reset(&mut self) {
        self.current = self.initial;
        self.failures = 0;
    }
}

/// Runs `attempt` until it succeeds, `retryable` says an error is final, or
/// `max_attempts` attempts were made; sleeps `backoff` between attempts.
pub async fn retry<T, E, F, Fut>(
    backoff: &mut Backoff,
    max_attempts: u32,
    retryable: impl Fn(&E) -> bool,
    mut attempt: F,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
{
    let mut made = 0;
    loop {
        made += 1;
        match attempt().await {
            Ok(v) => {
                backoff.reset();
                return Ok(v);
            }
            Err(e) if made >= max_attempts.max(1) || !retryable(&e) => return Err(e),
            Err(_) => tokio::time::sleep(backoff.next_delay()).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_to_the_cap_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(1000));
        let delays: Vec<_> = (0..8).map(|_| b.next_delay()).collect();
        for d in &delays {
            assert!(
                *d >= Duration::from_millis(90) && *d <= Duration::from_millis(1100),
                "{d:?}"
            );
        }
        assert!(delays[7] >= Duration::from_millis(900));
        assert_eq!(b.failures(), 8);
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(110));
    }

    #[tokio::test(start_paused = true)]
    async fn retry_stops_on_final_errors_and_attempt_limit() {
        let mut b = Backoff::new(Duration::from_millis(10), Duration::from_millis(50));
        let mut calls = 0;
        let r: Result<(), &str> = retry(
            &mut b,
            5,
            |e| *e == "transient",
            || {
                calls += 1;
                async move { Err(if calls < 3 { "transient" } else { "final" }) }
            },
        )
        .await;
        assert_eq!(r, Err("final"));
        assert_eq!(calls, 3);

        let mut calls = 0;
        let r: Result<(), &str> = retry(
            &mut b,
            4,
            |_| true,
            || {
                calls += 1;
                async { Err("transient") }
            },
        )
        .await;
        assert_eq!(r, Err("transient"));
        assert_eq!(calls, 4);

        let mut calls = 0;
        let r = retry(
            &mut b,
            4,
            |_: &&str| true,
            || {
                calls += 1;
                let ok = calls == 2;
                async move {
                    if ok {
                        Ok(7)
                    } else {
                        Err("x")
                    }
                }
            },
        )
        .await;
        assert_eq!(r, Ok(7));
    }
}
