//! Renders the results: plain-text tables with each figure's bound and
//! ratio, no line wider than [`WIDTH`] columns, and the same as JSON.

use std::fmt::Write;

use comfy_table::{Cell, CellAlignment, ColumnConstraint, ContentArrangement, Table, Width};
use serde_json::{json, Value};

use super::{BenchArgs, Durable, Lat, Rate, Results, Wait};

/// Human-readable records/s.
pub fn rps(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2} M rec/s", r / 1e6)
    } else if r >= 1e3 {
        format!("{:.1} k rec/s", r / 1e3)
    } else {
        format!("{r:.0} rec/s")
    }
}

/// Records/s without the unit, for tables whose header names it: `14.45 M`.
fn rps_short(r: f64) -> String {
    rps(r).trim_end_matches("rec/s").trim_end().to_string()
}

/// Human-readable nanoseconds.
fn ns(v: f64) -> String {
    if v >= 1e9 {
        format!("{:.2} s", v / 1e9)
    } else if v >= 1e6 {
        format!("{:.2} ms", v / 1e6)
    } else if v >= 1e4 {
        format!("{:.1} us", v / 1e3)
    } else if v >= 1e3 {
        format!("{:.2} us", v / 1e3)
    } else {
        format!("{v:.0} ns")
    }
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 && a / b >= 100.0 {
        format!("{:.0}x", a / b)
    } else if b > 0.0 {
        format!("{:.2}x", a / b)
    } else {
        "-".into()
    }
}

/// How a kind of tailing reader is named in the report.
pub fn wait_name(w: Wait) -> &'static str {
    match w {
        Wait::Spin => "spinning",
        Wait::Park => "parking",
        Wait::Async => "async",
    }
}

/// A kind of tailing reader in a table row's name, where room is short.
fn wait_short(w: Wait) -> &'static str {
    match w {
        Wait::Spin => "spin",
        Wait::Park => "park",
        Wait::Async => "async",
    }
}

/// The kinds of tailing reader, named, in the order they ran.
fn wait_names(waits: &[Wait]) -> String {
    waits.iter().map(|&w| wait_name(w)).collect::<Vec<_>>().join(", ")
}

/// Every line of the report fits a terminal this wide.
pub const WIDTH: u16 = 100;

/// A table of the report: header underlined, no borders, cells wrapped so
/// the table fits [`WIDTH`] columns.
fn table(header: &[&str]) -> Table {
    let mut t = Table::new();
    // Only the header's underline: no borders, no lines between rows.
    t.load_preset("     -             ");
    t.set_content_arrangement(ContentArrangement::Dynamic);
    t.set_width(WIDTH);
    t.set_header(header.iter().map(Cell::new));
    t
}

