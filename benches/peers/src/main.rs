//! Peer harness: the `varve bench` workload (100-byte payloads) on varvelog
//! and on other embedded logs, several rounds in alternating order, each
//! engine in its own fresh directory. Reports medians and spread as a
//! Markdown table, a JSON file and an SVG plot.
//!
//! ```text
//! cd benches/peers && CARGO_TARGET_DIR=target cargo run --release -- --help
//! ```
//!
//! Rows, per engine and round:
//! * sustained (first, in a fresh directory, removed afterwards): records
//!   appended one call each until M records (~2 GiB) or T seconds, then a
//!   flush to the OS (no fsync), all timed: the rate past what fits in
//!   prepared space and page-cache slack;
//! * durable 1 / durable 100 (first, in a fresh directory): records made
//!   durable per second when every group of 1 / 100 is synced, for S seconds;
//! * append (in another fresh directory): N records one call each (every call
//!   timed), then a flush to the OS (no fsync) inside the timing;
//! * batch: N more records in batches of 100 through the engine's batch API, then a flush;
//! * reopen: time to open that log again (recovery; closing is not timed);
//!   scan: read everything back.
//!
//! `--keys` runs the key-lookup and compaction benchmark instead (see
//! keys.rs): varvelog, fjall and redb loaded with keyed records, random
//! lookups of present and absent keys, varvelog's compaction against a
//! read-and-rewrite bound; writes keys.md and keys.json.

// The same axis labels as `varve bench --plot`.
#[path = "../../../src/bin/varve/bench/axis.rs"]
mod axis;
// The same timer as `varve bench`, so both report comparable latencies.
#[path = "../../../src/bin/varve/bench/clock.rs"]
#[allow(dead_code)]
mod clock;
// The same machine description, load average and date as `varve bench`.
mod engines;
mod keys;
#[path = "../../../src/bin/varve/bench/machine.rs"]
mod machine;
mod plot;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clock::histogram;
use engines::{Engine, Peer};
use serde_json::{json, Value};

pub type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The `varve bench` workload (100-byte payloads) on varvelog and other
/// embedded logs, several rounds in alternating order; writes peers.md,
/// peers.json and peers.svg.
#[derive(clap::Parser, Debug)]
#[command(name = "varvelog-peers")]
struct Args {
    /// Records per append and batch row (at least 100).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(100..))]
    records: u64,
    /// Rounds; each engine runs once per round, the order alternating.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    rounds: u64,
    /// Most records of the sustained row (the default writes ~2 GiB of 136-byte frames).
    #[arg(long, default_value_t = 16_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    sustained_records: u64,
    /// Most seconds of the sustained row (slower engines stop here, with fewer records).
    #[arg(long, default_value_t = 20.0, value_parser = positive_seconds)]
    sustained_seconds: f64,
    /// Seconds each durable row runs.
    #[arg(long, default_value_t = 0.5, value_parser = positive_seconds)]
    sync_seconds: f64,
    /// Engines to run, comma separated.
    #[arg(long, value_delimiter = ',', value_parser = parse_engine, default_value = "varvelog,raft-engine,commitlog,open-wal,okaywal,fjall,File+BufWriter+fdatasync")]
    engines: Vec<Engine>,
    /// Directory (file system) to run in; a fresh subdirectory is made and removed afterwards.
    #[arg(long, default_value_os_t = std::env::temp_dir())]
    dir: PathBuf,
    /// Where to write peers.md, peers.json and peers.svg (keys.md and keys.json with --keys).
    #[arg(long, default_value = "results")]
    out: PathBuf,
    /// Run the key benchmark instead: load keyed records, look up present and absent keys,
    /// compact (varvelog); writes keys.md and keys.json. Uses --rounds, --dir, --out and the --keys-* options.
    #[arg(long)]
    keys: bool,
    /// With --keys: records loaded into each engine.
    #[arg(long, default_value_t = 10_000_000, value_parser = clap::value_parser!(u64).range(1..=u32::MAX as u64))]
    keys_records: u64,
    /// With --keys: distinct keys among them (record j has key j mod this, in a shuffled order).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000_000))]
    keys_distinct: u64,
    /// With --keys: lookups per row (present keys, then as many absent keys).
    #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(u64).range(1..))]
    keys_lookups: u64,
    /// With --keys: most seconds of one pass of lookups; a pass cut short reports how many it did.
    #[arg(long, default_value_t = 30.0, value_parser = positive_seconds)]
    keys_lookup_seconds: f64,
    /// With --keys: seed of the load order, payloads and lookup keys.
    #[arg(long, default_value_t = 42)]
    keys_seed: u64,
    /// With --keys: engines to run, comma separated.
    #[arg(long, value_delimiter = ',', value_parser = keys::parse_key_engine, default_value = "varvelog,fjall,redb")]
    keys_engines: Vec<keys::KeyEngine>,
}

