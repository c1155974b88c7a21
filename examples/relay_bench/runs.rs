//! The measurements: latency of every path one message at a time (all
//! paths and floors taken in turn, so they share the same conditions), and
//! throughput ramps that raise the offered rate until the receiving side
//! falls behind.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde::Serialize;

use qqbridge::qq::sim::Origin;

use crate::arrivals::tag;
use crate::clients::MatrixUser;
use crate::report::{floors_of, FLOOR_IRC, FLOOR_MX, FLOOR_QQ};
use crate::rig::{
    QqServer, Rig, GATEWAY_CHANNEL, GROUP_BOTH, GROUP_FLOOR, GROUP_GATEWAY, GROUP_IRC,
    GROUP_MATRIX, IRC_MATRIX_CHANNEL,
};
use crate::stats::{CpuSample, Percentiles};

/// How a run's messages are sent.
#[derive(Clone)]
enum Source {
    /// A QQ client (10004's WebQQ session) writes to a group.
    QqClient(u64),
    /// The simulator itself: a member writes to a group (no client cost).
    QqWorld {
        group: u64,
        from: u64,
    },
    Matrix(MatrixUser, String),
    /// bob writes to a channel.
    Irc(&'static str),
    /// erin writes to a channel of the bridge's IRC gateway.
    Gateway(&'static str),
}

async fn send(rig: &Rig, source: &Source, text: &str) -> Result<()> {
    match source {
        Source::QqClient(group) => rig.qq_writer.say_in_group(*group, text).await,
        Source::QqWorld { group, from } => match &rig.sim {
            QqServer::InProcess(sim) => {
                sim.world()
                    .send_group_message(*group, *from, text, Origin::Control);
                Ok(())
            }
            QqServer::Process { .. } => {
                bail!("the throughput ramps write through the in-process simulator: run them without --sim-process")
            }
        },
        Source::Matrix(user, room) => user.say(room, text).await,
        Source::Irc(channel) => rig.bob.send(&format!("PRIVMSG {channel} :{text}")).await,
        Source::Gateway(channel) => rig.erin.send(&format!("PRIVMSG {channel} :{text}")).await,
    }
}

/// One latency run: what is sent, and who must receive it (path name,
/// receiving place).
struct LatencyRun {
    run: &'static str,
    source: Source,
    targets: Vec<(&'static str, &'static str)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PathLatency {
    pub path: String,
    pub latency: Percentiles,
    pub lost: usize,
}

/// Whether a path's name contains one of `only` (all do when it is empty).
fn chosen(path: &str, only: &[String]) -> bool {
    let lower = path.to_lowercase();
    only.is_empty() || only.iter().any(|o| lower.contains(&o.to_lowercase()))
}

/// Latency of every path whose name contains one of `only` (all when it is
/// empty), message by message in turns with the floors, each message sent
/// `gap` after the previous one arrived (a quiet conversation when it is
/// long: the bridge idles in between).
pub async fn latency(
    rig: &Rig,
    messages: usize,
    only: &[String],
    gap: Duration,
) -> Result<Vec<PathLatency>> {
    let mut runs = vec![
        LatencyRun {
            run: "q",
            source: Source::QqClient(GROUP_BOTH),
            targets: vec![("QQ -> Matrix", "carol")],
        },
        // The IRC paths through a group bridged to IRC alone: through
        // GROUP_BOTH, each message would also keep Synapse and the bridge's
        // Matrix side busy on this machine's two cores while it is timed,
        // which no floor does.
        LatencyRun {
            run: "qi",
            source: Source::QqClient(GROUP_IRC),
            targets: vec![("QQ -> IRC", "alice")],
        },
        LatencyRun {
            run: "m",
            source: Source::Matrix(rig.carol.clone(), rig.room_both.clone()),
            targets: vec![
                ("Matrix -> QQ", "qq10003"),
                ("Matrix -> IRC (qqbridge)", "alice"),
            ],
        },
        LatencyRun {
            run: "i",
            source: Source::Irc("#qq"),
            targets: vec![("IRC -> Matrix (qqbridge)", "carol")],
        },
        LatencyRun {
            run: "iq",
            source: Source::Irc("#qqt"),
            targets: vec![("IRC -> QQ", "qq10004")],
        },
        LatencyRun {
            run: "g",
            source: Source::QqClient(GROUP_GATEWAY),
            targets: vec![("QQ -> IRC gateway", "erin")],
        },
        LatencyRun {
            run: "ig",
            source: Source::Gateway(GATEWAY_CHANNEL),
            targets: vec![("IRC gateway -> QQ", "qq10004")],
        },
        LatencyRun {
            run: "fq",
            source: Source::QqClient(GROUP_FLOOR),
            targets: vec![(FLOOR_QQ, "qq10003")],
        },
        LatencyRun {
            run: "fm",
            source: Source::Matrix(rig.dave.clone(), rig.room_floor.clone()),
            targets: vec![(FLOOR_MX, "carol")],
        },
        LatencyRun {
            run: "fi",
            source: Source::Irc("#floor"),
            targets: vec![(FLOOR_IRC, "alice")],
        },
    ];
    if let (Some(owner), Some(room)) = (&rig.hbowner, &rig.room_hb) {
        runs.push(LatencyRun {
            run: "hm",
            source: Source::Matrix(owner.clone(), room.clone()),
            targets: vec![("Matrix -> IRC (heisenbridge)", "alice")],
        });
        runs.push(LatencyRun {
            run: "hi",
            source: Source::Irc("#hb"),
            targets: vec![("IRC -> Matrix (heisenbridge)", "hbowner")],
        });
    }
    let bridged = |r: &LatencyRun| r.targets.iter().any(|(path, _)| !path.starts_with("floor"));
    // The floors the chosen paths cross, and those paths.
    let needed: Vec<&str> = runs
        .iter()
        .filter(|r| bridged(r))
        .flat_map(|r| &r.targets)
        .filter(|(path, _)| chosen(path, only))
        .flat_map(|(path, _)| floors_of(path).iter().copied())
        .collect();
    runs.retain(|r| {
        r.targets.iter().any(|(path, _)| {
            if path.starts_with("floor") {
                needed.contains(path)
            } else {
                chosen(path, only)
            }
        })
    });
    // Sub-millisecond paths are timed apart from those through Synapse:
    // after each Matrix message Synapse works on for a while (syncs,
    // appservice transactions), which on two cores would land on whichever
    // message came next.
    let through_synapse = |r: &LatencyRun| {
        r.targets
            .iter()
            .any(|(path, _)| *path == FLOOR_MX || floors_of(path).contains(&FLOOR_MX))
    };
    runs.sort_by_key(through_synapse);
    let split = runs.iter().position(through_synapse).unwrap_or(runs.len());
    let mut samples: Vec<Vec<Vec<Duration>>> = runs
        .iter()
        .map(|r| vec![Vec::new(); r.targets.len()])
        .collect();
    let mut lost: Vec<Vec<usize>> = runs.iter().map(|r| vec![0; r.targets.len()]).collect();
    let timeout = Duration::from_secs(20);
    for phase in [0..split, split..runs.len()] {
        if phase.is_empty() {
            continue;
        }
        for seq in 0..messages {
            for ri in phase.clone() {
                let run = &runs[ri];
                if !gap.is_zero() {
                    tokio::time::sleep(gap).await;
                }
                let t = tag(run.run, seq);
                let at = Instant::now();
                send(rig, &run.source, &t).await?;
                for (ti, (_, place)) in run.targets.iter().enumerate() {
                    match rig.arrivals.wait(place, &t, timeout).await {
                        Some(got) => samples[ri][ti].push(got.duration_since(at)),
                        None => lost[ri][ti] += 1,
                    }
                }
            }
            if seq % 50 == 49 {
                eprintln!("latency: {} of {messages} rounds", seq + 1);
                rig.arrivals.clear();
            }
        }
    }
    let mut out = Vec::new();
    for (ri, run) in runs.iter().enumerate() {
        for (ti, (path, _)) in run.targets.iter().enumerate() {
            out.push(PathLatency {
                path: (*path).to_owned(),
                latency: Percentiles::of(&samples[ri][ti]),
                lost: lost[ri][ti],
            });
        }
    }
    Ok(out)
}

#[derive(Debug, Clone, Serialize)]
pub struct Step {
    pub offered_per_s: f64,
    pub sent: usize,
    pub delivered: usize,
    pub delivered_per_s: f64,
    /// Messages the receiver got for them (fewer than `delivered` where
    /// lines were merged into one event).
    pub messages: usize,
    /// CPU of each watched process over the step, % of one core.
    pub cpu_percent: Vec<(String, f64)>,
    pub latency: Percentiles,
    pub saturated: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct Ramp {
    pub path: String,
    pub steps: Vec<Step>,
}

/// Raises the offered rate step by step until the target falls behind.
async fn ramp(
    rig: &Rig,
    path: &str,
    prefix: &str,
    source: Source,
    place: &str,
    rates: &[f64],
) -> Result<Ramp> {
    let mut watched: Vec<(String, u32)> =
        vec![("bench (sim + clients)".into(), std::process::id())];
    if let Some(p) = rig.bridge.id() {
        watched.push(("qqbridge".into(), p));
    }
    if let Some(p) = rig.hs.pid() {
        watched.push(("Synapse".into(), p));
    }
    if let Some(p) = rig.irc.pid() {
        watched.push(("ngIRCd".into(), p));
    }
    if let Some(p) = rig.heisenbridge.as_ref().and_then(|h| h.id()) {
        watched.push(("heisenbridge".into(), p));
    }
    let pids: Vec<u32> = watched.iter().map(|w| w.1).collect();
    let mut steps = Vec::new();
    for &rate in rates {
        let run = format!("{prefix}{}", rate as u64);
        let n = ((rate * 3.0) as usize).clamp(60, 12_000);
        let period = Duration::from_secs_f64(1.0 / rate);
        let limit = Arc::new(tokio::sync::Semaphore::new(256));
        let start = tokio::time::Instant::now();
        let cpu_start = CpuSample::take(&pids);
        let mut sent_at = Vec::with_capacity(n);
        for i in 0..n {
            tokio::time::sleep_until(start + period * i as u32).await;
            let t = tag(&run, i);
            sent_at.push(Instant::now());
            match &source {
                Source::Matrix(user, room) => {
                    let (user, room) = (user.clone(), room.clone());
                    let permit = limit.clone().acquire_owned().await?;
                    tokio::spawn(async move {
                        let _ = user.say(&room, &t).await;
                        drop(permit);
                    });
                }
                other => send(rig, other, &t).await?,
            }
        }
        // Until all arrived, or nothing new for 10 s.
        let mut last_count = 0;
        let mut last_progress = Instant::now();
        let mut cpu_end = CpuSample::take(&pids);
        loop {
            let (count, _) = rig.arrivals.count(place, &run);
            if count > last_count {
                last_count = count;
                last_progress = Instant::now();
                cpu_end = CpuSample::take(&pids);
            }
            if count >= n || last_progress.elapsed() > Duration::from_secs(10) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (delivered, last) = rig.arrivals.count(place, &run);
        let elapsed = last
            .map(|l| l.duration_since(sent_at[0]))
            .unwrap_or_default()
            .as_secs_f64()
            .max(1e-9);
        let latencies: Vec<Duration> = sent_at
            .iter()
            .enumerate()
            .filter_map(|(i, at)| {
                rig.arrivals
                    .get(place, &tag(&run, i))
                    .map(|g| g.duration_since(*at))
            })
            .collect();
        let delivered_per_s = delivered as f64 / elapsed;
        let saturated = delivered < n || delivered_per_s < 0.9 * rate;
        let cpu = cpu_end.percent_since(&cpu_start);
        let step = Step {
            offered_per_s: rate,
            sent: n,
            delivered,
            delivered_per_s,
            messages: rig.arrivals.messages(place),
            cpu_percent: watched.iter().map(|w| w.0.clone()).zip(cpu).collect(),
            latency: Percentiles::of(&latencies),
            saturated,
        };
        eprintln!("{path}: {step:?}");
        steps.push(step);
        rig.arrivals.clear();
        // The paths compared with heisenbridge go on to the last rate, so
        // both bridges are seen under the same overload.
        if saturated && !path.starts_with("IRC -> Matrix") {
            break;
        }
        // Let the servers settle between steps.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(Ramp {
        path: path.to_owned(),
        steps,
    })
}

/// Ramps every throughput path whose name contains one of `only` (all
/// when `only` is empty), in a fixed order.
pub async fn throughput(rig: &Rig, only: &[String]) -> Result<Vec<Ramp>> {
    let matrix_rates: &[f64] = &[25.0, 50.0, 100.0, 200.0, 400.0, 800.0];
    // Paths where a bridge merges a backlog of lines into one event go on.
    let merged_rates: &[f64] = &[
        25.0, 50.0, 100.0, 200.0, 400.0, 800.0, 1600.0, 3200.0, 6400.0,
    ];
    let fast_rates: &[f64] = &[
        250.0, 500.0, 1000.0, 2000.0, 3000.0, 4000.0, 5000.0, 6000.0, 8000.0, 16000.0,
    ];
    let qq = |group| Source::QqWorld { group, from: 10004 };
    let mut paths = vec![
        ("QQ -> IRC", "tqi", qq(GROUP_IRC), "alice", fast_rates),
        (
            "IRC -> QQ",
            "tiq",
            Source::Irc("#qqt"),
            "qq10004",
            fast_rates,
        ),
        (
            "QQ -> IRC gateway",
            "tqg",
            qq(GROUP_GATEWAY),
            "erin",
            fast_rates,
        ),
        (
            "IRC gateway -> QQ",
            "tgq",
            Source::Gateway(GATEWAY_CHANNEL),
            "qq10004",
            fast_rates,
        ),
        (
            "floor IRC",
            "tfi",
            Source::Irc("#floor"),
            "alice",
            fast_rates,
        ),
        (
            "QQ -> Matrix",
            "tqm",
            qq(GROUP_MATRIX),
            "carol",
            merged_rates,
        ),
        (
            "floor Matrix",
            "tfm",
            Source::Matrix(rig.dave.clone(), rig.room_floor.clone()),
            "carol",
            matrix_rates,
        ),
        (
            "Matrix -> IRC (qqbridge)",
            "tmi",
            Source::Matrix(rig.carol.clone(), rig.room_both.clone()),
            "alice",
            matrix_rates,
        ),
        (
            "IRC -> Matrix (qqbridge)",
            "tim",
            Source::Irc(IRC_MATRIX_CHANNEL),
            "carol",
            merged_rates,
        ),
    ];
    if let (Some(owner), Some(room)) = (&rig.hbowner, &rig.room_hb) {
        paths.push((
            "Matrix -> IRC (heisenbridge)",
            "thm",
            Source::Matrix(owner.clone(), room.clone()),
            "alice",
            matrix_rates,
        ));
        paths.push((
            "IRC -> Matrix (heisenbridge)",
            "thi",
            Source::Irc("#hb"),
            "hbowner",
            merged_rates,
        ));
    }
    let mut out = Vec::new();
    for (path, prefix, source, place, rates) in paths {
        if chosen(path, only) {
            out.push(ramp(rig, path, prefix, source, place, rates).await?);
        }
    }
    Ok(out)
}
