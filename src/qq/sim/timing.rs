//! The simulator's time scale: every protocol delay and timeout (RES=3
//! penalties, session expiry, rate-limit windows, scripted status cycles)
//! is multiplied by one factor, so tests can run the real timings at
//! e.g. 1/1000 of their length.

use std::time::Duration;

/// A validated, positive, finite multiplier.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeScale(f64);

/// Longest scaled duration, so absurd values cannot overflow a timer.
const MAX_SECONDS: f64 = 1.0e9;

impl TimeScale {
    /// The real timings.
    pub const REAL: TimeScale = TimeScale(1.0);

    /// `None` unless `factor` is finite and positive.
    pub fn new(factor: f64) -> Option<TimeScale> {
        (factor.is_finite() && factor > 0.0).then_some(TimeScale(factor))
    }

    pub fn factor(self) -> f64 {
        self.0
    }

    /// `seconds` of protocol time as wall-clock time.
    pub fn secs(self, seconds: f64) -> Duration {
        let scaled = (seconds * self.0).clamp(0.0, MAX_SECONDS);
        Duration::try_from_secs_f64(scaled).unwrap_or(Duration::ZERO)
    }
}

impl Default for TimeScale {
    fn default() -> Self {
        TimeScale::REAL
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_and_rejects_nonsense() {
        let scale = TimeScale::new(0.001).unwrap();
        assert_eq!(scale.secs(20.0), Duration::from_millis(20));
        assert_eq!(scale.secs(-5.0), Duration::ZERO);
        assert_eq!(scale.secs(f64::NAN), Duration::ZERO);
        assert!(TimeScale::new(0.0).is_none());
        assert!(TimeScale::new(f64::INFINITY).is_none());
    }
}