fn parse_engine(s: &str) -> Result<Engine, String> {
    let names: Vec<&str> = Engine::ALL.iter().map(|e| e.name().split_whitespace().next().unwrap_or("")).collect();
    Engine::parse(s.trim()).ok_or_else(|| format!("unknown engine {s:?}; one of {}", names.join(", ")))
}

fn positive_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("{s:?}: expected a positive number of seconds")),
    }
}

/// Percentiles in nanoseconds.
#[derive(Clone, Copy, Debug, Default)]
struct Lat {
    p50: f64,
    p99: f64,
    p999: f64,
    max: f64,
}

impl Lat {
    fn of(h: &hdrhistogram::Histogram<u64>) -> Lat {
        Lat {
            p50: h.value_at_quantile(0.5) as f64,
            p99: h.value_at_quantile(0.99) as f64,
            p999: h.value_at_quantile(0.999) as f64,
            max: h.max() as f64,
        }
    }
}

/// One engine's figures in one round; `None` where the row does not apply.
#[derive(Clone, Debug, Default)]
struct Round {
    sustained: Option<f64>,
    append: Option<f64>,
    append_lat: Option<Lat>,
    batch: Option<f64>,
    durable1: Option<f64>,
    durable1_lat: Option<Lat>,
    durable100: Option<f64>,
    durable100_lat: Option<Lat>,
    reopen_ms: f64,
    scan: Option<f64>,
}

/// Groups of `per` records, each made durable, for `budget`; returns
/// records/s, group latency and records written.
fn durable(p: &mut dyn Peer, per: usize, payload: &[u8], budget: Duration) -> Res<(f64, Lat, u64)> {
    let batch: Vec<&[u8]> = vec![payload; per];
    let mut h = histogram()?;
    let mut groups = 0u64;
    let start = Instant::now();
    while groups < 3 || start.elapsed() < budget {
        let t = Instant::now();
        p.append_durable(&batch)?;
        h.saturating_record(t.elapsed().as_nanos() as u64);
        groups += 1;
    }
    let records = groups * per as u64;
    Ok((records as f64 / start.elapsed().as_secs_f64(), Lat::of(&h), records))
}

