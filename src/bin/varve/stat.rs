//! `varve stat DIR`: what a log holds, without modifying it.

use std::io::Write;
use std::path::PathBuf;

use comfy_table::{presets, CellAlignment, Table};
use varvelog::format::{FORMAT_VERSION, HEADER_BYTES, PREALLOC_SUFFIX};
use varvelog::SegmentInfo;

use crate::pagecache;
use crate::util::{count, format_time, handle_write, human_bytes, open_log, warnings_failure, writer_pid, CmdResult};

/// Arguments of `varve stat`.
#[derive(clap::Args, Debug)]
pub struct StatArgs {
    /// The log directory.
    pub dir: PathBuf,
    /// Also list every segment file.
    #[arg(long, short = 's')]
    pub segments: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// `stat --json`: one object, fields in this order (docs/cli.md).
#[derive(serde_derive::Serialize)]
struct StatJson {
    dir: String,
    format_version: u16,
    segments: usize,
    sealed_segments: usize,
    records: u64,
    /// Bytes of the segment files.
    file_bytes: u64,
    spare_files: usize,
    spare_bytes: u64,
    /// Segments and spares: what the log takes on disk.
    disk_bytes: u64,
    frame_bytes: u64,
    first_seq: Option<u64>,
    last_seq: Option<u64>,
    next_seq: u64,
    first_timestamp: Option<u64>,
    last_timestamp: Option<u64>,
    first_time: Option<String>,
    last_time: Option<String>,
    /// One past the last durable seq: the end of the sealed segments.
    durable_next: u64,
    /// The last durable seq (`null`: none).
    durable_seq: Option<u64>,
    /// The last seq whose bytes the kernel has written to disk, sealed or
    /// not (`null`: none, or the kernel cannot tell).
    written_back_seq: Option<u64>,
    /// Whether the kernel could tell about the live segments.
    written_back_known: bool,
    writer_pid: Option<u32>,
    /// Segments held only in the object store the log is tiered to, and
    /// their bytes (not in `file_bytes` or `disk_bytes`).
    remote_segments: usize,
    remote_bytes: u64,
    segment_files: Vec<SegmentJson>,
    warnings: Vec<String>,
}

#[derive(serde_derive::Serialize)]
struct SegmentJson {
    file: String,
    base_seq: u64,
    records: u64,
    frame_bytes: u64,
    file_bytes: u64,
    sealed: bool,
    /// Held only in the object store (`file` is the object's URL).
    remote: bool,
}

/// How far the log is durable, and how far it is written to disk.
/// Sealed segments are durable: sealing fdatasyncs them. A live segment's
/// syncs are known only to its writer (the log keeps no record of them);
/// what can be seen from outside is whether the kernel has written its
/// pages to disk, which a sync does, and so does the kernel's own
/// write-back without making them durable (no flush of the disk's cache,
/// and the file system may not have committed the extents yet).
struct Durable {
    /// One past the last durable seq (the end of the sealed segments).
    next: u64,
    /// One past the last record written to disk, if the kernel can tell
    /// about every live segment it reaches.
    written_back_next: Option<u64>,
}

fn durable(infos: &[SegmentInfo], next_seq: u64) -> Durable {
    let start = infos.first().map_or(next_seq, |s| s.base_seq);
    let next = infos.iter().take_while(|s| s.sealed).last().map_or(start, |s| s.end_seq);
    let mut written = next;
    for s in infos.iter().skip_while(|s| s.sealed) {
        // The frames only: the header page reads as dirty again whenever a
        // writer re-faults it in (see `written_back`).
        let done = if s.sealed { Some(true) } else { pagecache::written_back(&s.path, HEADER_BYTES, s.frame_bytes) };
        match done {
            Some(true) => written = s.end_seq,
            Some(false) => break,
            None => return Durable { next, written_back_next: None },
        }
    }
    Durable { next, written_back_next: Some(written) }
}

/// The seq before `next`, if the log holds one (it starts at `first`).
fn last_below(next: u64, first: Option<u64>) -> Option<u64> {
    next.checked_sub(1).filter(|_| next > first.unwrap_or(u64::MAX))
}

/// The spare files (`*.prealloc`) in `dir`: a writer keeps one or two
/// preallocated segments ready, and they take disk too.
fn spares(dir: &std::path::Path) -> Vec<u64> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_str().is_some_and(|n| n.ends_with(PREALLOC_SUFFIX)))
        .filter_map(|e| e.metadata().ok().map(|m| m.len()))
        .collect()
}