/// Right-aligns columns `from..` (figures).
fn align_figures(t: &mut Table, from: usize) {
    for c in from..t.column_count() {
        if let Some(col) = t.column_mut(c) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
}

/// A section: its title, then the table.
fn section(o: &mut String, title: &str, t: &Table) {
    let _ = writeln!(o, "\n{title}\n{t}");
}

/// `text` wrapped to [`WIDTH`] columns, the first line after `first`, the
/// others indented like it.
fn wrapped(o: &mut String, first: &str, text: &str) {
    let indent = " ".repeat(first.chars().count());
    let opts = textwrap::Options::new(usize::from(WIDTH)).initial_indent(first).subsequent_indent(&indent);
    let _ = writeln!(o, "{}", textwrap::fill(text, opts));
}

fn lat_figures(l: &Lat) -> [u64; 6] {
    [l.p50, l.p90, l.p99, l.p999, l.p9999, l.max]
}

fn lat_cells(name: &str, l: &Lat) -> Vec<String> {
    let mut row = vec![name.to_string()];
    row.extend(lat_figures(l).map(|v| ns(v as f64)));
    row.push(l.count.to_string());
    row
}

/// A figure's row (unless `name` is empty: a second bound of the row
/// above), then its bound's, then the ratio at each percentile.
fn lat_rows(t: &mut Table, name: &str, l: &Lat, bound: Option<(&str, &Lat)>) {
    if !name.is_empty() {
        t.add_row(lat_cells(name, l));
    }
    if let Some((bound_name, b)) = bound {
        t.add_row(lat_cells(&format!("  bound: {bound_name}"), b));
        let mut row = vec!["  ratio to the bound".to_string()];
        row.extend(lat_figures(l).iter().zip(lat_figures(b)).map(|(v, b)| ratio(*v as f64, b as f64)));
        t.add_row(row);
    }
}

/// Figures of one kind side by side (`(name, short name, figures)`),
/// then their common bound, then each one's ratio to it.
fn lat_group(t: &mut Table, rows: &[(String, &str, &Lat)], bound: (&str, &Lat)) {
    for (name, _, l) in rows {
        t.add_row(lat_cells(name, l));
    }
    t.add_row(lat_cells(&format!("  bound: {}", bound.0), bound.1));
    for (_, short, l) in rows {
        let name = if rows.len() == 1 { "  ratio to the bound".to_string() } else { format!("  ratio, {short}") };
        let mut row = vec![name];
        row.extend(lat_figures(l).iter().zip(lat_figures(bound.1)).map(|(v, b)| ratio(*v as f64, b as f64)));
        t.add_row(row);
    }
}

/// Keeps column 0 (the figure's name) at least `name` wide and the others
/// at least `figures` wide when cells wrap, so figures stay on one line.
fn min_widths(t: &mut Table, name: u16, figures: u16) {
    for (i, col) in t.column_iter_mut().enumerate() {
        col.set_constraint(ColumnConstraint::LowerBoundary(Width::Fixed(if i == 0 { name } else { figures })));
    }
}

/// A row of a figure that was not measured in this run, and why: "n/a"
/// in each figure's cell.
fn not_measured(columns: usize, name: &str, why: &str) -> Vec<String> {
    let mut row = vec![format!("{name}: not measured ({why})")];
    row.resize(columns, "n/a".into());
    row
}

fn durable_label(d: &Durable) -> String {
    format!("{} per sync", if d.per_sync == 1 { "1 record".to_string() } else { format!("{} records", d.per_sync) })
}

/// Why the tail phase did not run.
pub fn tail_skipped(args: &BenchArgs) -> &'static str {
    if args.readers == 0 {
        "--readers 0"
    } else {
        "--tail-records 0"
    }
}

/// The plain-text report.
pub fn tables(args: &BenchArgs, r: &Results) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "\nvarvelog bench, {}", r.date);
    wrapped(&mut o, "  machine   ", &r.machine);
    wrapped(&mut o, "  directory ", &r.dir.display().to_string());
    wrapped(
        &mut o,
        "  workload  ",
        &format!(
            "{} records/phase x {} B payload ({} B framed), segments {}, sync {}, clock {:?}, {} tailing reader(s) of each kind \
             ({}; the mixed phase's {}), {} scanning reader(s){}",
            args.records,
            args.payload_bytes,
            r.frame_bytes,
            crate::util::human_bytes(args.segment_bytes),
            args.sync,
            args.clock,
            args.readers,
            wait_names(&args.waits()),
            wait_name(args.mixed_wait()),
            args.scanners,
            match args.busy_threads {
                0 => String::new(),
                n => format!(", {n} busy thread(s) spinning beside both sides of each sustained round"),
            }
        ),
    );
    wrapped(&mut o, "  timer     ", &r.clock.describe());
    let load = |l: Option<f64>| l.map_or("?".to_string(), |l| format!("{l:.2}"));
    wrapped(
        &mut o,
        "  run time  ",
        &format!(
            "{:.1} s; 1-minute load average {} before, {} after{}",
            r.elapsed.as_secs_f64(),
            load(r.load.0),
            load(r.load.1),
            if r.load.0.unwrap_or(0.0).max(r.load.1.unwrap_or(0.0)) > 0.5 {
                " (other work shared the cores: latency tails and throughput suffer)"
            } else {
                ""
            }
        ),
    );
    section(&mut o, "Throughput (records/s)", &throughput_table(args, r));
    if !r.producers.is_empty() {
        let mut t = table(&["producers, 100% appends", "Ingest", "Mutex<Writer> (same run)", "", "ratio"]);
        for p in &r.producers {
            let base = if p.durable { "lock; append; Writer::sync; unlock" } else { "lock; append; unlock" };
            t.add_row(vec![
                format!("{} thread(s), {}", p.threads, if p.durable { "durable" } else { "visible" }),
                rps_short(p.ingest.per_sec()),
                base.to_string(),
                rps_short(p.mutex.per_sec()),
                ratio(p.ingest.per_sec(), p.mutex.per_sec()),
            ]);
        }
        align_figures(&mut t, 1);
        if let Some(col) = t.column_mut(2) {
            col.set_cell_alignment(CellAlignment::Left);
        }
        section(&mut o, "Many producers (records/s)", &t);
    }
    let _ = writeln!(o);
    wrapped(&mut o, "Open/recovery ", &open_line(r));
    section(&mut o, "Latency", &latency_table(args, r));
    let _ = writeln!(o, "\nNotes");
    for note in notes(args, r) {
        wrapped(&mut o, "  - ", &note);
    }
    o
}