fn run_one(engine: Engine, dir: &Path, a: &Args, clock: &clock::Clock) -> Res<Round> {
    let payload = vec![0x5Au8; 100];
    let n = a.records;
    let budget = Duration::from_secs_f64(a.sync_seconds);
    let mut r = Round::default();

    // Sustained first, in its own directory, removed before the other rows
    // so its GiBs of page cache are freed before they run.
    if engine.has_nondurable_append() {
        let sdir = dir.join("sustained");
        let mut p = engines::open(engine, &sdir)?;
        let limit = Duration::from_secs_f64(a.sustained_seconds);
        let start = Instant::now();
        let mut n = 0u64;
        while n < a.sustained_records {
            for _ in 0..1000 {
                p.append(&payload)?;
            }
            n += 1000;
            if start.elapsed() >= limit {
                break;
            }
        }
        p.flush()?;
        r.sustained = Some(n as f64 / start.elapsed().as_secs_f64());
        drop(p);
        std::fs::remove_dir_all(&sdir)?;
    }

    // Durable rows next, on a fresh engine of their own, so that no earlier
    // row's unsynced data or background work lands in the syncs.
    if engine.durable() {
        let mut p = engines::open_for_syncing(engine, &dir.join("durable"))?;
        let (d1, l1, _) = durable(&mut *p, 1, &payload, budget)?;
        let (d100, l100, _) = durable(&mut *p, 100, &payload, budget)?;
        (r.durable1, r.durable1_lat, r.durable100, r.durable100_lat) = (Some(d1), Some(l1), Some(d100), Some(l100));
    }

    let dir = dir.join("log");
    let mut written = 0u64;
    let mut p = engines::open(engine, &dir)?;
    if engine.has_nondurable_append() {
        let mut h = histogram()?;
        let start = Instant::now();
        for _ in 0..n {
            let t0 = clock::ticks();
            p.append(&payload)?;
            let t1 = clock::ticks();
            clock.record(&mut h, t0, t1);
        }
        p.flush()?;
        r.append = Some(n as f64 / start.elapsed().as_secs_f64());
        r.append_lat = Some(Lat::of(&h));
        let batch: Vec<&[u8]> = vec![&payload; 100];
        let start = Instant::now();
        for _ in 0..n / 100 {
            p.append_batch(&batch)?;
        }
        p.flush()?;
        r.batch = Some((n / 100 * 100) as f64 / start.elapsed().as_secs_f64());
        written += n + n / 100 * 100;
    } else {
        // Something to recover and read back: N records, durable in groups of 1000.
        let batch: Vec<&[u8]> = vec![&payload; 1000];
        for _ in 0..n / 1000 {
            p.append_durable(&batch)?;
        }
        written += n / 1000 * 1000;
    }
    drop(p); // closing (and any background work it waits for) is not timed
    let start = Instant::now();
    let mut p = engines::open(engine, &dir)?;
    r.reopen_ms = start.elapsed().as_secs_f64() * 1e3;
    if engine.can_scan() {
        let start = Instant::now();
        let got = p.scan()?;
        let secs = start.elapsed().as_secs_f64();
        if got < written {
            return Err(format!("{}: scan read {got} records, expected at least {written}", engine.name()).into());
        }
        r.scan = Some(got as f64 / secs);
    }
    drop(p);
    Ok(r)
}

fn median(mut v: Vec<f64>) -> Option<(f64, f64, f64)> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let m = if v.len() % 2 == 1 { v[v.len() / 2] } else { (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0 };
    Some((m, v[0], v[v.len() - 1]))
}

/// Median, min and max of one figure over the rounds.
fn stat(rounds: &[Round], f: impl Fn(&Round) -> Option<f64>) -> Option<(f64, f64, f64)> {
    median(rounds.iter().filter_map(f).collect())
}

fn fmt_rate(s: Option<(f64, f64, f64)>, why: &str) -> String {
    match s {
        None => why.to_string(),
        Some((m, lo, hi)) => {
            let spread = if m > 0.0 { (hi - lo) / m * 100.0 } else { 0.0 };
            if m >= 1e6 {
                format!("{:.2} M (±{:.0}%)", m / 1e6, spread / 2.0)
            } else {
                format!("{:.1} k (±{:.0}%)", m / 1e3, spread / 2.0)
            }
        }
    }
}

fn fmt_ns(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.2} ms", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.2} µs", v / 1e3)
    } else {
        format!("{v:.0} ns")
    }
}

