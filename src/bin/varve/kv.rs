//! `varve kv DIR`: the latest-value view: the newest live record of every
//! key, in seq order. Read-only, like `dump`.

use std::io::BufWriter;
use std::path::PathBuf;

use crate::util::{open_log, print_records, warnings_failure, CmdResult, Format};

/// Arguments of `varve kv`.
#[derive(clap::Args, Debug)]
pub struct KvArgs {
    /// The log directory.
    pub dir: PathBuf,
    /// Print at most this many records.
    #[arg(long, short = 'n', value_name = "N")]
    pub limit: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub fn run(args: &KvArgs) -> CmdResult {
    let log = open_log(&args.dir)?;
    let snap = log.snapshot();
    let mut out = BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let limit = usize::try_from(args.limit.unwrap_or(u64::MAX)).unwrap_or(usize::MAX);
    print_records(&mut out, snap.kv().take(limit), args.format)?;
    warnings_failure(&log)
}