pub fn run(args: &StatArgs) -> CmdResult {
    let log = open_log(&args.dir)?;
    let snap = log.snapshot();
    let infos = snap.segment_info();
    let sealed = infos.iter().filter(|s| s.sealed).count();
    let file_bytes: u64 = infos.iter().filter(|s| !s.remote).map(|s| s.file_bytes).sum();
    let frame_bytes: u64 = infos.iter().map(|s| s.frame_bytes).sum();
    let remote_segments = infos.iter().filter(|s| s.remote).count();
    let remote_bytes: u64 = infos.iter().filter(|s| s.remote).map(|s| s.file_bytes).sum();
    let spares = spares(&args.dir);
    let spare_bytes: u64 = spares.iter().sum();
    let durable = durable(&infos, snap.next_seq());
    // The first and last records left (compaction may have removed the
    // records at the first and last seqs).
    let (first, last) = (snap.first_seq(), snap.last_seq());
    let first_time = snap.iter().next().transpose()?.map(|r| r.timestamp());
    let last_time = snap.iter_rev().next().transpose()?.map(|r| r.timestamp());
    let writer = writer_pid(&args.dir);
    let warnings = log.warnings();

    let mut out = std::io::stdout().lock();
    let r = if args.json {
        let json = StatJson {
            dir: args.dir.display().to_string(),
            format_version: FORMAT_VERSION,
            segments: infos.len(),
            sealed_segments: sealed,
            records: snap.len(),
            file_bytes,
            spare_files: spares.len(),
            spare_bytes,
            disk_bytes: file_bytes + spare_bytes,
            remote_segments,
            remote_bytes,
            frame_bytes,
            first_seq: first,
            last_seq: last,
            next_seq: snap.next_seq(),
            first_timestamp: first_time,
            last_timestamp: last_time,
            first_time: first_time.map(format_time),
            last_time: last_time.map(format_time),
            durable_next: durable.next,
            durable_seq: last_below(durable.next, first),
            written_back_seq: durable.written_back_next.and_then(|n| last_below(n, first)),
            written_back_known: durable.written_back_next.is_some(),
            writer_pid: writer,
            segment_files: infos
                .iter()
                .map(|s| SegmentJson {
                    file: s.path.display().to_string(),
                    base_seq: s.base_seq,
                    records: s.records,
                    frame_bytes: s.frame_bytes,
                    file_bytes: s.file_bytes,
                    sealed: s.sealed,
                    remote: s.remote,
                })
                .collect(),
            warnings: warnings.clone(),
        };
        serde_json::to_writer(&mut out, &json).map_err(std::io::Error::from).and_then(|()| writeln!(out))
    } else {
        write_text(&mut out, args, &infos, sealed, &snap, &durable, (first_time, last_time), writer, &warnings, &spares)
    };
    handle_write(r)?;
    warnings_failure(&log)
}

