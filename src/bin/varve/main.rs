//! `varve`: look inside varvelog logs, follow them, check them, look up
//! keys, compact, move records in and out, and benchmark the engine.
//!
//! Inspection commands (`stat`, `dump`, `get`, `kv`, `tail`, `consumers`,
//! `verify`, `export`) open the log read-only: they take no lock, modify
//! nothing (`tail --consumer` writes only its consumer's position file), and
//! work while another process writes the log.

mod bench;
mod compact;
mod consumers;
mod dump;
mod export;
mod get;
mod import;
mod kv;
mod pagecache;
mod progress;
mod proof;
mod stat;
mod tail;
mod util;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::util::{Failure, EXIT_OK, EXIT_PROBLEM, EXIT_USAGE};

const EXAMPLES: &str = "\
Examples:
  varve stat /var/lib/app/log              summary: segments, records, bytes, seqs, times
  varve dump /var/lib/app/log --from 1000 --limit 20
  varve dump /var/lib/app/log --since 15m --format json
  varve get /var/lib/app/log user-42       the newest record with key user-42
  varve get /var/lib/app/log user-42 --all --format json
  varve kv /var/lib/app/log                the newest live record of every key
  varve tail -f /var/lib/app/log           follow a log another process is writing
  varve tail -f --consumer billing /var/lib/app/log
                                           follow from where consumer billing last stopped
  varve consumers /var/lib/app/log         every named consumer: position, lag, last commit
  varve verify /var/lib/app/log            full check; exit status 1 if anything is wrong
  varve export --jsonl /var/lib/app/log > records.jsonl
  varve import --jsonl /tmp/copy < records.jsonl
  varve compact /var/lib/app/log           drop replaced records (the log must be closed)
  varve root /var/lib/app/log              the Merkle root over every record
  varve prove /var/lib/app/log 42 > p.json a proof that record 42 is in the log
  varve verify-proof p.json --root HEX     check it against a root you trust, without the log
  varve bench                              the benchmark (see varve bench --help)

Exit status: 0 success; 1 a problem was found (damage, unsupported format
version, I/O error, bad import data, the log locked by another process, the
consumer in use) or get found no live record with the key; 2 usage error
(bad arguments, DIR missing or not a log, an invalid consumer name).";