fn throughput_table(args: &BenchArgs, r: &Results) -> Table {
    let mut t = table(&["figure", "varvelog", "MB/s", "bound (same run, same bytes)", "bound", "ratio"]);
    let row = |t: &mut Table, name: String, v: &Rate, bound: &str, b: f64| {
        let x = if b > 0.0 { ratio(v.per_sec(), b) } else { String::new() };
        let value = if name.is_empty() { String::new() } else { rps_short(v.per_sec()) };
        let mb = if name.is_empty() { String::new() } else { format!("{:.0}", v.mb_per_sec()) };
        t.add_row(vec![name, value, mb, bound.to_string(), if b > 0.0 { rps_short(b) } else { String::new() }, x]);
    };
    let floor = super::median(&r.floor).per_sec();
    row(
        &mut t,
        format!("sustained append, writer alone (median of {})", r.append_rounds.len()),
        &r.append,
        "File+BufWriter, growing file",
        floor,
    );
    for (i, (a, f)) in r.append_rounds.iter().zip(&r.floor).enumerate() {
        row(&mut t, format!("  round {}", i + 1), a, "File+BufWriter", f.per_sec());
    }
    row(&mut t, String::new(), &r.append, "memcpy into pre-faulted mapping", r.memcpy.per_sec());
    if !r.append_on_disk.is_empty() && !r.floor_on_disk.is_empty() {
        row(
            &mut t,
            format!("the same, to all on disk: Log::close (median of {})", r.append_on_disk.len()),
            &super::median(&r.append_on_disk),
            "File+BufWriter, then fdatasync",
            super::median(&r.floor_on_disk).per_sec(),
        );
    }
    let mixed_name = format!("append beside {} tail + {} scan readers", args.readers, args.scanners);
    match &r.mixed {
        Some(m) => {
            row(&mut t, mixed_name, &m.rate, "the writer alone, same log, just before", m.alone.per_sec());
            if args.scanners > 0 {
                row(&mut t, "  the scanners beside it (sum), checksums on".into(), &m.scan, "CRC32C over the same frames", r.crc.per_sec());
            }
        }
        None => {
            t.add_row(not_measured(6, &mixed_name, "no readers"));
        }
    }
    row(&mut t, format!("scan of {} records, checksums verified", r.scan.records), &r.scan, "CRC32C over the same frames", r.crc.per_sec());
    for d in &r.durable {
        if let Some(p) = r.pwrite.iter().find(|p| p.per_sync == d.per_sync) {
            row(&mut t, format!("durable, {}", durable_label(d)), &d.rate, "pwrite+fdatasync, growing file", p.rate.per_sec());
        }
        if let Some(p) = r.pwrite_zeroed.iter().find(|p| p.per_sync == d.per_sync) {
            row(&mut t, String::new(), &d.rate, "pwrite+fdatasync, pre-zeroed file", p.rate.per_sec());
        }
    }
    min_widths(&mut t, 26, 5);
    align_figures(&mut t, 1);
    if let Some(col) = t.column_mut(3) {
        col.set_cell_alignment(CellAlignment::Left);
    }
    t
}

fn open_line(r: &Results) -> String {
    format!(
        "{:.2} ms for {:.2} GiB in {} segments; bound: open + mmap of the same files {:.2} ms ({})",
        r.open.as_secs_f64() * 1e3,
        r.log_bytes as f64 / (1u64 << 30) as f64,
        r.open_report.segments,
        r.open_files.as_secs_f64() * 1e3,
        ratio(r.open.as_secs_f64(), r.open_files.as_secs_f64())
    )
}

