//! The machine a benchmark ran on, for reports and plot captions: CPU model,
//! cores, memory, kernel, file system, load average, date. Shared by
//! `varve bench` and the peer harness (`benches/peers` includes this file by
//! path), so both describe a machine the same way.

use std::path::Path;

/// CPU model, cores, memory, kernel and the file system holding `dir`.
pub fn describe(dir: &Path) -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string()))
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|k| k.parse::<u64>().ok()))
        .map_or("?".into(), |kb| format!("{:.0} GiB", kb as f64 / (1 << 20) as f64));
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").map(|s| s.trim().to_string()).unwrap_or_default();
    let fs = file_system(dir).unwrap_or_else(|| "?".into());
    format!("{cpu}, {cores} cores, {mem} RAM, Linux {kernel}, {fs}")
}

/// The file system type (and device) of the mount holding `dir`.
fn file_system(dir: &Path) -> Option<String> {
    let dir = dir.canonicalize().ok()?;
    let mounts = std::fs::read_to_string("/proc/mounts").ok()?;
    mounts
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let (dev, at, ty) = (w.next()?, w.next()?, w.next()?);
            dir.starts_with(at).then(|| (at.len(), format!("{ty} on {dev} ({at})")))
        })
        .max_by_key(|(n, _)| *n)
        .map(|(_, s)| s)
}

/// The 1-minute load average (runnable and uninterruptible tasks), if known.
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg").ok()?.split_whitespace().next()?.parse().ok()
}

/// Now, to the second, in UTC (`2024-05-01T12:00:00Z`).
pub fn date_utc() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
