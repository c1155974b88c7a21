//! Tunables of the HTTP QQ 1.1 client: network timeouts, the polling
//! schedule, message pacing and retry limits.
//!
//! The defaults follow http11.md: a read timeout above the server's 30 s
//! penalty delay, polling well inside `HI`, and CLTMSG pacing above the
//! 1 s "sent too fast" rule. Tests shrink them to run against a simulator
//! with a small time scale.

use std::net::IpAddr;
use std::time::Duration;

/// Every tunable of the client. Built with [`Default`] and adjusted through
/// the builder methods of [`super::Http11Connector`].
#[derive(Debug, Clone)]
pub struct Http11Options {
    /// Time allowed to open the TCP connection of one request.
    pub connect_timeout: Duration,
    /// Time allowed between sending a request and the server closing the
    /// connection. Must exceed the server's 20/30 s RES=3 delay.
    pub read_timeout: Duration,
    /// Poll interval right after activity (a message arrived or was sent).
    pub poll_fast: Duration,
    /// Longest poll interval when idle. The effective cap is also kept
    /// below half the server's `HI` so the session never looks silent.
    pub poll_idle_max: Duration,
    /// Minimum gap between two CLTMSG requests of one account.
    pub send_pacing: Duration,
    /// Longest message part in bytes of UTF-8 text; longer messages are
    /// split and sent as several CLTMSG requests.
    pub max_message_bytes: usize,
    /// First delay before retrying a request that got no reply (NULL).
    pub retry_initial: Duration,
    /// Longest delay between two retries of one request.
    pub retry_max: Duration,
    /// Attempts made for one request that keeps getting NULL.
    pub retry_attempts: u32,
    /// Attempts made for one request that keeps getting RES=3.
    pub throttle_attempts: u32,
    /// Longest delay between two polls while the server is unreachable.
    pub outage_backoff_max: Duration,
    /// Source address of every connection (`None`: the system's choice).
    /// The server identifies a session by source address and UIN, so it
    /// must not change while a session lives.
    pub local_addr: Option<IpAddr>,
}

impl Default for Http11Options {
    fn default() -> Self {
        Http11Options {
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(45),
            poll_fast: Duration::from_secs(1),
            poll_idle_max: Duration::from_secs(20),
            send_pacing: Duration::from_millis(1100),
            max_message_bytes: 900,
            retry_initial: Duration::from_millis(500),
            retry_max: Duration::from_secs(8),
            retry_attempts: 5,
            throttle_attempts: 3,
            outage_backoff_max: Duration::from_secs(30),
            local_addr: None,
        }
    }
}

impl Http11Options {
    /// The idle poll cap for a session whose server announced `HI`
    /// (seconds): the configured cap, but at most half of `HI`.
    pub(crate) fn poll_cap(&self, heartbeat: Duration) -> Duration {
        let half_heartbeat = heartbeat / 2;
        let cap = if half_heartbeat.is_zero() {
            self.poll_idle_max
        } else {
            self.poll_idle_max.min(half_heartbeat)
        };
        cap.max(self.poll_fast)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_cap_stays_below_half_the_heartbeat() {
        let options = Http11Options::default();
        assert_eq!(
            options.poll_cap(Duration::from_secs(60)),
            Duration::from_secs(20)
        );
        assert_eq!(
            options.poll_cap(Duration::from_secs(10)),
            Duration::from_secs(5)
        );
        assert_eq!(options.poll_cap(Duration::ZERO), Duration::from_secs(20));
        assert_eq!(
            options.poll_cap(Duration::from_millis(100)),
            Duration::from_secs(1)
        );
    }
}
