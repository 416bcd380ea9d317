//! `varve compact DIR`: one compaction pass: rewrite the sealed segments
//! that hold records a newer record with the same key replaced, or expired
//! tombstones, keeping the newest record of every key.

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use varvelog::{CompactOptions, CompactReport, Error, Log, Options, DEFAULT_TOMBSTONE_RETENTION};

use crate::progress::{Progress, Unit};
use crate::util::{handle_write, human_bytes, open_log, writer_pid, CmdResult, Failure};

/// A duration as humantime writes and reads it (`90s`, `12h`, `1day`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HumanDuration(pub Duration);

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

/// Parses a duration: `0`, `90s`, `30m`, `12h`, `7days`, `1h 30m`.
fn parse_duration(s: &str) -> Result<HumanDuration, String> {
    humantime::parse_duration(s.trim())
        .map(HumanDuration)
        .map_err(|_| format!("{s}: not a duration; use a number with a unit, such as 90s, 30m, 12h or 7days (0 for none)"))
}

/// Arguments of `varve compact`.
#[derive(clap::Args, Debug)]
pub struct CompactArgs {
    /// The log directory. It must not be open by another process.
    pub dir: PathBuf,
    /// Keep a tombstone that is the newest record of its key until its
    /// timestamp is this old (30m, 12h, 7days; 0 drops them at once), so
    /// that readers following the log see the deletion first.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration,
          default_value_t = HumanDuration(DEFAULT_TOMBSTONE_RETENTION))]
    pub tombstone_retention: HumanDuration,
    /// Show a progress bar on standard error even when it is not a terminal.
    #[arg(long, conflicts_with = "quiet")]
    pub progress: bool,
    /// No progress bar and no summary: only the exit status and errors.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Print the summary as one JSON object instead of text.
    #[arg(long, conflicts_with = "quiet")]
    pub json: bool,
}

/// `compact --json`: one object, fields in this order (docs/cli.md).
#[derive(serde_derive::Serialize)]
struct CompactJson {
    dir: String,
    segments_rewritten: usize,
    segments_relinked: usize,
    records_removed: u64,
    tombstones_removed: u64,
    bytes_before: u64,
    bytes_after: u64,
    tombstone_retention_seconds: f64,
    elapsed_seconds: f64,
}

pub fn run(args: &CompactArgs) -> CmdResult {
    // The read-only open first: clear errors for a missing directory or one
    // that is not a log (opening for writing would create a log there).
    drop(open_log(&args.dir)?);
    // No appends follow, so no spare segments are prepared (the next
    // writer makes its own) and the live segment is not faulted in.
    let log = Log::open(&args.dir, Options::new().spare_segments(0).prefault(false)).map_err(|e| open_failure(&args.dir, e))?;
    let bar = Arc::new(Progress::new("compact", Unit::Bytes, args.quiet, args.progress));
    let shown = bar.clone();
    let opts = CompactOptions::new().tombstone_retention(args.tombstone_retention.0).progress(move |done, total| shown.update(done, total));
    let started = Instant::now();
    let compacted = log.compact(&opts);
    // Close, not drop: it syncs and waits for the sealer, and reports a
    // failure of either.
    let closed = log.close();
    let took = started.elapsed();
    bar.finish();
    let report = compacted?;
    closed?;
    if args.quiet {
        return Ok(());
    }
    let mut out = std::io::stdout().lock();
    let r = if args.json {
        let json = CompactJson {
            dir: args.dir.display().to_string(),
            segments_rewritten: report.segments_rewritten,
            segments_relinked: report.segments_relinked,
            records_removed: report.records_removed,
            tombstones_removed: report.tombstones_removed,
            bytes_before: report.bytes_before,
            bytes_after: report.bytes_after,
            tombstone_retention_seconds: args.tombstone_retention.0.as_secs_f64(),
            elapsed_seconds: took.as_secs_f64(),
        };
        serde_json::to_writer(&mut out, &json).map_err(std::io::Error::from).and_then(|()| writeln!(out))
    } else {
        write_text(&mut out, args, &report, took)
    };
    handle_write(r)
}

/// The failure of opening the log for compaction: a writer holding it is
/// named, with what to do.
fn open_failure(dir: &Path, e: Error) -> Failure {
    match e {
        Error::Locked { .. } => {
            let who = writer_pid(dir).map_or_else(|| "another process".to_string(), |pid| format!("process {pid}"));
            Failure::problem(format!(
                "{}: the log is open by {who}; compaction needs the log's lock, so stop that process first (a program can compact its own open log with Log::compact)",
                dir.display()
            ))
        }
        other => other.into(),
    }
}

fn write_text(out: &mut impl Write, args: &CompactArgs, r: &CompactReport, took: Duration) -> std::io::Result<()> {
    writeln!(out, "log                 {}", args.dir.display())?;
    if r.segments_rewritten == 0 {
        writeln!(out, "segments            none rewritten: no sealed segment holds a replaced record or an expired tombstone")?;
    } else {
        writeln!(out, "segments            {} rewritten, {} re-linked into the digest chain", r.segments_rewritten, r.segments_relinked)?;
    }
    writeln!(out, "records removed     {} (a newer record has their key)", r.records_removed)?;
    writeln!(out, "tombstones removed  {} (older than {})", r.tombstones_removed, args.tombstone_retention)?;
    if r.segments_rewritten > 0 {
        writeln!(
            out,
            "bytes               {} → {} in the rewritten segments ({} freed)",
            human_bytes(r.bytes_before),
            human_bytes(r.bytes_after),
            human_bytes(r.bytes_before.saturating_sub(r.bytes_after))
        )?;
    }
    writeln!(out, "took                {took:.1?}")?;
    Ok(())
}
