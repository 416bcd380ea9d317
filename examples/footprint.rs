//! What one open log costs on disk and in memory, holding a single record,
//! under a few configurations. Each runs in a fresh child process, so the
//! resident set of one does not leak into the next.
//!
//! `cargo run --release --example footprint`

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use varvelog::{Log, Options};

/// (name, segment bytes, spare segments, prefault)
const CONFIGS: [(&str, u64, usize, bool); 4] = [
    ("defaults", 64 << 20, 2, true),
    ("spare_segments(0)", 64 << 20, 0, true),
    ("spare_segments(0), prefault(false)", 64 << 20, 0, false),
    ("segment_bytes(1 MiB), spare_segments(0)", 1 << 20, 0, true),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    if let Some(i) = std::env::args().nth(1) {
        return measure(CONFIGS[i.parse::<usize>()?]);
    }
    println!("{:<42} {:>6} {:>12} {:>12}", "options (one record)", "files", "disk", "RSS");
    for i in 0..CONFIGS.len() {
        let out = Command::new(std::env::current_exe()?).arg(i.to_string()).output()?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned().into());
        }
        print!("{}", String::from_utf8_lossy(&out.stdout));
    }
    Ok(())
}

/// Opens a log with one record, lets the background preparer finish, and
/// prints the files, the disk blocks they hold and the process's RSS.
fn measure((name, segment_bytes, spares, prefault): (&str, u64, usize, bool)) -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let opts = Options::new().segment_bytes(segment_bytes).spare_segments(spares).prefault(prefault);
    let log = Log::open(dir.path(), opts)?;
    let mut writer = log.writer()?;
    writer.append(b"one record")?;
    std::thread::sleep(Duration::from_secs(1)); // spares prepared and populated
    let (files, disk_bytes) = disk_usage(dir.path())?;
    let rss_kib = rss_kib()?;
    println!("{name:<42} {files:>6} {:>8.1} MiB {:>8.1} MiB", mib(disk_bytes), rss_kib as f64 / 1024.0);
    Ok(())
}

/// Files in `dir` (the lock file included) and the disk blocks they hold.
fn disk_usage(dir: &Path) -> std::io::Result<(usize, u64)> {
    use std::os::unix::fs::MetadataExt;
    let mut files = 0;
    let mut bytes = 0;
    for entry in std::fs::read_dir(dir)? {
        let meta = entry?.metadata()?;
        if meta.is_file() {
            files += 1;
            bytes += meta.blocks() * 512;
        }
    }
    Ok((files, bytes))
}

/// The process's resident set (`VmRSS`), in KiB.
fn rss_kib() -> Result<u64, Box<dyn std::error::Error>> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).ok_or("no VmRSS in /proc/self/status")?;
    Ok(line.split_whitespace().nth(1).ok_or("malformed VmRSS")?.parse()?)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}
