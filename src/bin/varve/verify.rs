//! `varve verify DIR`: re-read every byte and check frame checksums, seq
//! continuity, segment digests and the digest chain. Exit 1 on any problem.

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use varvelog::{verify_dir_with_progress, Error, VerifyReport};

use crate::progress::{Progress, Unit};
use crate::util::{handle_write, human_bytes, open_log, writer_pid, CmdResult, Failure, EXIT_PROBLEM};

/// Arguments of `varve verify`.
#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// The log directory.
    pub dir: PathBuf,
    /// Show a progress bar on standard error even when it is not a terminal.
    #[arg(long, conflicts_with = "quiet")]
    pub progress: bool,
    /// No progress bar and no summary: only the exit status and problems.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

pub fn run(args: &VerifyArgs) -> CmdResult {
    // Read-only open first: clear errors for a missing directory or one that
    // is not a log, before anything else touches it.
    let log = open_log(&args.dir)?;
    let bar = Progress::new("verify", Unit::Bytes, args.quiet, args.progress);
    let started = Instant::now();
    let writer = writer_pid(&args.dir);
    // Without a writer, check the files themselves (this also finds damage
    // that would keep the log from opening). With one, or if one starts,
    // check what the read-only view publishes; a log in an object store
    // through the view too (it fetches each segment and checks it).
    let (report, live) = if writer.is_none() && !crate::util::is_remote(&args.dir) {
        match verify_dir_with_progress(&args.dir, |d, t| bar.update(d, t)) {
            Ok(r) => (r, false),
            Err(Error::Locked { .. }) => (log.verify_with_progress(|d, t| bar.update(d, t))?, true),
            Err(e) => {
                bar.finish();
                return Err(e.into());
            }
        }
    } else {
        (log.verify_with_progress(|d, t| bar.update(d, t))?, true)
    };
    bar.finish();
    let warnings = if live { log.warnings() } else { Vec::new() };
    // The summary counts the records' bytes, not the bytes read: on a closed
    // log verify also reads the unwritten rest of the last segment (to find
    // stray bytes), on a live one only what the writer published, and the
    // figure should mean the same on both.
    let record_bytes: u64 = log.snapshot().segment_info().iter().map(|s| s.frame_bytes).sum();
    print_report(args, &report, record_bytes, &warnings, live, started.elapsed())
}

fn print_report(args: &VerifyArgs, report: &VerifyReport, record_bytes: u64, warnings: &[String], live: bool, took: Duration) -> CmdResult {
    let problems = report.problems.len() + warnings.len();
    let mut out = std::io::stdout().lock();
    for p in &report.problems {
        handle_write(writeln!(out, "problem: {}", crate::util::one_line(&p.to_string())))?;
    }
    for w in warnings {
        handle_write(writeln!(out, "problem: {}", crate::util::one_line(w)))?;
    }
    if !args.quiet {
        let how = if live { " (log open by a writer: checked up to what it had published)" } else { "" };
        handle_write(writeln!(
            out,
            "{}: {} ({} of records) in {} ({} sealed) checked in {:.1?}{how}",
            if problems == 0 { "ok" } else { "FAILED" },
            crate::util::count(report.records, "record"),
            human_bytes(record_bytes),
            crate::util::count(report.segments as u64, "segment"),
            report.sealed_segments,
            took
        ))?;
    }
    if problems > 0 {
        return Err(Failure {
            code: EXIT_PROBLEM,
            message: format!("verify found {} in {}", crate::util::count(problems as u64, "problem"), args.dir.display()),
        });
    }
    Ok(())
}