fn latency_table(args: &BenchArgs, r: &Results) -> Table {
    let header = ["latency", "p50", "p90", "p99", "p99.9", "p99.99", "max", "samples"];
    let mut t = table(&header);
    let n = header.len();
    lat_rows(&mut t, "append, writer alone", &r.append_lat, Some(("memcpy of one frame", &r.memcpy_lat)));
    if r.tail.is_empty() {
        t.add_row(not_measured(n, &format!("writer->tail ({}/s)", args.tail_rate), tail_skipped(args)));
        t.add_row(lat_cells("  bound: atomic ping-pong, one way", &r.ping_pong));
    } else {
        let tails: Vec<_> = r.tail.iter().map(|k| (format!("writer->tail, {}", wait_short(k.wait)), wait_short(k.wait), &k.lat)).collect();
        lat_group(&mut t, &tails, ("atomic ping-pong, one way", &r.ping_pong));
        let appends: Vec<_> =
            r.tail.iter().map(|k| (format!("paced appends, {}", wait_short(k.wait)), wait_short(k.wait), &k.append_lat)).collect();
        lat_group(&mut t, &appends, ("memcpy of one frame", &r.memcpy_lat));
    }
    match &r.mixed {
        Some(m) => lat_rows(
            &mut t,
            &format!("tail lag, writer at full speed (mixed, {} reader(s))", wait_name(args.mixed_wait())),
            &m.tail_lag,
            Some(("atomic ping-pong, one way", &r.ping_pong)),
        ),
        None => {
            t.add_row(not_measured(n, "tail lag, writer at full speed (mixed)", "no readers"));
        }
    }
    for d in &r.durable {
        let p = r.pwrite.iter().find(|p| p.per_sync == d.per_sync);
        lat_rows(
            &mut t,
            &format!("durable group, {}", durable_label(d)),
            &d.sync_lat,
            p.map(|p| ("pwrite+fdatasync, growing file", &p.sync_lat)),
        );
        if let Some(p) = r.pwrite_zeroed.iter().find(|p| p.per_sync == d.per_sync) {
            lat_rows(&mut t, "", &d.sync_lat, Some(("pwrite+fdatasync, pre-zeroed file", &p.sync_lat)));
        }
    }
    min_widths(&mut t, 21, 9);
    align_figures(&mut t, 1);
    t
}

