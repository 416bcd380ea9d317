//! Renders the results: plain-text tables with each figure's bound and
//! ratio, and the same as JSON.

use std::fmt::Write;

use serde_json::{json, Value};

use super::{BenchArgs, Durable, Lat, Rate, Results, Wait};

/// Human-readable records/s.
fn rps(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2} M rec/s", r / 1e6)
    } else if r >= 1e3 {
        format!("{:.1} k rec/s", r / 1e3)
    } else {
        format!("{r:.0} rec/s")
    }
}

fn rate(r: &Rate) -> String {
    format!("{} ({:.0} MB/s)", rps(r.per_sec()), r.mb_per_sec())
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
    if b > 0.0 {
        format!("{:.2}x", a / b)
    } else {
        "-".into()
    }
}

fn wait_name(w: Wait) -> &'static str {
    match w {
        Wait::Spin => "spinning",
        Wait::Park => "parking",
    }
}

fn lat_row(out: &mut String, name: &str, l: &Lat, bound: Option<&Lat>) {
    let vs = bound.map_or(String::new(), |b| format!("{} / {}", ratio(l.p50 as f64, b.p50 as f64), ratio(l.p999 as f64, b.p999 as f64)));
    let _ = writeln!(
        out,
        "  {name:<44} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10}  {vs}",
        ns(l.p50 as f64),
        ns(l.p90 as f64),
        ns(l.p99 as f64),
        ns(l.p999 as f64),
        ns(l.p9999 as f64),
        ns(l.max as f64),
        l.count
    );
}

fn durable_label(d: &Durable) -> String {
    format!("{} per sync", if d.per_sync == 1 { "1 record".to_string() } else { format!("{} records", d.per_sync) })
}

