//! `varve consumers DIR`: every named consumer of a log, where it resumes,
//! how far behind it is and when it last committed. Read-only: takes no
//! lock (not even a consumer's) and changes nothing, except that
//! `--remove NAME` deletes that consumer's position file.

use std::io::Write;
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use comfy_table::{presets, CellAlignment, Table};
use varvelog::ConsumerInfo;

use crate::util::{flock_pid, format_age, format_time, handle_write, open_log, CmdResult};

/// Arguments of `varve consumers`.
#[derive(clap::Args, Debug)]
pub struct ConsumersArgs {
    /// The log directory.
    pub dir: PathBuf,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Forget this consumer instead of listing: delete its position file
    /// (it must not be open). Retention then keeps nothing for it.
    #[arg(long, value_name = "NAME", conflicts_with = "json")]
    pub remove: Option<String>,
}

/// `consumers --json`: one object, fields in this order (docs/cli.md).
#[derive(serde_derive::Serialize)]
struct ConsumersJson {
    dir: String,
    consumers: Vec<ConsumerJson>,
}

#[derive(serde_derive::Serialize)]
struct ConsumerJson {
    name: String,
    /// The seq it reads next when it resumes (`null`: no position stored yet).
    position: Option<u64>,
    lag: u64,
    /// µs since the epoch (`null`: never committed).
    committed_timestamp: Option<u64>,
    committed_time: Option<String>,
    /// The process that has it open now, if any.
    open_by_pid: Option<u32>,
    file: String,
}

/// One consumer as listed: what the library knows, and who has it open.
struct Listed {
    info: ConsumerInfo,
    committed_us: Option<u64>,
    open_by: Option<u32>,
}

pub fn run(args: &ConsumersArgs) -> CmdResult {
    let log = open_log(&args.dir)?;
    if let Some(name) = &args.remove {
        let removed = log.remove_consumer(name).map_err(|e| crate::tail::consumer_failure(&args.dir, name, e))?;
        let what = if removed { "removed consumer" } else { "no consumer named" };
        return handle_write(writeln!(std::io::stdout().lock(), "{what} {name:?} of {}", args.dir.display()));
    }
    let listed: Vec<Listed> = log
        .consumers()?
        .into_iter()
        .map(|info| Listed { committed_us: info.committed_at.map(micros), open_by: flock_pid(&info.path), info })
        .collect();
    let mut out = std::io::stdout().lock();
    let r = if args.json {
        let json = ConsumersJson {
            dir: args.dir.display().to_string(),
            consumers: listed
                .iter()
                .map(|c| ConsumerJson {
                    name: c.info.name.clone(),
                    position: c.info.position,
                    lag: c.info.lag,
                    committed_timestamp: c.committed_us,
                    committed_time: c.committed_us.map(format_time),
                    open_by_pid: c.open_by,
                    file: c.info.path.display().to_string(),
                })
                .collect(),
        };
        serde_json::to_writer(&mut out, &json).map_err(std::io::Error::from).and_then(|()| writeln!(out))
    } else if listed.is_empty() {
        writeln!(out, "no named consumers of {}", args.dir.display())
    } else {
        writeln!(out, "{}", table(&listed))
    };
    handle_write(r)
}

/// Microseconds since the Unix epoch (0 for a time before it).
fn micros(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

/// One row per consumer, by name.
fn table(listed: &[Listed]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    t.set_header(["name", "position", "lag", "committed", "committed at", "open by"]);
    for c in listed {
        let position = c.info.position.map_or_else(|| "never committed".to_string(), |p| p.to_string());
        let age = c.info.committed_at.map(format_age).unwrap_or_default();
        let at = c.committed_us.map(format_time).unwrap_or_default();
        let open_by = c.open_by.map(|pid| format!("process {pid}")).unwrap_or_default();
        t.add_row([c.info.name.clone(), position, c.info.lag.to_string(), age, at, open_by]);
    }
    for c in 1..3 {
        if let Some(col) = t.column_mut(c) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
    t
}
