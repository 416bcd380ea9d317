//! `varve stat DIR`: what a log holds, without modifying it.

use std::io::Write;
use std::path::PathBuf;

use varvelog::format::FORMAT_VERSION;

use crate::util::{format_time, handle_write, human_bytes, json_string_of, open_log, warnings_failure, writer_pid, CmdResult, Failure};

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

pub fn run(args: &StatArgs) -> CmdResult {
    let log = open_log(&args.dir)?;
    let snap = log.snapshot();
    let infos = snap.segment_info();
    let sealed = infos.iter().filter(|s| s.sealed).count();
    let file_bytes: u64 = infos.iter().map(|s| s.file_bytes).sum();
    let frame_bytes: u64 = infos.iter().map(|s| s.frame_bytes).sum();
    // Preallocated spares (a writer keeps one or two ready) take disk too.
    let spares: Vec<u64> = std::fs::read_dir(&args.dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_str().is_some_and(|n| n.ends_with(varvelog::format::PREALLOC_SUFFIX)))
                .filter_map(|e| e.metadata().ok().map(|m| m.len()))
                .collect()
        })
        .unwrap_or_default();
    let spare_bytes: u64 = spares.iter().sum();
    // Sealing fsyncs a segment, so everything in sealed segments is durable;
    // how much of the live segment is durable only its writer knows.
    // Only a prefix of sealed segments counts: the sealer works in order.
    let durable_next = infos.iter().take_while(|s| s.sealed).last().map(|s| s.base_seq + s.records);
    let time_of = |seq: Option<u64>| -> Result<Option<u64>, Failure> {
        match seq {
            None => Ok(None),
            Some(seq) => Ok(snap.get(seq)?.map(|r| r.timestamp())),
        }
    };
    let (first, last) = (snap.first_seq(), snap.last_seq());
    let (first_time, last_time) = (time_of(first)?, time_of(last)?);
    let writer = writer_pid(&args.dir);
    let warnings = log.warnings();

    let mut out = std::io::stdout().lock();
    let r = if args.json {
        let opt = |v: Option<u64>| v.map_or("null".to_string(), |v| v.to_string());
        let opt_time = |v: Option<u64>| v.map_or("null".to_string(), |v| format!("\"{}\"", format_time(v)));
        let segs: Vec<String> = infos
            .iter()
            .map(|s| {
                format!(
                    "{{\"file\":{},\"base_seq\":{},\"records\":{},\"frame_bytes\":{},\"file_bytes\":{},\"sealed\":{}}}",
                    json_string_of(&s.path.display().to_string()),
                    s.base_seq,
                    s.records,
                    s.frame_bytes,
                    s.file_bytes,
                    s.sealed
                )
            })
            .collect();
        let warns: Vec<String> = warnings.iter().map(|w| json_string_of(w)).collect();
        writeln!(
            out,
            "{{\"dir\":{},\"format_version\":{FORMAT_VERSION},\"segments\":{},\"sealed_segments\":{sealed},\"records\":{},\
             \"file_bytes\":{file_bytes},\"spare_files\":{},\"spare_bytes\":{spare_bytes},\"frame_bytes\":{frame_bytes},\"first_seq\":{},\"last_seq\":{},\"next_seq\":{},\
             \"first_timestamp\":{},\"last_timestamp\":{},\"first_time\":{},\"last_time\":{},\"durable_sealed_next\":{},\
             \"writer_pid\":{},\"segment_files\":[{}],\"warnings\":[{}]}}",
            json_string_of(&args.dir.display().to_string()),
            infos.len(),
            snap.len(),
            spares.len(),
            opt(first),
            opt(last),
            snap.next_seq(),
            opt(first_time),
            opt(last_time),
            opt_time(first_time),
            opt_time(last_time),
            durable_next.unwrap_or(0),
            opt(writer.map(u64::from)),
            segs.join(","),
            warns.join(",")
        )
    } else {
        (|| {
            writeln!(out, "log             {}", args.dir.display())?;
            writeln!(out, "format version  {FORMAT_VERSION}")?;
            // A live segment before the last one: its writer moved on and its
            // sealing is pending, or was cut short (a crash; reopening reseals).
            let unsealed = infos.len().saturating_sub(1 + sealed);
            let live = infos.len() - sealed - unsealed;
            if unsealed > 0 {
                writeln!(
                    out,
                    "segments        {} ({sealed} sealed, {unsealed} unsealed: sealing pending or cut short, {live} live)",
                    infos.len()
                )?;
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
                crate::util::count(spares.len() as u64, "spare file")
            )?;
            if let (Some(f), Some(t)) = (first, first_time) {
                writeln!(out, "first           seq {f} at {}", format_time(t))?;
            }
            if let (Some(l), Some(t)) = (last, last_time) {
                writeln!(out, "last            seq {l} at {}", format_time(t))?;
            }
            match durable_next {
                Some(n) if n > 0 => {
                    writeln!(out, "durable seq     {} (sealed segments; the live segment's durability is known to its writer)", n - 1)?
                }
                _ => writeln!(out, "durable seq     none sealed yet (the live segment's durability is known to its writer)")?,
            }
            match writer {
                Some(pid) => writeln!(out, "writer          process {pid} holds the lock")?,
                None => writeln!(out, "writer          none")?,
            }
            if args.segments {
                writeln!(out, "\n{:<28} {:>20} {:>12} {:>12} {:>12}  state", "file", "base seq", "records", "record B", "file B")?;
                for (i, s) in infos.iter().enumerate() {
                    let name = s.path.file_name().map_or_else(|| s.path.display().to_string(), |n| n.to_string_lossy().into_owned());
                    let state = match (s.sealed, i + 1 == infos.len()) {
                        (true, _) => "sealed",
                        (false, true) => "live",
                        (false, false) => "unsealed",
                    };
                    writeln!(out, "{name:<28} {:>20} {:>12} {:>12} {:>12}  {state}", s.base_seq, s.records, s.frame_bytes, s.file_bytes)?;
                }
            }
            for w in &warnings {
                writeln!(out, "warning         {w}")?;
            }
            Ok(())
        })()
    };
    handle_write(r)?;
    warnings_failure(&log)
}
