//! What the benchmark programs read about a process from `/proc`: resident
//! memory and CPU time. Included by each example with
//! `#[path = "../common/proc_stats.rs"] mod proc_stats;` (`examples/common/`
//! has no `main.rs`, so cargo does not build it as an example of its own).

#![allow(dead_code)]

use std::time::Duration;

/// A `kB` field of `/proc/<pid>/status` (`"VmRSS"`, `"VmHWM"`), in bytes;
/// 0 if it cannot be read.
pub fn status_bytes(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// VmRSS in bytes.
pub fn rss(pid: u32) -> u64 {
    status_bytes(pid, "VmRSS")
}

/// VmHWM (peak RSS) in bytes.
pub fn peak_rss(pid: u32) -> u64 {
    status_bytes(pid, "VmHWM")
}

/// utime + stime of a process so far, or `None` if it cannot be read.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count fields after ')'.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of proc(5); index 0 here is field 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf only reads a system constant.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let ticks = if ticks > 0 { ticks as f64 } else { 100.0 };
    Some(Duration::from_secs_f64((utime + stime) as f64 / ticks))
}

/// utime + stime in seconds (0 if it cannot be read).
pub fn cpu_seconds(pid: u32) -> f64 {
    cpu_time(pid).map_or(0.0, |d| d.as_secs_f64())
}