/// The notes under the tables, one paragraph each.
fn notes(args: &BenchArgs, r: &Results) -> Vec<String> {
    let mut notes = vec![format!(
        "append rows use Writer::append (no key; timestamp from {}); latency rows time every call.",
        match args.clock {
            super::TimeSource::Tsc => "the TSC anchored to CLOCK_REALTIME, --clock tsc",
            super::TimeSource::Realtime => "CLOCK_REALTIME, --clock realtime",
            super::TimeSource::Coarse => "CLOCK_REALTIME_COARSE, --clock coarse",
        }
    )];
    let (n, t) = r.append_lat.stalls;
    if n > 0 {
        notes.push(format!(
            "append latency phase: {n} appends took >= {} us (waiting for a prepared segment, page faults, preemption), \
             {:.1} ms in all = {:.0}% of the phase's append time.",
            super::STALL_NS / 1000,
            t as f64 / 1e6,
            t as f64 / (r.append_lat.mean * r.append_lat.count as f64).max(1.0) * 100.0
        ));
    }
    notes.push(
        "sustained rounds: File+BufWriter (default 8 KiB buffer) writes the round's frames to a new file, no fsync, timed to \
         its flush; then the engine appends as many records to a new log, timed to its last append. Before each side the file \
         system is synced (syncfs), and each file or log is removed after its round, so both start alike. Figures are the \
         median round. \"To all on disk\" times the same runs on: the floor to the end of an fdatasync after its flush, the \
         engine to the end of Log::close (every record synced, every full segment sealed). Without a sync the floor never \
         waits for the disk (its bytes fit in the page cache), where the engine's sealer writes each full segment to the \
         disk as it goes."
            .into(),
    );
    if !r.producers.is_empty() {
        notes.push(
            "many producers: visible appends take turns in one log (Ingest and Mutex<Writer> four turns each, \
             alternating which goes first, after a discarded warm-up turn); durable sides run Ingest, Mutex<Writer>, \
             Mutex<Writer>, Ingest in fresh logs of segments of at most 8 MiB, syncing by hand (policy never, \
             zero-filled segments)."
                .into(),
        );
    }
    notes.push(
        "before each phase after the first, the bench waits until background sealing has caught up (Log::stats), \
         so a phase does not pay for the previous one's seals. The sustained rounds use the engine's defaults; the \
         log of the latency, tail, mixed and scan phases keeps all its sealed segments in the page cache \
         (Options::cached_sealed_segments(usize::MAX)), so its scans read memory, as their bounds do. The mixed \
         phase's baseline is the writer alone in that log, appending as many records the same way just before."
            .into(),
    );
    if !r.tail.is_empty() {
        notes.push(format!(
            "writer->tail: a writer paced at {}/s stamps each payload with the timer just before Writer::append; {} \
             reader(s) of each kind in turn, on the same log, record stamp-to-observe per record (checksums verified). \
             spin: Tail::next_timeout with WaitStrategy::BusySpin; park: Tail::next_timeout with WaitStrategy::Park \
             (spins briefly, then parks until the writer wakes it); async: Tail::into_stream, an owned record per item, \
             polled on a thread of its own by pollster::block_on, which parks the thread whenever the stream is pending \
             until the writer wakes its task. The paced appends rows time the writer's appends meanwhile (waking a \
             waiting reader is part of an append). The writer achieved {}.",
            args.tail_rate,
            args.readers,
            r.tail.iter().map(|t| format!("{} with {}", rps(t.rate.per_sec()), wait_short(t.wait))).collect::<Vec<_>>().join(", ")
        ));
        let clamped: u64 = r.tail.iter().map(|t| t.clamped).sum();
        if clamped > 0 {
            notes.push(format!("{clamped} tail samples had the reader's clock behind the writer's and were counted as 0."));
        }
    }
    let threads = 1 + if r.mixed.is_some() { args.readers + args.scanners } else { 0 };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads > cores {
        notes.push(format!(
            "the mixed phase runs {threads} busy threads (plus the engine's background threads) on {cores} cores: its figures include time-sharing."
        ));
    }
    notes.push(format!(
        "durable rows: the engine (Options::zero_fill on: segments written with zeros and synced in the background before use) \
         appends N records then Writer::sync (msync of the dirty range); the bounds pwrite() the same \
         N frames then fdatasync(), at the end of a growing file (the naive log) or over a pre-zeroed, \
         synced file (data-only syncs, no metadata: the best a log can do). Closing the log (waiting for background sealing) took {:.2} s.",
        r.close.as_secs_f64()
    ));
    notes.push(format!(
        "open/recovery: {} sealed segments trusted by footer, {} records, recovery report says {:.2} ms.",
        r.open_report.sealed_segments,
        r.open_report.records,
        r.open_report.duration.as_secs_f64() * 1e3
    ));
    notes
}

fn lat_json(l: &Lat) -> Value {
    json!({"count": l.count, "p50_ns": l.p50, "p90_ns": l.p90, "p99_ns": l.p99, "p999_ns": l.p999, "p9999_ns": l.p9999, "max_ns": l.max,
           "mean_ns": l.mean, "stalls": l.stalls.0, "stall_ns": l.stalls.1})
}

fn rate_json(r: &Rate) -> Value {
    json!({"records": r.records, "seconds": r.secs, "records_per_sec": r.per_sec(), "payload_mb_per_sec": r.mb_per_sec()})
}

fn durable_json(d: &Durable) -> Value {
    json!({"records_per_sync": d.per_sync, "throughput": rate_json(&d.rate), "group_latency": lat_json(&d.sync_lat)})
}