/// Look inside varvelog logs, follow, check, look up keys in, compact,
/// export and import them, and benchmark the engine.
#[derive(Parser, Debug)]
#[command(
    name = "varve",
    version,
    about = "varvelog's tool: look inside logs, follow them, check them, look up keys, compact, export and import records, benchmark the engine",
    after_help = EXAMPLES
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Summarize a log: segments, records, bytes, first/last seq and time,
    /// durable seq, format version.
    #[command(after_help = "Example:\n  varve stat /var/lib/app/log --segments")]
    Stat(stat::StatArgs),
    /// Print records, from the first, a seq (--from) or a time (--since).
    #[command(after_help = "Examples:\n  varve dump DIR --limit 10\n  varve dump DIR --from 5000 --format hex\n  \
                            varve dump DIR --since 2024-05-01T12:00:00Z --format json")]
    Dump(dump::DumpArgs),
    /// Print the newest record with a key; with --all, every record with it.
    ///
    /// Exit status 1 when the key has no live record: no record has it, or
    /// its newest record is a tombstone.
    #[command(after_help = "Examples:\n  varve get DIR user-42\n  varve get DIR user-42 --all --oldest-first --format json\n  \
                            varve get DIR 0xff00 --key-encoding hex")]
    Get(get::GetArgs),
    /// Print the newest live record of every key (the latest-value view).
    ///
    /// In seq order; replaced records, keys whose newest record is a
    /// tombstone, and records without a key are left out.
    #[command(after_help = "Examples:\n  varve kv DIR\n  varve kv DIR --limit 100 --format json")]
    Kv(kv::KvArgs),
    /// Print the last records; with -f, keep printing new ones as another
    /// process appends them.
    ///
    /// With --consumer NAME, read as that named consumer: start where it
    /// last committed, and commit each batch once it is written out, so the
    /// next run goes on from there (records are printed at least once).
    #[command(after_help = "Examples:\n  varve tail DIR -n 5\n  varve tail -f DIR\n  varve tail -f DIR --from 0 --format json\n  \
                            varve tail -f DIR --consumer billing")]
    Tail(tail::TailArgs),
    /// List the log's named consumers: where each resumes, its lag in
    /// records, when it last committed, and the process that has it open.
    #[command(after_help = "Examples:\n  varve consumers DIR\n  varve consumers DIR --json")]
    Consumers(consumers::ConsumersArgs),
    /// Check every frame checksum, seq continuity, segment digest and the
    /// digest chain, with a progress bar. Exit status 1 if anything is wrong.
    #[command(after_help = "Example:\n  varve verify DIR && echo intact")]
    Verify(verify::VerifyArgs),
    /// Write records as JSON Lines (payloads as UTF-8 text when valid,
    /// base64 otherwise, named in a field).
    #[command(after_help = "Example:\n  varve export --jsonl DIR --since 1h > last-hour.jsonl")]
    Export(export::ExportArgs),
    /// Append records from JSON Lines (as `export --jsonl` writes them) to a
    /// log, creating it if needed.
    #[command(after_help = "Example:\n  varve export --jsonl old | varve import --jsonl new")]
    Import(import::ImportArgs),
    /// Drop replaced records and expired tombstones from sealed segments.
    ///
    /// One compaction pass: each sealed segment holding a record that a
    /// newer record with the same key replaced, or a tombstone older than
    /// --tombstone-retention, is rewritten without them. The log must not be
    /// open by another process.
    #[command(after_help = "Examples:\n  varve compact DIR\n  varve compact DIR --tombstone-retention 1h --json")]
    Compact(compact::CompactArgs),
    /// Print the log's Merkle root (hex: size and hash), the one proofs are
    /// checked against; or the checkpoints recorded in the log.
    #[command(after_help = "Examples:\n  varve root DIR\n  varve root DIR --at 1000 --json\n  varve root DIR --checkpoints")]
    Root(proof::RootArgs),
    /// Print a proof, as one JSON object, that record SEQ is in the log (with
    /// the record), or with --consistency OLD that the log extends its first
    /// OLD records.
    #[command(after_help = "Examples:\n  varve prove DIR 42 > proof.json\n  varve prove DIR --consistency 1000 > extends.json")]
    Prove(proof::ProveArgs),
    /// Check a proof from `varve prove` against a root you trust, without the
    /// log. Exit status 1 if it does not verify.
    #[command(after_help = "Examples:\n  varve verify-proof proof.json --root 2a00…\n  \
                            varve verify-proof extends.json --old-root e803… --root 2a00…")]
    VerifyProof(proof::VerifyProofArgs),
    /// Measure append/tail/scan/sync/open latency and throughput against the machine's limits.
    Bench(bench::BenchArgs),
}

fn main() -> ExitCode {
    // A bug must still end in one line, not a backtrace.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        let at = info.location().map(|l| format!(" at {}:{}", l.file(), l.line())).unwrap_or_default();
        eprintln!("varve: internal error: {}{at} (please report this)", util::one_line(&msg));
    }));
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            // --help and --version print and succeed; usage errors exit 2.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { EXIT_OK });
        }
    };
    let result = match &cli.command {
        Command::Stat(a) => stat::run(a),
        Command::Dump(a) => dump::run(a),
        Command::Get(a) => get::run(a),
        Command::Kv(a) => kv::run(a),
        Command::Tail(a) => tail::run(a),
        Command::Consumers(a) => consumers::run(a),
        Command::Verify(a) => verify::run(a),
        Command::Export(a) => export::run(a),
        Command::Import(a) => import::run(a),
        Command::Compact(a) => compact::run(a),
        Command::Root(a) => proof::root(a),
        Command::Prove(a) => proof::prove(a),
        Command::VerifyProof(a) => proof::verify_proof(a),
        Command::Bench(a) => bench::run(a).map_err(|e| Failure { code: EXIT_PROBLEM, message: util::one_line(&e.to_string()) }),
    };
    match result {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(f) => {
            if !f.message.is_empty() {
                eprintln!("varve: {}", f.message);
            }
            ExitCode::from(f.code)
        }
    }
}