fn main() -> std::process::ExitCode {
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("peers: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> Res<()> {
    let a = <Args as clap::Parser>::parse();
    if a.keys {
        return keys::run(&keys::Params {
            records: a.keys_records,
            distinct: a.keys_distinct,
            lookups: a.keys_lookups,
            lookup_seconds: a.keys_lookup_seconds,
            rounds: a.rounds,
            seed: a.keys_seed,
            engines: a.keys_engines.clone(),
            dir: a.dir.clone(),
            out: a.out.clone(),
        });
    }
    let load_before = machine::load_average();
    let clock = clock::Clock::calibrate();
    eprintln!("timer: {}", clock.describe());
    let root = a.dir.join(format!("varvelog-peers-{}", std::process::id()));
    std::fs::create_dir_all(&root)?;
    let results = run_rounds(&a.engines, a.rounds, &root, "round", 26, |e| e.name(), |e, dir| run_one(e, dir, &a, &clock));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&a.out)?;

    let machine = machine::describe(&a.dir);
    let date = machine::date_utc();
    let mut md = String::new();
    md.push_str(&format!(
        "Machine: {machine}; {date}. {} records of 100 B per row, {} rounds in alternating order, each engine in a fresh directory on {}; \
         median (± half the min-max spread, in % of the median). Throughput in records/s. 1-minute load average {} before, \
         {} after the run.\n\n",
        a.records,
        a.rounds,
        a.dir.display(),
        load_before.map_or("?".into(), |l| format!("{l:.2}")),
        machine::load_average().map_or("?".into(), |l| format!("{l:.2}")),
    ));
    md.push_str(
        "| engine | sustained | append | append p50 | p99 | p99.9 | batch of 100 | durable, 1/sync | durable, 100/sync | reopen | scan |\n",
    );
    md.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let mut json_engines = Vec::new();
    for (engine, rounds, errors) in &results {
        if rounds.is_empty() {
            md.push_str(&format!("| {} | failed: {} ||||||||||\n", engine.name(), errors.first().map_or("", |s| s.as_str())));
            json_engines.push(json!({"engine": engine.name(), "errors": errors}));
            continue;
        }
        let lat = |f: fn(&Lat) -> f64| stat(rounds, |r| r.append_lat.as_ref().map(f));
        let na_append = "n/a (every commit fsyncs)";
        let row = format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
            engine.name(),
            fmt_rate(stat(rounds, |r| r.sustained), na_append),
            fmt_rate(stat(rounds, |r| r.append), na_append),
            lat(|l| l.p50).map_or("n/a".into(), |s| fmt_ns(s.0)),
            lat(|l| l.p99).map_or("n/a".into(), |s| fmt_ns(s.0)),
            lat(|l| l.p999).map_or("n/a".into(), |s| fmt_ns(s.0)),
            fmt_rate(stat(rounds, |r| r.batch), na_append),
            fmt_rate(stat(rounds, |r| r.durable1), "n/a (flush does not fsync)"),
            fmt_rate(stat(rounds, |r| r.durable100), "n/a (flush does not fsync)"),
            stat(rounds, |r| Some(r.reopen_ms)).map_or("-".into(), |s| format!("{:.1} ms", s.0)),
            fmt_rate(stat(rounds, |r| r.scan), "n/a (only via reopen)"),
        );
        md.push_str(&row);
        let rj: Vec<Value> = rounds
            .iter()
            .map(|r| {
                let l = |l: &Option<Lat>| l.map(|l| json!({"p50_ns": l.p50, "p99_ns": l.p99, "p999_ns": l.p999, "max_ns": l.max}));
                json!({
                    "sustained_per_sec": r.sustained, "append_per_sec": r.append, "append_latency": l(&r.append_lat), "batch100_per_sec": r.batch,
                    "durable1_per_sec": r.durable1, "durable1_group_latency": l(&r.durable1_lat),
                    "durable100_per_sec": r.durable100, "durable100_group_latency": l(&r.durable100_lat),
                    "reopen_ms": r.reopen_ms, "scan_per_sec": r.scan,
                })
            })
            .collect();
        let med = |s: Option<(f64, f64, f64)>| s.map(|(m, lo, hi)| json!({"median": m, "min": lo, "max": hi}));
        json_engines.push(json!({
            "engine": engine.name(), "how": engine.notes(), "errors": errors, "rounds": rj,
            "median": {
                "sustained_per_sec": med(stat(rounds, |r| r.sustained)),
                "append_per_sec": med(stat(rounds, |r| r.append)),
                "append_p50_ns": med(lat(|l| l.p50)), "append_p99_ns": med(lat(|l| l.p99)), "append_p999_ns": med(lat(|l| l.p999)),
                "batch100_per_sec": med(stat(rounds, |r| r.batch)),
                "durable1_per_sec": med(stat(rounds, |r| r.durable1)),
                "durable100_per_sec": med(stat(rounds, |r| r.durable100)),
                "reopen_ms": med(stat(rounds, |r| Some(r.reopen_ms))),
                "scan_per_sec": med(stat(rounds, |r| r.scan)),
            }
        }));
    }
    md.push_str("\nHow each engine is driven:\n\n");
    for (engine, _, _) in &results {
        md.push_str(&format!("- **{}**: {}\n", engine.name(), engine.notes()));
    }
    md.push_str(&format!(
        "\nThe sustained row appends up to {} records or for {} s, whichever ends first, into a fresh directory removed \
         afterwards, timed to its flush to the OS (no fsync). append/batch rows end with a flush to the OS (no fsync) inside the timing; latency is per call ({}). \
         Durable rows run {} s each in a fresh directory: groups of 1 or 100 records, each group synced. Reopen = opening the \
         log of the append and batch rows (2 N records) after a clean close; okaywal's log holds N records written durably \
         in groups of 1000, read back by its recovery.\n",
        a.sustained_records,
        a.sustained_seconds,
        clock.describe(),
        a.sync_seconds
    ));
    let doc = json!({"machine": machine, "date": date, "records": a.records, "rounds": a.rounds, "sync_seconds": a.sync_seconds,
                     "sustained_records": a.sustained_records, "sustained_seconds": a.sustained_seconds,
                     "timer": clock.describe(), "engines": json_engines});
    std::fs::write(a.out.join("peers.md"), &md)?;
    std::fs::write(a.out.join("peers.json"), serde_json::to_string_pretty(&doc)?)?;
    let plot_rows: Vec<plot::Row> = results
        .iter()
        .map(|(e, rounds, errors)| plot::Row {
            name: e.name().to_string(),
            failed: rounds.is_empty().then(|| errors.first().cloned().unwrap_or_default()),
            rates: [
                stat(rounds, |r| r.sustained),
                stat(rounds, |r| r.append),
                stat(rounds, |r| r.batch),
                stat(rounds, |r| r.durable1),
                stat(rounds, |r| r.durable100),
                stat(rounds, |r| r.scan),
            ],
            lat: [
                stat(rounds, |r| r.append_lat.map(|l| l.p50)),
                stat(rounds, |r| r.append_lat.map(|l| l.p99)),
                stat(rounds, |r| r.append_lat.map(|l| l.p999)),
            ],
            reopen_ms: stat(rounds, |r| Some(r.reopen_ms)),
        })
        .collect();
    let caption = format!(
        "{machine}; {date}; {} records of 100 B per row, {} rounds (bars: median, error bars: slowest to fastest round)",
        a.records, a.rounds
    );
    plot::draw(&a.out.join("peers.svg"), &caption, &plot_rows)?;
    print!("{md}");
    eprintln!("wrote {}/peers.md, peers.json, peers.svg", a.out.display());
    Ok(())
}

