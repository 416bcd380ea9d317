//! `varve tail [-f] DIR`: the last records, and (with -f) every new one as
//! another process appends it. Read-only: takes no lock and changes nothing,
//! except that `--consumer NAME` commits that consumer's position (its own
//! file under `consumers/`).

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use varvelog::{Batch, Consumer, Error, Tail};

use crate::util::{flock_pid, handle_write, one_line, open_log, parse_time, write_record, CmdResult, Failure, Format, Start};

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
    /// Read as the named consumer NAME instead: start where it last
    /// committed (a new consumer starts at the first record), and commit
    /// each batch of records once it is written to standard output.
    #[arg(long, value_name = "NAME", conflicts_with_all = ["lines", "from", "since"])]
    pub consumer: Option<String>,
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
    // Without -f: the records published when we started, then stop.
    let end = if args.follow { u64::MAX } else { snap.next_seq() };
    let Some(name) = &args.consumer else {
        let start = match (args.from, args.since) {
            (None, None) => Start::Last(args.lines),
            (from, since) => Start::new(from, since),
        };
        return print(&mut log.tail_from(start.seq(&snap))?, end, args);
    };
    let mut consumer = log.consumer(name).map_err(|e| consumer_failure(&args.dir, name, e))?;
    print(&mut consumer, end, args)?;
    // Every printed batch is committed already; this also stores where a
    // consumer that printed nothing starts, and flushes the position file
    // to disk, so the commit outlives a crash of the machine too.
    consumer.commit_sync().map_err(Failure::from)
}

/// What `tail` reads from: a plain tail, or a named consumer that commits
/// what was printed.
trait Records {
    /// The seq of the next record it yields.
    fn position(&self) -> u64;
    /// Waits up to `timeout` for a record, then yields every one published.
    fn wait(&mut self, timeout: Duration) -> varvelog::Result<Batch<'_>>;
    /// Every record yielded so far is written out.
    fn printed(&mut self) -> CmdResult;
    /// The record at `seq` was yielded but not printed: it is next again.
    fn unread(&mut self, seq: u64) -> CmdResult;
}

impl Records for Tail {
    fn position(&self) -> u64 {
        Tail::position(self)
    }

    fn wait(&mut self, timeout: Duration) -> varvelog::Result<Batch<'_>> {
        Tail::wait(self, timeout)
    }

    fn printed(&mut self) -> CmdResult {
        Ok(())
    }

    // A plain tail is dropped once it has passed the end; nothing resumes it.
    fn unread(&mut self, _seq: u64) -> CmdResult {
        Ok(())
    }
}

impl Records for Consumer {
    fn position(&self) -> u64 {
        Consumer::position(self)
    }

    fn wait(&mut self, timeout: Duration) -> varvelog::Result<Batch<'_>> {
        Consumer::wait(self, timeout)
    }

    fn printed(&mut self) -> CmdResult {
        self.commit().map_err(Failure::from)
    }

    fn unread(&mut self, seq: u64) -> CmdResult {
        self.seek(seq).map_err(Failure::from)
    }
}

/// Bytes of output buffered between writes to standard output.
const OUT_BYTES: usize = 1 << 16;

/// Prints from `records` until --limit, `end` (without -f), or the
/// reader of standard output went away. Each batch is flushed before
/// `printed` is told, so a consumer commits only records written out.
fn print(records: &mut impl Records, end: u64, args: &TailArgs) -> CmdResult {
    let mut out = BufWriter::with_capacity(OUT_BYTES, std::io::stdout().lock());
    let mut line = Vec::new();
    let mut left = args.limit.unwrap_or(u64::MAX);
    let wait = if args.follow { Duration::from_millis(200) } else { Duration::ZERO };
    while left > 0 && records.position() < end {
        let (printed, stop) = print_batch(records, &mut out, &mut line, end, left, args.format, wait)?;
        left -= printed;
        match stop {
            Stop::Done if printed > 0 => records.printed()?,
            Stop::Done => {}
            Stop::PastEnd(seq) => {
                records.unread(seq)?;
                return records.printed();
            }
            // Damage ends the run after the records before it are printed
            // and committed, so the next run starts at the damaged record.
            Stop::Damage(e) => {
                records.printed()?;
                return Err(e.into());
            }
            // Commit what surely went out; the next run prints the rest of
            // the batch again.
            Stop::WriteFailed { error, out_to } => {
                records.unread(out_to)?;
                records.printed()?;
                return handle_write(Err(error));
            }
        }
        // Following an idle log writes nothing, so a reader that went away
        // (`varve tail -f DIR | head -2`) would never be noticed by a write.
        if printed == 0 && (!args.follow || reader_gone()) {
            break;
        }
    }
    Ok(())
}

/// How a batch of records ended.
enum Stop {
    /// Every record published was printed, or the limit was reached.
    Done,
    /// The record at this seq is past the end; it was not printed.
    PastEnd(u64),
    /// Damage at the record after the last one printed.
    Damage(Error),
    /// Writing failed; the records before position `out_to` are out.
    WriteFailed { error: std::io::Error, out_to: u64 },
}

/// Prints the records published now (at most `left`, none at or past
/// `end`), waiting up to `wait` for the first, and flushes them; how many,
/// and how the batch ended.
fn print_batch(
    records: &mut impl Records,
    out: &mut BufWriter<impl Write>,
    line: &mut Vec<u8>,
    end: u64,
    left: u64,
    format: Format,
    wait: Duration,
) -> Result<(u64, Stop), Failure> {
    let mut out_to = records.position();
    let mut printed = 0;
    let mut stop = Stop::Done;
    for record in records.wait(wait)? {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                stop = Stop::Damage(e);
                break;
            }
        };
        if record.seq() >= end {
            stop = Stop::PastEnd(record.seq());
            break;
        }
        line.clear();
        write_record(line, &record, format)?;
        // When the record does not fit, flush the buffer first, rather than
        // let the writer do it unseen: then a failed write leaves every
        // record before this one known to be out.
        if out.buffer().len() + line.len() > out.capacity() {
            if let Err(error) = out.flush() {
                stop = Stop::WriteFailed { error, out_to };
                break;
            }
            out_to = record.seq();
        }
        if let Err(error) = out.write_all(line) {
            stop = Stop::WriteFailed { error, out_to };
            break;
        }
        printed += 1;
        if printed == left {
            break;
        }
    }
    if !matches!(stop, Stop::WriteFailed { .. }) {
        if let Err(error) = out.flush() {
            stop = Stop::WriteFailed { error, out_to };
        }
    }
    Ok((printed, stop))
}

/// The failure of opening consumer `name`, saying what to do about it.
pub fn consumer_failure(dir: &Path, name: &str, e: Error) -> Failure {
    match e {
        Error::ConsumerBusy { path, .. } => {
            let who = flock_pid(&path).map_or_else(|| "another reader".to_string(), |pid| format!("process {pid}"));
            Failure::problem(format!(
                "consumer {name:?} of {} is in use by {who} (a named consumer has one reader at a time); stop that reader first, or use another name",
                dir.display()
            ))
        }
        Error::InvalidConsumerName { .. } => Failure::usage(one_line(&e.to_string())),
        Error::Truncated { requested, first_available } => Failure::problem(format!(
            "consumer {name:?} resumes at seq {requested}, which retention has removed from {} (the log now starts at seq {first_available})",
            dir.display()
        )),
        other => other.into(),
    }
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
