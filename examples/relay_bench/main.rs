//! Relay benchmark (issue #9 items 1, 2 and 4): latency of each relay path
//! through real servers on loopback next to the same path without the
//! bridge, throughput until the first side saturates with every process's
//! CPU, heisenbridge side by side on the same Synapse and ngIRCd, and the
//! bridge's own processing time per message at 1,000 messages/s.
//!
//! ```sh
//! scripts/install-bench-deps            # Synapse, ngIRCd, heisenbridge
//! cargo build --release --bin qqbridge --example relay_bench
//! target/release/examples/relay_bench --messages 500 --json relay.json
//! ```
//!
//! `--only core|http11|latency|throughput` runs one part; `--paths "QQ -> IRC,heisen"`
//! measures only the paths whose names contain one of those (and, for
//! latency, the floors beside them);
//! `--no-heisenbridge` leaves heisenbridge out; `--sim-process` runs the QQ
//! simulator as a process of its own (`qqbridge sim`) instead of in this
//! one (latency only); `--gap-ms N` pauses N ms before each latency message,
//! so the bridge idles between messages as in a quiet conversation. Not
//! part of `cargo test`.

#[allow(dead_code)]
#[path = "../../tests/support/ngircd.rs"]
mod ngircd;
#[allow(dead_code)]
#[path = "../../tests/support/process.rs"]
mod process;
#[allow(dead_code)]
#[path = "../../tests/support/synapse.rs"]
mod synapse;

mod arrivals;
mod clients;
mod core_overhead;
mod http11_split;
#[path = "../common/proc_stats.rs"]
mod proc_stats;
mod report;
mod rig;
mod runs;
mod stats;

use anyhow::{bail, Result};

struct Options {
    messages: usize,
    json: Option<std::path::PathBuf>,
    only: Option<String>,
    heisenbridge: bool,
    /// Paths to measure (name substrings); all when empty.
    paths: Vec<String>,
    /// The QQ simulator as its own process instead of in this one.
    sim_process: bool,
    /// Pause before each latency message.
    gap: std::time::Duration,
}

fn options() -> Result<Options> {
    let mut o = Options {
        messages: 500,
        json: None,
        only: None,
        heisenbridge: true,
        paths: Vec::new(),
        sim_process: false,
        gap: std::time::Duration::ZERO,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--messages" => o.messages = args.next().unwrap_or_default().parse()?,
            "--json" => o.json = args.next().map(Into::into),
            "--only" => o.only = args.next(),
            "--no-heisenbridge" => o.heisenbridge = false,
            "--sim-process" => o.sim_process = true,
            "--gap-ms" => {
                o.gap = std::time::Duration::from_millis(args.next().unwrap_or_default().parse()?)
            }
            "--paths" => {
                o.paths = args
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .map(|p| p.trim().to_owned())
                    .filter(|p| !p.is_empty())
                    .collect()
            }
            "-h" | "--help" => {
                println!(
                    "relay_bench [--messages N] [--json FILE] [--only core|http11|latency|throughput] [--paths NAME,..] [--no-heisenbridge] [--sim-process] [--gap-ms N]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    Ok(o)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> Result<()> {
    let o = options()?;
    let wants = |part: &str| {
        o.only
            .as_deref()
            .is_none_or(|only| only.split(',').any(|p| p == part))
    };
    let mut out = report::Report::default();

    if wants("core") {
        // Alone on the machine first: no server runs yet.
        for (rate, n) in [(1000.0, 10_000), (5000.0, 25_000)] {
            let r = core_overhead::measure(rate, n).await?;
            eprintln!("core overhead at {rate}/s: {r:?}");
            out.core.push(r);
        }
    }
    if wants("http11") {
        let r = http11_split::measure(
            o.messages,
            std::time::Duration::from_millis(200),
            std::time::Duration::from_secs(2),
        )
        .await?;
        eprintln!("HTTP QQ 1.1 poll wait and processing: {r:?}");
        out.http11 = Some(r);
    }
    if wants("latency") || wants("throughput") {
        if o.sim_process && wants("throughput") {
            bail!("--sim-process is for latency only: the throughput ramps write through the in-process simulator (add --only latency)");
        }
        let rig = rig::Rig::start(o.heisenbridge, o.sim_process).await?;
        if wants("latency") {
            out.latency = runs::latency(&rig, o.messages, &o.paths, o.gap).await?;
            for l in &out.latency {
                eprintln!("latency {l:?}");
            }
        }
        if wants("throughput") {
            out.throughput = runs::throughput(&rig, &o.paths).await?;
        }
    }
    out.print();
    if let Some(path) = &o.json {
        std::fs::write(path, serde_json::to_string_pretty(&out)?)?;
    }
    Ok(())
}