#[allow(clippy::too_many_arguments)]
fn write_text(
    out: &mut impl Write,
    args: &StatArgs,
    infos: &[SegmentInfo],
    sealed: usize,
    snap: &varvelog::Snapshot,
    durable: &Durable,
    (first_time, last_time): (Option<u64>, Option<u64>),
    writer: Option<u32>,
    warnings: &[String],
    spares: &[u64],
) -> std::io::Result<()> {
    let (first, last) = (snap.first_seq(), snap.last_seq());
    let file_bytes: u64 = infos.iter().filter(|s| !s.remote).map(|s| s.file_bytes).sum();
    let frame_bytes: u64 = infos.iter().map(|s| s.frame_bytes).sum();
    let spare_bytes: u64 = spares.iter().sum();
    writeln!(out, "log             {}", args.dir.display())?;
    writeln!(out, "format version  {FORMAT_VERSION}")?;
    // A live segment before the last one: its writer moved on and its
    // sealing is pending, or was cut short (a crash; reopening reseals).
    let unsealed = infos.len().saturating_sub(1 + sealed);
    let live = infos.len() - sealed - unsealed;
    if unsealed > 0 {
        writeln!(out, "segments        {} ({sealed} sealed, {unsealed} unsealed: sealing pending or cut short, {live} live)", infos.len())?;
    } else {
        writeln!(out, "segments        {} ({sealed} sealed, {live} live)", infos.len())?;
    }
    match (first, last) {
        (Some(f), Some(l)) => writeln!(out, "records         {} (seq {f} ..= {l})", snap.len())?,
        _ => writeln!(out, "records         0 (next seq {})", snap.next_seq())?,
    }
    writeln!(
        out,
        "bytes           {} of records, {} on disk ({} in segments, {} in {})",
        human_bytes(frame_bytes),
        human_bytes(file_bytes + spare_bytes),
        human_bytes(file_bytes),
        human_bytes(spare_bytes),
        count(spares.len() as u64, "spare file")
    )?;
    let remote: Vec<&SegmentInfo> = infos.iter().filter(|s| s.remote).collect();
    if !remote.is_empty() {
        let bytes: u64 = remote.iter().map(|s| s.file_bytes).sum();
        writeln!(out, "object store    {} of {} (fetched when read)", count(remote.len() as u64, "segment"), human_bytes(bytes))?;
    }
    if let (Some(f), Some(t)) = (first, first_time) {
        writeln!(out, "first           seq {f} at {}", format_time(t))?;
    }
    if let (Some(l), Some(t)) = (last, last_time) {
        writeln!(out, "last            seq {l} at {}", format_time(t))?;
    }
    let name = |seq: Option<u64>| seq.map_or("none".to_string(), |s| s.to_string());
    if first.is_none() {
        writeln!(out, "durable seq     none (no records)")?;
    } else {
        let all_sealed = durable.next == snap.next_seq();
        let why = if all_sealed {
            "every record, in sealed segments"
        } else {
            "sealed segments; the live segment's syncs are known to its writer"
        };
        writeln!(out, "durable seq     {} ({why})", name(last_below(durable.next, first)))?;
        match durable.written_back_next {
            _ if all_sealed => {}
            Some(n) if n == snap.next_seq() => {
                writeln!(out, "written back    {} (every record is written to disk)", name(last_below(n, first)))?
            }
            Some(n) => writeln!(out, "written back    {} (later records are not written to disk yet)", name(last_below(n, first)))?,
            None => writeln!(out, "written back    unknown (this kernel cannot tell whether the live segment is on disk)")?,
        }
    }
    match writer {
        Some(pid) => writeln!(out, "writer          process {pid} holds the lock")?,
        None => writeln!(out, "writer          none")?,
    }
    if args.segments {
        writeln!(out)?;
        writeln!(out, "{}", segment_table(infos))?;
    }
    for w in warnings {
        writeln!(out, "warning         {w}")?;
    }
    Ok(())
}

/// `stat --segments`: one row per segment file.
fn segment_table(infos: &[SegmentInfo]) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::NOTHING);
    t.set_header(["file", "base seq", "records", "record bytes", "file bytes", "state"]);
    for (i, s) in infos.iter().enumerate() {
        let name = s.path.file_name().map_or_else(|| s.path.display().to_string(), |n| n.to_string_lossy().into_owned());
        let state = match (s.sealed, i + 1 == infos.len()) {
            (true, _) => "sealed",
            (false, true) => "live",
            (false, false) => "unsealed",
        };
        t.add_row([name, s.base_seq.to_string(), s.records.to_string(), s.frame_bytes.to_string(), s.file_bytes.to_string(), state.into()]);
    }
    for c in 1..5 {
        if let Some(col) = t.column_mut(c) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
    t
}
