//! `varve kv DIR`: the latest-value view: the newest live record of every
//! key, in seq order. Read-only, like `dump`.

use std::io::{BufWriter, Write};
use std::path::PathBuf;

use crate::util::{handle_write, open_log, warnings_failure, write_record, CmdResult, Failure, Format};

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
    for record in snap.kv().take(limit) {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                handle_write(out.flush())?;
                return Err(Failure::from(e));
            }
        };
        handle_write(write_record(&mut out, &record, args.format))?;
    }
    handle_write(out.flush())?;
    warnings_failure(&log)
}
