//! `varve tail [-f] DIR`: the last records, and (with -f) every new one as
//! another process appends it. Read-only: takes no lock, changes nothing.

use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Duration;

use crate::util::{handle_write, open_log, parse_time, write_record, CmdResult, Failure, Format, Start};

/// Arguments of `varve tail`.
#[derive(clap::Args, Debug)]
pub struct TailArgs {
    /// The log directory.
    pub dir: PathBuf,
    /// Keep following: print records as the writer appends them (until
    /// interrupted, or --limit records were printed).
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Start with the last N records.
    #[arg(long, short = 'n', value_name = "N", default_value_t = 10, conflicts_with_all = ["from", "since"])]
    pub lines: u64,
    /// Start at this seq instead.
    #[arg(long, value_name = "SEQ", conflicts_with = "since")]
    pub from: Option<u64>,
    /// Start at the first record at or after this time instead (see `varve dump --help`).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub since: Option<u64>,
    /// Stop after printing this many records.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn run(args: &TailArgs) -> CmdResult {
    let log = open_log(&args.dir)?;
    let snap = log.snapshot();
    let start = match (args.from, args.since) {
        (None, None) => Start::Last(args.lines),
        (from, since) => Start::new(from, since),
    };
    let first = start.seq(&snap);
    // Without -f: the records published when we started, then stop.
    let end = if args.follow { u64::MAX } else { snap.next_seq() };
    let mut follow = log.tail_from(first)?;
    let mut out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let mut left = args.limit.unwrap_or(u64::MAX);
    while left > 0 && follow.position() < end {
        let wait = if args.follow { Duration::from_millis(200) } else { Duration::ZERO };
        let mut printed = false;
        for record in follow.wait(wait)? {
            let record = record.map_err(Failure::from)?;
            if record.seq() >= end {
                break;
            }
            handle_write(write_record(&mut out, &record, args.format))?;
            printed = true;
            left -= 1;
            if left == 0 {
                break;
            }
        }
        handle_write(out.flush())?;
        if !args.follow && !printed {
            break;
        }
        // Following an idle log writes nothing, so a reader that went away
        // (`varve tail -f DIR | head -2`) would never be noticed by a write.
        if !printed && reader_gone() {
            break;
        }
    }
    Ok(())
}

/// Whether standard output is a pipe or socket whose reading end is
/// closed (poll reports an error condition on it).
fn reader_gone() -> bool {
    let stdout = std::io::stdout();
    let mut fds = [rustix::event::PollFd::new(&stdout, rustix::event::PollFlags::empty())];
    let zero = rustix::time::Timespec { tv_sec: 0, tv_nsec: 0 };
    rustix::event::poll(&mut fds, Some(&zero)).is_ok_and(|n| n > 0)
        && fds[0].revents().intersects(rustix::event::PollFlags::ERR | rustix::event::PollFlags::HUP)
}
