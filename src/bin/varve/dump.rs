//! `varve dump DIR`: print records, without modifying the log.

use std::io::BufWriter;
use std::path::PathBuf;

use crate::util::{open_log, parse_time, print_records, warnings_failure, CmdResult, Format, Start};

/// Arguments of `varve dump`.
#[derive(clap::Args, Debug)]
pub struct DumpArgs {
    /// The log directory.
    pub dir: PathBuf,
    /// Start at this seq.
    #[arg(long, value_name = "SEQ", conflicts_with = "since")]
    pub from: Option<u64>,
    /// Start at the first record at or after this time: RFC 3339
    /// (2024-05-01T12:00:00Z), microseconds since the epoch, or an age (15m).
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub since: Option<u64>,
    /// Print at most this many records.
    #[arg(long, short = 'n', value_name = "N")]
    pub limit: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn run(args: &DumpArgs) -> CmdResult {
    let log = open_log(&args.dir)?;
    let snap = log.snapshot();
    let start = Start::new(args.from, args.since);
    let mut out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let limit = args.limit.unwrap_or(u64::MAX);
    print_records(&mut out, start.iter(&snap).take(usize::try_from(limit).unwrap_or(usize::MAX)), args.format)?;
    warnings_failure(&log)
}