/// The JSON report: the same figures. A figure not measured is `null`.
pub fn json(args: &BenchArgs, r: &Results) -> Value {
    json!({
        "machine": r.machine,
        "date": r.date,
        "directory": r.dir.display().to_string(),
        "workload": {
            "records": args.records, "payload_bytes": args.payload_bytes, "frame_bytes": r.frame_bytes,
            "segment_bytes": args.segment_bytes, "sync": args.sync.to_string(), "clock": format!("{:?}", args.clock), "readers": args.readers,
            "scanners": args.scanners, "busy_threads": args.busy_threads, "wait": args.waits().iter().map(|&w| wait_name(w)).collect::<Vec<_>>(),
            "mixed_wait": wait_name(args.mixed_wait()), "tail_records": r.tail.first().map(|t| t.lat.count), "tail_rate": args.tail_rate,
        },
        "timer": {"description": r.clock.describe(), "overhead_ns": r.clock.overhead_ns(), "ns_per_tick": r.clock.ns_per_tick},
        "bounds": {
            "memcpy": rate_json(&r.memcpy),
            "memcpy_latency": lat_json(&r.memcpy_lat),
            "crc32c_scan": rate_json(&r.crc),
            "ping_pong_one_way": lat_json(&r.ping_pong),
            "pwrite_fdatasync_growing": r.pwrite.iter().map(durable_json).collect::<Vec<_>>(),
            "pwrite_fdatasync_prezeroed": r.pwrite_zeroed.iter().map(durable_json).collect::<Vec<_>>(),
            "open_mmap_files_ms": r.open_files.as_secs_f64() * 1e3,
            "file_bufwriter_rounds": r.floor.iter().map(rate_json).collect::<Vec<_>>(),
            "file_bufwriter_on_disk_rounds": r.floor_on_disk.iter().map(rate_json).collect::<Vec<_>>(),
        },
        "producers": r.producers.iter().map(|p| json!({
            "threads": p.threads, "durable": p.durable, "ingest": rate_json(&p.ingest), "mutex_writer": rate_json(&p.mutex),
        })).collect::<Vec<_>>(),
        "varvelog": {
            "append": rate_json(&r.append),
            "append_rounds": r.append_rounds.iter().map(rate_json).collect::<Vec<_>>(),
            "append_on_disk_rounds": r.append_on_disk.iter().map(rate_json).collect::<Vec<_>>(),
            "append_latency": lat_json(&r.append_lat),
            "tail": r.tail.iter().map(|t| json!({
                "wait": wait_name(t.wait), "latency": lat_json(&t.lat), "paced_append_latency": lat_json(&t.append_lat),
                "writer": rate_json(&t.rate), "clamped_samples": t.clamped,
            })).collect::<Vec<_>>(),
            "mixed": r.mixed.as_ref().map(|m| json!({
                "append": rate_json(&m.rate), "writer_alone": rate_json(&m.alone), "tail_lag": lat_json(&m.tail_lag),
                "scanners": rate_json(&m.scan),
            })),
            "scan": rate_json(&r.scan),
            "durable": r.durable.iter().map(durable_json).collect::<Vec<_>>(),
            "close_seconds": r.close.as_secs_f64(),
            "open": {
                "ms": r.open.as_secs_f64() * 1e3, "log_bytes": r.log_bytes, "segments": r.open_report.segments,
                "sealed_segments": r.open_report.sealed_segments, "records": r.open_report.records,
                "report_ms": r.open_report.duration.as_secs_f64() * 1e3,
            },
        },
        "run_seconds": r.elapsed.as_secs_f64(),
        "load_average": {"before": r.load.0, "after": r.load.1},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_rows_fit_the_width_with_the_widest_figures() {
        // Goal: the latency table stays within WIDTH columns even when every
        // figure takes its widest form and names are long. Method: rows of
        // 999.99 ms figures, a long name and a huge ratio; measure each line.
        let l = Lat { count: 123_456_789, p50: 999_990_000, p90: 999_990_000, p99: 999_990_000, p999: 35_000_000_000, ..Lat::default() };
        let fast = Lat { count: 1, p50: 1, p90: 1, p99: 1, p999: 1, p9999: 1, max: 1, ..Lat::default() };
        let mut t = table(&["latency", "p50", "p90", "p99", "p99.9", "p99.99", "max", "samples"]);
        lat_rows(&mut t, "writer->tail (16 spinning reader(s), 1000000/s)", &l, Some(("atomic ping-pong, one way", &fast)));
        t.add_row(not_measured(8, "tail lag, writer at full speed (mixed)", "no readers"));
        min_widths(&mut t, 21, 9);
        let text = t.to_string();
        for line in text.lines() {
            assert!(line.chars().count() <= usize::from(WIDTH), "{} columns: {line:?}\n{text}", line.chars().count());
        }
        assert!(text.contains("999.99 ms") && text.contains("35.00 s"), "figures must not wrap:\n{text}");
    }
}
