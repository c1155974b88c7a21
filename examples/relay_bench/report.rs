//! The benchmark's report: plain tables on stdout (and everything as JSON
//! with `--json`). Each bridged path is shown beside its floor, the sum of
//! the hops it crosses measured without any bridge in the same run.

use serde::Serialize;

use crate::core_overhead::CoreOverhead;
use crate::http11_split::Http11Split;
use crate::runs::{PathLatency, Ramp};
use crate::stats::Percentiles;

pub const FLOOR_QQ: &str = "floor QQ (WebQQ client -> sim -> poll2 client)";
pub const FLOOR_MX: &str = "floor Matrix (client -> Synapse -> /sync client)";
pub const FLOOR_IRC: &str = "floor IRC (client -> ngIRCd -> client)";

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub core: Vec<CoreOverhead>,
    pub http11: Option<Http11Split>,
    pub latency: Vec<PathLatency>,
    pub throughput: Vec<Ramp>,
}

/// The hops (floors) each bridged path crosses.
pub fn floors_of(path: &str) -> &'static [&'static str] {
    match path {
        "QQ -> Matrix" | "Matrix -> QQ" => &[FLOOR_QQ, FLOOR_MX],
        "QQ -> IRC" | "IRC -> QQ" => &[FLOOR_QQ, FLOOR_IRC],
        // The gateway is the bridge's own IRC server: no IRC server hop.
        "QQ -> IRC gateway" | "IRC gateway -> QQ" => &[FLOOR_QQ],
        "Matrix -> IRC (qqbridge)" | "IRC -> Matrix (qqbridge)" => &[FLOOR_MX, FLOOR_QQ, FLOOR_IRC],
        "Matrix -> IRC (heisenbridge)" | "IRC -> Matrix (heisenbridge)" => &[FLOOR_MX, FLOOR_IRC],
        _ => &[],
    }
}

impl Report {
    fn latency_of(&self, path: &str) -> Option<Percentiles> {
        self.latency
            .iter()
            .find(|l| l.path == path)
            .map(|l| l.latency)
    }

    pub fn print(&self) {
        if !self.core.is_empty() {
            println!(
                "\n== Bridge processing per message (QQ event -> chat side deliver), no servers"
            );
            println!("| offered msg/s | messages | delivered | p50 ms | p90 ms | p99 ms | max ms | CPU % |");
            println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
            for c in &self.core {
                let l = c.latency;
                println!(
                    "| {:.0} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.1} |",
                    c.offered_per_s,
                    c.messages,
                    c.delivered,
                    l.p50_ms,
                    l.p90_ms,
                    l.p99_ms,
                    l.max_ms,
                    c.cpu_percent
                );
            }
        }
        if let Some(h) = &self.http11 {
            println!(
                "\n== HTTP QQ 1.1 -> bridge -> side: poll wait apart from processing (GetMsgEx every {} ms after activity, up to {} ms idle; {} of {} delivered)",
                h.poll_fast_ms, h.poll_idle_max_ms, h.delivered, h.messages
            );
            println!("| part | p50 ms | p90 ms | p99 ms | max ms |");
            println!("|---|---:|---:|---:|---:|");
            for (part, p) in [
                (
                    "poll wait (sim queues it -> session hands the event over)",
                    h.poll_wait,
                ),
                ("bridge processing (event -> side deliver)", h.processing),
                ("total", h.total),
            ] {
                println!(
                    "| {part} | {:.3} | {:.3} | {:.3} | {:.3} |",
                    p.p50_ms, p.p90_ms, p.p99_ms, p.max_ms
                );
            }
        }
        if !self.latency.is_empty() {
            println!("\n== Relay latency, one message at a time (ms)");
            println!("| path | n | lost | p50 | p90 | p99 | floor p50 | floor p90 | floor p99 | ratio p50 | ratio p99 |");
            println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
            for l in &self.latency {
                let floors: Vec<Percentiles> = floors_of(&l.path)
                    .iter()
                    .filter_map(|f| self.latency_of(f))
                    .collect();
                let p = l.latency;
                if floors.is_empty() {
                    println!(
                        "| {} | {} | {} | {:.2} | {:.2} | {:.2} | | | | | |",
                        l.path, p.count, l.lost, p.p50_ms, p.p90_ms, p.p99_ms
                    );
                } else {
                    let f = Percentiles::sum(&floors);
                    println!(
                        "| {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
                        l.path,
                        p.count,
                        l.lost,
                        p.p50_ms,
                        p.p90_ms,
                        p.p99_ms,
                        f.p50_ms,
                        f.p90_ms,
                        f.p99_ms,
                        p.p50_ms / f.p50_ms,
                        p.p99_ms / f.p99_ms
                    );
                }
            }
        }
        if !self.throughput.is_empty() {
            println!("\n== Throughput ramps (CPU in % of one core over the step)");
            println!("| path | offered/s | sent | delivered | delivered/s | messages received | p50 ms | p99 ms | CPU | saturated |");
            println!("|---|---:|---:|---:|---:|---:|---:|---:|---|---|");
            for r in &self.throughput {
                for s in &r.steps {
                    let cpu: Vec<String> = s
                        .cpu_percent
                        .iter()
                        .map(|(n, c)| format!("{n} {c:.0}"))
                        .collect();
                    println!(
                        "| {} | {:.0} | {} | {} | {:.0} | {} | {:.1} | {:.1} | {} | {} |",
                        r.path,
                        s.offered_per_s,
                        s.sent,
                        s.delivered,
                        s.delivered_per_s,
                        s.messages,
                        s.latency.p50_ms,
                        s.latency.p99_ms,
                        cpu.join(", "),
                        if s.saturated { "yes" } else { "" }
                    );
                }
            }
        }
    }
}