/// The plain-text report.
pub fn tables(args: &BenchArgs, r: &Results) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "\nvarvelog bench");
    let _ = writeln!(o, "  machine   {}", r.machine);
    let _ = writeln!(o, "  directory {}", r.dir.display());
    let _ = writeln!(
        o,
        "  workload  {} records/phase x {} B payload ({} B framed), segments {} MiB, sync {}, clock {:?}, {} {} tailing reader(s), {} scanning reader(s)",
        args.records,
        args.payload_bytes,
        r.frame_bytes,
        args.segment_bytes >> 20,
        args.sync,
        args.clock,
        args.readers,
        wait_name(args.wait),
        args.scanners
    );
    let _ = writeln!(o, "  timer     {}", r.clock.describe());
    let load = |l: Option<f64>| l.map_or("?".to_string(), |l| format!("{l:.2}"));
    let _ = writeln!(
        o,
        "  run time  {:.1} s; 1-minute load average {} before, {} after{}",
        r.elapsed.as_secs_f64(),
        load(r.load.0),
        load(r.load.1),
        if r.load.0.unwrap_or(0.0).max(r.load.1.unwrap_or(0.0)) > 0.5 {
            " (other work shared the cores: latency tails and throughput suffer)"
        } else {
            ""
        }
    );

    let _ = writeln!(o, "\nThroughput                                   varvelog                      bound (same run, same bytes)                              ratio");
    let row = |o: &mut String, name: &str, v: String, b: String, x: String| {
        let _ = writeln!(o, "  {name:<42} {v:<29} {b:<57} {x}");
    };
    row(
        &mut o,
        &format!("sustained append, writer alone (median of {})", r.append_rounds.len()),
        rate(&r.append),
        format!("File+BufWriter, growing file {}", rps(super::median(&r.floor).per_sec())),
        ratio(r.append.per_sec(), super::median(&r.floor).per_sec()),
    );
    for (i, (a, f)) in r.append_rounds.iter().zip(&r.floor).enumerate() {
        row(
            &mut o,
            &format!("  round {}", i + 1),
            rate(a),
            format!("File+BufWriter {}", rps(f.per_sec())),
            ratio(a.per_sec(), f.per_sec()),
        );
    }
    row(
        &mut o,
        "",
        String::new(),
        format!("memcpy into pre-faulted mapping {}", rps(r.memcpy.per_sec())),
        ratio(r.append.per_sec(), r.memcpy.per_sec()),
    );
    if let Some(m) = &r.mixed {
        row(
            &mut o,
            &format!("append with {} tail + {} scan readers", args.readers, args.scanners),
            rate(&m.rate),
            format!("memcpy into pre-faulted mapping {}", rps(r.memcpy.per_sec())),
            ratio(m.rate.per_sec(), r.memcpy.per_sec()),
        );
        if args.scanners > 0 {
            row(
                &mut o,
                "  concurrent scanners (sum), checksums on",
                rate(&m.scan),
                format!("CRC32C over the same frames {}", rps(r.crc.per_sec())),
                ratio(m.scan.per_sec(), r.crc.per_sec()),
            );
        }
    }
    row(
        &mut o,
        &format!("scan of {} records, checksums verified", r.scan.records),
        rate(&r.scan),
        format!("CRC32C over the same frames {}", rps(r.crc.per_sec())),
        ratio(r.scan.per_sec(), r.crc.per_sec()),
    );
    for d in &r.durable {
        if let Some(p) = r.pwrite.iter().find(|p| p.per_sync == d.per_sync) {
            row(
                &mut o,
                &format!("durable, {}", durable_label(d)),
                rps(d.rate.per_sec()),
                format!("pwrite+fdatasync, growing file {}", rps(p.rate.per_sec())),
                ratio(d.rate.per_sec(), p.rate.per_sec()),
            );
        }
        if let Some(p) = r.pwrite_zeroed.iter().find(|p| p.per_sync == d.per_sync) {
            row(
                &mut o,
                "",
                String::new(),
                format!("pwrite+fdatasync, pre-zeroed file {}", rps(p.rate.per_sec())),
                ratio(d.rate.per_sec(), p.rate.per_sec()),
            );
        }
    }
    let gib = r.log_bytes as f64 / (1u64 << 30) as f64;
    row(
        &mut o,
        &format!("open/recovery, {gib:.2} GiB in {} segments", r.open_report.segments),
        format!("{:.2} ms", r.open.as_secs_f64() * 1e3),
        format!("open+mmap of the same files {:.2} ms", r.open_files.as_secs_f64() * 1e3),
        ratio(r.open.as_secs_f64(), r.open_files.as_secs_f64()),
    );

    if !r.producers.is_empty() {
        let _ = writeln!(o, "\nMany producers (100% appends)                Ingest                        Mutex<Writer> (same run)                                  ratio");
        for p in &r.producers {
            let base = if p.durable { "lock; append; Writer::sync; unlock" } else { "lock; append; unlock" };
            row(
                &mut o,
                &format!("{} thread(s), {}", p.threads, if p.durable { "durable" } else { "visible" }),
                rps(p.ingest.per_sec()),
                format!("{base} {}", rps(p.mutex.per_sec())),
                ratio(p.ingest.per_sec(), p.mutex.per_sec()),
            );
        }
    }

    let _ = writeln!(
        o,
        "\nLatency                                            p50       p90       p99     p99.9    p99.99       max    samples  vs bound (p50 / p99.9)"
    );
    lat_row(&mut o, "append, writer alone", &r.append_lat, Some(&r.memcpy_lat));
    lat_row(&mut o, "  bound: memcpy of one frame", &r.memcpy_lat, None);
    if let Some(t) = &r.tail {
        lat_row(
            &mut o,
            &format!("writer->tail, {} {} reader(s), {}/s", args.readers, wait_name(args.wait), args.tail_rate),
            &t.lat,
            Some(&r.ping_pong),
        );
        lat_row(&mut o, "  bound: atomic ping-pong, one way", &r.ping_pong, None);
        lat_row(&mut o, "  the paced appends themselves", &t.append_lat, Some(&r.memcpy_lat));
    } else {
        lat_row(&mut o, "atomic ping-pong, one way (bound)", &r.ping_pong, None);
    }
    if let Some(m) = &r.mixed {
        lat_row(&mut o, "tail lag, writer at full speed (mixed)", &m.tail_lag, Some(&r.ping_pong));
    }
    for d in &r.durable {
        let p = r.pwrite.iter().find(|p| p.per_sync == d.per_sync);
        lat_row(&mut o, &format!("durable group, {}", durable_label(d)), &d.sync_lat, p.map(|p| &p.sync_lat));
        if let Some(p) = p {
            lat_row(&mut o, "  bound: pwrite+fdatasync, growing file", &p.sync_lat, None);
        }
        if let Some(p) = r.pwrite_zeroed.iter().find(|p| p.per_sync == d.per_sync) {
            lat_row(&mut o, "  bound: pwrite+fdatasync, pre-zeroed file", &p.sync_lat, None);
        }
    }

    let _ = writeln!(o, "\nNotes");
    let _ = writeln!(
        o,
        "  - append rows use Writer::append (no key; timestamp from {}); latency rows time every call.",
        match args.clock {
            super::TimeSource::Tsc => "the TSC anchored to CLOCK_REALTIME, --clock tsc",
            super::TimeSource::Realtime => "CLOCK_REALTIME, --clock realtime",
            super::TimeSource::Coarse => "CLOCK_REALTIME_COARSE, --clock coarse",
        }
    );
    let (n, t) = r.append_lat.stalls;
    if n > 0 {
        let _ = writeln!(
            o,
            "  - append latency phase: {n} appends took >= {} us (waiting for a prepared segment, page faults, preemption), \
             {:.1} ms in all = {:.0}% of the phase's append time.",
            super::STALL_NS / 1000,
            t as f64 / 1e6,
            t as f64 / (r.append_lat.mean * r.append_lat.count as f64).max(1.0) * 100.0
        );
    }
    let _ = writeln!(
        o,
        "  - sustained rounds: File+BufWriter (default 8 KiB buffer) writes the round's frames to a new file, no fsync, timed to \
         its flush; then the engine appends as many records to a new log. Before each side the file system is synced (syncfs), \
         and each file or log is removed after its round, so both start alike. Figures are the median round."
    );
    if !r.producers.is_empty() {
        let _ = writeln!(
            o,
            "  - many producers: each pair runs Ingest, Mutex<Writer>, Mutex<Writer>, Ingest in fresh logs after a discarded \
             warm-up run; durable sides sync by hand (policy never, zero-filled segments)."
        );
    }
    let _ = writeln!(
        o,
        "  - before each phase after the first, the bench waits until background sealing has caught up (Log::stats), \
         so a phase does not pay for the previous one's seals."
    );
    if let Some(t) = &r.tail {
        let _ = writeln!(
            o,
            "  - writer->tail: the paced writer stamps each payload with the timer just before Writer::append; each reader \
             follows with Log::tail_from + Tail::next_timeout (checksums verified) and records stamp-to-observe per record."
        );
        if t.clamped > 0 {
            let _ = writeln!(o, "  - {} tail samples had the reader's clock behind the writer's and were counted as 0.", t.clamped);
        }
    }
    let threads = 1 + if r.mixed.is_some() { args.readers + args.scanners } else { 0 };
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads > cores {
        let _ = writeln!(
            o,
            "  - the mixed phase runs {threads} busy threads (plus the engine's background threads) on {cores} cores: its figures include time-sharing."
        );
    }
    let _ = writeln!(
        o,
        "  - durable rows: the engine (Options::zero_fill on: segments written with zeros and synced in the background before use) \
         appends N records then Writer::sync (msync of the dirty range); the bounds pwrite() the same \
         N frames then fdatasync(), at the end of a growing file (the naive log) or over a pre-zeroed, \
         synced file (data-only syncs, no metadata: the best a log can do). Closing the log (waiting for background sealing) took {:.2} s.",
        r.close.as_secs_f64()
    );
    let _ = writeln!(
        o,
        "  - open/recovery: {} sealed segments trusted by footer, {} records, recovery report says {:.2} ms.",
        r.open_report.sealed_segments,
        r.open_report.records,
        r.open_report.duration.as_secs_f64() * 1e3
    );
    o
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

