//! Latency percentiles and CPU time read from `/proc`, for the relay
//! benchmark's report.

use std::time::Duration;

use serde::Serialize;

/// p50/p90/p99 (and count, max) of a set of latencies, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Percentiles {
    pub count: usize,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    pub fn of(samples: &[Duration]) -> Percentiles {
        if samples.is_empty() {
            return Percentiles::default();
        }
        let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        // Nearest rank: the smallest sample with at least q of them at or
        // below it.
        let rank = |q: f64| ms[((q * ms.len() as f64).ceil() as usize).clamp(1, ms.len()) - 1];
        Percentiles {
            count: ms.len(),
            p50_ms: rank(0.50),
            p90_ms: rank(0.90),
            p99_ms: rank(0.99),
            max_ms: ms[ms.len() - 1],
        }
    }

    /// The floor of a path made of several hops: each percentile summed.
    pub fn sum(parts: &[Percentiles]) -> Percentiles {
        let mut out = Percentiles {
            count: parts.iter().map(|p| p.count).min().unwrap_or(0),
            ..Percentiles::default()
        };
        for p in parts {
            out.p50_ms += p.p50_ms;
            out.p90_ms += p.p90_ms;
            out.p99_ms += p.p99_ms;
            out.max_ms += p.max_ms;
        }
        out
    }
}

/// CPU time of several processes, sampled together.
#[derive(Debug, Clone)]
pub struct CpuSample {
    pub at: std::time::Instant,
    pub times: Vec<Option<Duration>>,
}

impl CpuSample {
    pub fn take(pids: &[u32]) -> CpuSample {
        CpuSample {
            at: std::time::Instant::now(),
            times: pids
                .iter()
                .map(|p| crate::proc_stats::cpu_time(*p))
                .collect(),
        }
    }

    /// Per process, CPU used since `earlier` as a percentage of one core.
    pub fn percent_since(&self, earlier: &CpuSample) -> Vec<f64> {
        let wall = self.at.duration_since(earlier.at).as_secs_f64().max(1e-9);
        self.times
            .iter()
            .zip(&earlier.times)
            .map(|(now, then)| match (now, then) {
                (Some(n), Some(t)) => n.saturating_sub(*t).as_secs_f64() / wall * 100.0,
                _ => f64::NAN,
            })
            .collect()
    }
}
