//! `varve verify DIR`: re-read every byte and check frame checksums, seq
//! continuity, segment digests and the digest chain. Exit 1 on any problem.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use varvelog::{verify_dir_with_progress, Error, VerifyReport};

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

/// A progress bar on stderr, drawn only for runs longer than a moment.
struct Bar {
    enabled: bool,
    forced: bool,
    started: Instant,
    last_draw: Option<Instant>,
}

impl Bar {
    const DELAY: Duration = Duration::from_millis(300);
    const EVERY: Duration = Duration::from_millis(100);
    const WIDTH: u64 = 30;

    fn new(enabled: bool, forced: bool) -> Bar {
        Bar { enabled, forced, started: Instant::now(), last_draw: None }
    }

    fn update(&mut self, done: u64, total: u64) {
        if !self.enabled {
            return;
        }
        let now = Instant::now();
        let finished = done >= total;
        if !self.forced && now - self.started < Self::DELAY {
            return;
        }
        if !finished && self.last_draw.is_some_and(|t| now - t < Self::EVERY) {
            return;
        }
        self.last_draw = Some(now);
        let done_part = done.min(total);
        let filled = (done_part * Self::WIDTH).checked_div(total).unwrap_or(Self::WIDTH);
        let pct = (done_part * 100).checked_div(total).unwrap_or(100);
        let secs = (now - self.started).as_secs_f64().max(1e-6);
        let rate = human_bytes((done as f64 / secs) as u64);
        eprint!(
            "\rverify [{}{}] {pct:>3}% {} / {} ({rate}/s)\x1b[K",
            "=".repeat(filled as usize),
            " ".repeat((Self::WIDTH - filled) as usize),
            human_bytes(done),
            human_bytes(total)
        );
    }

    fn finish(&mut self) {
        if self.last_draw.is_some() {
            eprintln!();
        }
    }
}

pub fn run(args: &VerifyArgs) -> CmdResult {
    // Read-only open first: clear errors for a missing directory or one that
    // is not a log, before anything else touches it.
    let log = open_log(&args.dir)?;
    let mut bar = Bar::new(!args.quiet && (args.progress || std::io::stderr().is_terminal()), args.progress);
    let started = Instant::now();
    let writer = writer_pid(&args.dir);
    // Without a writer, check the files themselves (this also finds damage
    // that would keep the log from opening). With one, or if one starts,
    // check what the read-only view publishes.
    let (report, live) = if writer.is_none() {
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
    print_report(args, &report, &warnings, live, started.elapsed())
}

fn print_report(args: &VerifyArgs, report: &VerifyReport, warnings: &[String], live: bool, took: Duration) -> CmdResult {
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
            "{}: {} segments ({} sealed), {} records, {} checked in {:.1?}{how}",
            if problems == 0 { "ok" } else { "FAILED" },
            report.segments,
            report.sealed_segments,
            report.records,
            human_bytes(report.bytes),
            took
        ))?;
    }
    if problems > 0 {
        return Err(Failure {
            code: EXIT_PROBLEM,
            message: format!("verify found {problems} problem{} in {}", if problems == 1 { "" } else { "s" }, args.dir.display()),
        });
    }
    Ok(())
}