/// Each engine once per round in its own directory under `root`,
/// alternating the order: forwards on even rounds, backwards on odd ones,
/// rotated so each engine takes each position. Per engine: its results and
/// the errors of failed rounds. Progress goes to stderr as `label r/n: name`.
pub fn run_rounds<E: Copy, R>(
    engines: &[E],
    rounds: u64,
    root: &Path,
    label: &str,
    width: usize,
    name: impl Fn(E) -> &'static str,
    mut run: impl FnMut(E, &Path) -> Res<R>,
) -> Vec<(E, Vec<R>, Vec<String>)> {
    let mut results: Vec<(E, Vec<R>, Vec<String>)> = engines.iter().map(|e| (*e, Vec::new(), Vec::new())).collect();
    for round in 0..rounds as usize {
        let k = results.len();
        let mut order: Vec<usize> = (0..k).map(|i| (i + round) % k).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        for i in order {
            let engine = results[i].0;
            let dir = root.join(format!("r{round}-{}", name(engine).split_whitespace().next().unwrap_or("x")));
            eprint!("{label} {}/{rounds}: {:<width$}", round + 1, name(engine));
            let t = Instant::now();
            match run(engine, &dir) {
                Ok(r) => {
                    eprintln!(" {:.1} s", t.elapsed().as_secs_f64());
                    results[i].1.push(r);
                }
                Err(e) => {
                    eprintln!(" FAILED: {e}");
                    results[i].2.push(e.to_string());
                }
            }
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    results
}