/// The JSON report: the same figures, plus the goals.
pub fn json(args: &BenchArgs, r: &Results) -> Value {
    json!({
        "machine": r.machine,
        "directory": r.dir.display().to_string(),
        "workload": {
            "records": args.records, "payload_bytes": args.payload_bytes, "frame_bytes": r.frame_bytes,
            "segment_bytes": args.segment_bytes, "sync": args.sync.to_string(), "clock": format!("{:?}", args.clock), "readers": args.readers,
            "scanners": args.scanners, "wait": wait_name(args.wait), "tail_records": r.tail.as_ref().map(|t| t.lat.count), "tail_rate": args.tail_rate,
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
        },
        "producers": r.producers.iter().map(|p| json!({
            "threads": p.threads, "durable": p.durable, "ingest": rate_json(&p.ingest), "mutex_writer": rate_json(&p.mutex),
        })).collect::<Vec<_>>(),
        "varvelog": {
            "append": rate_json(&r.append),
            "append_rounds": r.append_rounds.iter().map(rate_json).collect::<Vec<_>>(),
            "append_latency": lat_json(&r.append_lat),
            "tail": r.tail.as_ref().map(|t| json!({
                "latency": lat_json(&t.lat), "paced_append_latency": lat_json(&t.append_lat),
                "writer": rate_json(&t.rate), "clamped_samples": t.clamped,
            })),
            "mixed": r.mixed.as_ref().map(|m| json!({
                "append": rate_json(&m.rate), "tail_lag": lat_json(&m.tail_lag), "scanners": rate_json(&m.scan),
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
