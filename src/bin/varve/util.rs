//! Shared pieces of the `varve` commands: exit codes and errors, opening a
//! log for inspection, choosing records, time and record formatting.

use std::borrow::Cow;
use std::fmt;
use std::io::{self, Write};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use varvelog::{Error, Iter, ReadOnlyLog, Record, Snapshot};

/// Exit status: success.
pub const EXIT_OK: u8 = 0;
/// Exit status: a problem was found in the log (damage, unsupported format
/// version, an I/O error, bad import data).
pub const EXIT_PROBLEM: u8 = 1;
/// Exit status: the command was used wrongly (bad arguments, DIR missing or
/// not a log). clap uses it for its own usage errors too.
pub const EXIT_USAGE: u8 = 2;

/// A command's failure: one line for stderr and an exit status.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure { code: EXIT_USAGE, message: message.into() }
    }

    pub fn problem(message: impl Into<String>) -> Failure {
        Failure { code: EXIT_PROBLEM, message: message.into() }
    }

    /// A failure with an exit status but nothing more to say (the command
    /// already reported).
    pub fn quiet(code: u8) -> Failure {
        Failure { code, message: String::new() }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        let code = match &e {
            Error::NotALog { .. } => EXIT_USAGE,
            Error::Io { source, .. } if source.kind() == io::ErrorKind::NotFound => EXIT_USAGE,
            _ => EXIT_PROBLEM,
        };
        Failure { code, message: one_line(&e.to_string()) }
    }
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Failure {
        Failure::problem(one_line(&e.to_string()))
    }
}

/// Result of a command.
pub type CmdResult = Result<(), Failure>;

/// Messages are printed on one line.
pub fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether `dir` names a log in an object store (`s3://bucket/prefix`).
pub fn is_remote(dir: &Path) -> bool {
    dir.to_str().is_some_and(|s| s.contains("://"))
}

/// Opens `dir` for inspection: read-only, no lock, nothing modified. A URL
/// (`s3://bucket/prefix`) opens the log tiered there, from the bucket alone.
pub fn open_log(dir: &Path) -> Result<ReadOnlyLog, Failure> {
    if is_remote(dir) {
        return open_remote(dir.to_str().unwrap_or_default());
    }
    if !dir.exists() {
        return Err(Failure::usage(format!("{}: no such directory", dir.display())));
    }
    if !dir.is_dir() {
        return Err(Failure::usage(format!("{}: not a directory", dir.display())));
    }
    ReadOnlyLog::open(dir).map_err(|e| match e {
        Error::NotALog { path, reason } => Failure::usage(format!("{}: not a varvelog log ({reason})", path.display())),
        other => other.into(),
    })
}

#[cfg(feature = "tiered")]
fn open_remote(url: &str) -> Result<ReadOnlyLog, Failure> {
    ReadOnlyLog::open_remote(url).map_err(|e| match e {
        Error::NotALog { path, reason } => Failure::usage(format!("{}: not a varvelog log ({reason})", path.display())),
        Error::InvalidOptions(why) => Failure::usage(why),
        other => other.into(),
    })
}

#[cfg(not(feature = "tiered"))]
fn open_remote(url: &str) -> Result<ReadOnlyLog, Failure> {
    Err(Failure::usage(format!("{url}: reading a log from an object store needs varve built with the `tiered` feature")))
}

/// Problems the read-only open noted (a damaged footer, records missing
/// between segments, ...) as the command's failure: exit 1, one line.
pub fn warnings_failure(log: &ReadOnlyLog) -> Result<(), Failure> {
    let warnings = log.warnings();
    match warnings.first() {
        None => Ok(()),
        Some(first) if warnings.len() == 1 => Err(Failure::problem(one_line(first))),
        Some(first) => Err(Failure::problem(format!("{} (and {} more problems)", one_line(first), warnings.len() - 1))),
    }
}

/// Writes to stdout, ending quietly with success when the reader went away
/// (`varve dump DIR | head`).
pub fn handle_write(r: io::Result<()>) -> Result<(), Failure> {
    match r {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Err(Failure::quiet(EXIT_OK)),
        Err(e) => Err(Failure::problem(format!("writing output: {e}"))),
    }
}

/// Microseconds since the Unix epoch, now.
pub fn now_us() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_micros() as u64)
}

/// A timestamp (µs since the epoch) as RFC 3339 with microseconds, UTC.
pub fn format_time(us: u64) -> String {
    humantime::format_rfc3339_micros(UNIX_EPOCH + Duration::from_micros(us)).to_string()
}

/// How long ago `t` was, in at most two units as `varve` takes durations
/// (`350ms`, `42s`, `3m 12s`, `5h 7m`, `2days 3h`); `in ...` for a time
/// ahead of this machine's clock.
pub fn format_age(t: SystemTime) -> String {
    match SystemTime::now().duration_since(t) {
        Ok(d) => format!("{} ago", two_units(d)),
        Err(e) => format!("in {}", two_units(e.duration())),
    }
}

/// `d` in its two largest units, rounded down.
fn two_units(d: Duration) -> String {
    let s = d.as_secs();
    let plural = |n: u64| if n == 1 { "day" } else { "days" };
    match s {
        0 => format!("{}ms", d.as_millis()),
        1..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86_400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}{} {}h", s / 86_400, plural(s / 86_400), s % 86_400 / 3600),
    }
}

/// Parses a point in time: RFC 3339 (`2024-05-01T12:00:00Z`, also with a
/// space and without the zone: UTC), microseconds since the epoch
/// (`1714564800000000`), or an age (`90s`, `15m`, `2h`, `1day` ago).
pub fn parse_time(s: &str) -> Result<u64, String> {
    let s = s.trim();
    if let Ok(us) = s.parse::<u64>() {
        return Ok(us);
    }
    if let Ok(t) = humantime::parse_rfc3339_weak(s) {
        return t.duration_since(UNIX_EPOCH).map(|d| d.as_micros() as u64).map_err(|_| format!("{s}: before 1970"));
    }
    let age = s.strip_suffix("ago").unwrap_or(s).trim();
    match humantime::parse_duration(age) {
        Ok(d) => Ok(now_us().saturating_sub(d.as_micros() as u64)),
        Err(_) => Err(format!("{s}: not a time; use RFC 3339 (2024-05-01T12:00:00Z), microseconds since the epoch, or an age such as 15m")),
    }
}

/// Where to start reading.
#[derive(Clone, Copy, Debug)]
pub enum Start {
    /// The first record still in the log.
    First,
    /// This seq.
    Seq(u64),
    /// The first record whose timestamp is at least this (µs).
    Time(u64),
    /// The last `n` records.
    Last(u64),
}

impl Start {
    pub fn new(from: Option<u64>, since: Option<u64>) -> Start {
        match (from, since) {
            (Some(seq), _) => Start::Seq(seq),
            (None, Some(t)) => Start::Time(t),
            (None, None) => Start::First,
        }
    }

    /// The records of `snap` from this start on.
    pub fn iter<'a>(&self, snap: &'a Snapshot) -> Iter<'a> {
        match *self {
            Start::First => snap.iter(),
            Start::Seq(seq) => snap.iter_from(seq),
            Start::Time(t) => snap.seek_time(t),
            Start::Last(n) => snap.iter_from(snap.next_seq().saturating_sub(n).max(snap.first_seq().unwrap_or(0))),
        }
    }

    /// The seq a follower should start at in `snap`.
    pub fn seq(&self, snap: &Snapshot) -> u64 {
        match *self {
            Start::First => snap.first_seq().unwrap_or(snap.next_seq()),
            Start::Seq(seq) => seq,
            Start::Time(_) => match self.iter(snap).next() {
                Some(Ok(r)) => r.seq(),
                _ => snap.next_seq(),
            },
            Start::Last(n) => snap.next_seq().saturating_sub(n).max(snap.first_seq().unwrap_or(0)),
        }
    }
}

/// Prints `records` in `format`; how many, or the first damage met (the
/// records before it printed and flushed).
pub fn print_records<'a>(
    out: &mut impl Write,
    records: impl Iterator<Item = varvelog::Result<Record<'a>>>,
    format: Format,
) -> Result<u64, Failure> {
    let mut n = 0;
    for record in records {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                handle_write(out.flush())?;
                return Err(Failure::from(e));
            }
        };
        handle_write(write_record(out, &record, format))?;
        n += 1;
    }
    handle_write(out.flush())?;
    Ok(n)
}

/// How records are printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One line per record: seq, time, key and payload (escaped text, or hex).
    Text,
    /// One JSON object per line, as `varve export --jsonl` writes.
    Json,
    /// A header line per record, then a hex dump of key and payload.
    Hex,
}

/// Writes one record in `format`.
pub fn write_record(out: &mut impl Write, r: &Record<'_>, format: Format) -> io::Result<()> {
    match format {
        Format::Text => write_text(out, r),
        Format::Json => write_json(out, r),
        Format::Hex => write_hex(out, r),
    }
}

fn write_text(out: &mut impl Write, r: &Record<'_>) -> io::Result<()> {
    write!(out, "{} {}", r.seq(), format_time(r.timestamp()))?;
    if let Some(k) = r.key() {
        write!(out, " key={}", text_or_hex(k))?;
    }
    if r.is_tombstone() {
        write!(out, " tombstone")?;
    }
    writeln!(out, " len={} {}", r.payload().len(), text_or_hex(r.payload()))
}

/// Valid UTF-8 as a quoted, escaped string; anything else as `0x` + hex.
pub fn text_or_hex(b: &[u8]) -> String {
    match std::str::from_utf8(b) {
        Ok(s) => format!("\"{}\"", s.escape_debug()),
        Err(_) => format!("0x{}", hex(b)),
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn write_hex(out: &mut impl Write, r: &Record<'_>) -> io::Result<()> {
    let key = r.key().unwrap_or(&[]);
    writeln!(
        out,
        "seq {} time {} key {} bytes payload {} bytes{}",
        r.seq(),
        format_time(r.timestamp()),
        key.len(),
        r.payload().len(),
        if r.is_tombstone() { " tombstone" } else { "" }
    )?;
    if !key.is_empty() {
        writeln!(out, "  key:")?;
        hex_dump(out, key)?;
    }
    if !r.payload().is_empty() {
        writeln!(out, "  payload:")?;
        hex_dump(out, r.payload())?;
    }
    Ok(())
}

/// `hexdump -C` style: offset, 16 bytes in hex, the printable ones.
fn hex_dump(out: &mut impl Write, b: &[u8]) -> io::Result<()> {
    for (i, chunk) in b.chunks(16).enumerate() {
        let mut hexes = String::with_capacity(50);
        for (j, x) in chunk.iter().enumerate() {
            hexes.push_str(&format!("{x:02x} "));
            if j == 7 {
                hexes.push(' ');
            }
        }
        let text: String = chunk.iter().map(|&c| if c.is_ascii_graphic() || c == b' ' { c as char } else { '.' }).collect();
        writeln!(out, "  {:08x}  {hexes:<49} |{text}|", i * 16)?;
    }
    Ok(())
}

/// Bytes as the text of a JSON string and its encoding name: the bytes
/// themselves when they are valid UTF-8, base64 otherwise.
pub fn json_bytes(b: &[u8]) -> (Cow<'_, str>, &'static str) {
    match std::str::from_utf8(b) {
        Ok(s) => (Cow::Borrowed(s), "utf8"),
        Err(_) => (Cow::Owned(base64::engine::general_purpose::STANDARD.encode(b)), "base64"),
    }
}

/// Decodes bytes written by [`json_bytes`].
pub fn decode_bytes(value: &str, encoding: &str) -> Result<Vec<u8>, String> {
    match encoding {
        "utf8" => Ok(value.as_bytes().to_vec()),
        "base64" => base64::engine::general_purpose::STANDARD.decode(value).map_err(|e| format!("bad base64: {e}")),
        other => Err(format!("unknown encoding {other:?} (expected \"utf8\" or \"base64\")")),
    }
}

/// One record as `export --jsonl` and `dump --format json` write it, one
/// object per line, fields in this order. `key` is `null` and
/// `key_encoding` absent when the record has no key (an empty key is no
/// key: the engine stores both alike).
#[derive(Debug, serde_derive::Serialize)]
pub struct JsonRecord<'a> {
    pub seq: u64,
    /// Microseconds since the Unix epoch.
    pub timestamp: u64,
    /// `timestamp` as RFC 3339, UTC.
    pub time: String,
    pub key: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_encoding: Option<&'static str>,
    pub payload: Cow<'a, str>,
    pub payload_encoding: &'static str,
    pub tombstone: bool,
}

impl<'a> JsonRecord<'a> {
    pub fn of(r: &'a Record<'_>) -> JsonRecord<'a> {
        let key = r.key().filter(|k| !k.is_empty()).map(json_bytes);
        let (payload, payload_encoding) = json_bytes(r.payload());
        JsonRecord {
            seq: r.seq(),
            timestamp: r.timestamp(),
            time: format_time(r.timestamp()),
            key_encoding: key.as_ref().map(|k| k.1),
            key: key.map(|k| k.0),
            payload,
            payload_encoding,
            tombstone: r.is_tombstone(),
        }
    }
}

/// Writes one record as one line of JSON ([`JsonRecord`]).
pub fn write_json(out: &mut impl Write, r: &Record<'_>) -> io::Result<()> {
    serde_json::to_writer(&mut *out, &JsonRecord::of(r))?;
    writeln!(out)
}

/// Parses a size flag (`64MiB`, `1g`, `4096`): every `--*-bytes` option of
/// `varve` takes this form. Suffixes are binary (`K`/`KiB` = 1024, `M`, `G`, ...).
pub fn parse_bytes(s: &str) -> Result<u64, String> {
    parse_size::Config::new().with_binary().parse_size(s.trim()).map_err(|e| format!("not a size: {s:?} ({e})"))
}

/// [`parse_bytes`] for a size held in memory (`usize`).
pub fn parse_bytes_usize(s: &str) -> Result<usize, String> {
    parse_bytes(s).and_then(|n| usize::try_from(n).map_err(|_| format!("size too large: {s:?}")))
}

/// `n` and `word`, plural unless `n` is 1: `1 segment`, `3 segments`.
pub fn count(n: impl Into<u64>, word: &str) -> String {
    let n = n.into();
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// Human-readable bytes: `1.5 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The pid of the process holding the log's `LOCK` (its writer), read from
/// `/proc/locks` without touching the lock. `None` if nobody holds it or it
/// cannot be told (not Linux).
///
/// Why `/proc/locks` and not `fcntl(F_GETLK)` / `F_OFD_GETLK` (rustix
/// offers neither as a query, and both would do): the engine locks with
/// `flock(2)`, and on Linux flock locks and fcntl record locks are separate
/// kinds that never see each other, so `F_GETLK` reports "unlocked" while a
/// writer holds the flock. `/proc/locks` is the one place that lists flock
/// holders with their pid.
pub fn writer_pid(dir: &Path) -> Option<u32> {
    flock_pid(&dir.join(varvelog::LOCK_FILE_NAME))
}

/// The pid of the process holding a `flock` on the file at `path` (a log's
/// `LOCK`, a named consumer's position file), read from `/proc/locks`; see
/// [`writer_pid`].
pub fn flock_pid(path: &Path) -> Option<u32> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    let dev = meta.dev();
    // glibc's major()/minor() of a dev_t.
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    flock_holder(&locks, (major, minor, meta.ino()))
}

/// The pid holding a `flock` on the file `(major, minor, inode)`, from the
/// text of `/proc/locks`.
fn flock_holder(locks: &str, file: (u64, u64, u64)) -> Option<u32> {
    for line in locks.lines() {
        // "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF" (major:minor in
        // hex); lines of a waiter start "1: -> FLOCK ...".
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(pos) = fields.iter().position(|f| *f == "FLOCK") else { continue };
        if pos.checked_sub(1).and_then(|i| fields.get(i)) == Some(&"->") {
            continue;
        }
        let (Some(pid), Some(dev_ino)) = (fields.get(pos + 3), fields.get(pos + 4)) else { continue };
        let mut parts = dev_ino.split(':');
        let parsed = (|| {
            let maj = u64::from_str_radix(parts.next()?, 16).ok()?;
            let min = u64::from_str_radix(parts.next()?, 16).ok()?;
            Some((maj, min, parts.next()?.parse::<u64>().ok()?))
        })();
        if parsed == Some(file) {
            return pid.parse().ok();
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_from_rfc3339_micros_and_ages() {
        // Goal: every documented --since form parses to the right µs, and
        // garbage is a message, not a panic.
        assert_eq!(parse_time("2023-11-14T22:13:20Z"), Ok(1_700_000_000_000_000));
        assert_eq!(parse_time("2023-11-14 22:13:20.5"), Ok(1_700_000_000_500_000));
        assert_eq!(parse_time("1700000000000000"), Ok(1_700_000_000_000_000));
        let fifteen_min_ago = parse_time("15m").unwrap();
        let expected = now_us() - 15 * 60 * 1_000_000;
        assert!(fifteen_min_ago.abs_diff(expected) < 5_000_000, "{fifteen_min_ago} vs {expected}");
        assert!(parse_time("2h ago").unwrap() < fifteen_min_ago);
        assert!(parse_time("yesterday-ish").unwrap_err().contains("not a time"));
        assert_eq!(format_time(1_700_000_000_000_001), "2023-11-14T22:13:20.000001Z");
    }

    #[test]
    fn ages_use_two_units_that_parse_back_as_durations() {
        // Goal: `consumers` prints ages in the duration forms `varve`
        // reads, rounded down to two units. Method: one age per unit
        // boundary, and each printed form parsed back.
        let cases = [
            (Duration::from_micros(350_900), "350ms"),
            (Duration::from_secs(42), "42s"),
            (Duration::from_secs(3 * 60 + 12), "3m 12s"),
            (Duration::from_secs(5 * 3600 + 7 * 60 + 59), "5h 7m"),
            (Duration::from_secs(86_400 + 3600), "1day 1h"),
            (Duration::from_secs(2 * 86_400 + 3 * 3600 + 1), "2days 3h"),
        ];
        for (d, text) in cases {
            assert_eq!(two_units(d), text);
            assert!(humantime::parse_duration(text).unwrap() <= d, "{text}");
        }
        assert!(format_age(SystemTime::now() - Duration::from_secs(90)).starts_with("1m 3"));
        assert!(format_age(SystemTime::now() + Duration::from_secs(600)).starts_with("in 9m"));
    }

    #[test]
    fn bytes_are_text_when_utf8_and_round_trip_through_json_encodings() {
        // Goal: export's encoding choice is lossless both ways.
        for b in [&b"plain"[..], "é\u{0}\"\\\n".as_bytes(), &[0xff, 0x00, 0x80], &[]] {
            let (text, enc) = json_bytes(b);
            let json = serde_json::to_string(&text).unwrap();
            let s: String = serde_json::from_str(&json).unwrap();
            assert_eq!(decode_bytes(&s, enc).unwrap(), b);
            assert_eq!(enc == "utf8", std::str::from_utf8(b).is_ok());
        }
        assert!(decode_bytes("x", "rot13").unwrap_err().contains("unknown encoding"));
        assert_eq!(text_or_hex(b"a\tb"), "\"a\\tb\"");
        assert_eq!(text_or_hex(&[0xff, 0xad]), "0xffad");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(one_line("a\n  b\tc"), "a b c");
    }

    #[test]
    fn flock_holders_are_found_in_proc_locks_by_device_and_inode() {
        // Goal: the /proc/locks parser picks the holder of exactly our file
        // (device in hex, inode in decimal), skips waiters and POSIX locks,
        // and survives odd lines. Method: a sample in the kernel's format.
        let locks = "\
1: POSIX  ADVISORY  WRITE 77 fe:00:5333071 0 EOF
2: FLOCK  ADVISORY  WRITE 11707 fe:00:5333071 0 EOF
2: -> FLOCK  ADVISORY  WRITE 999 fe:01:42 0 EOF
3: FLOCK  ADVISORY  WRITE 11682 fe:01:42 0 EOF
garbage
4: FLOCK  ADVISORY  WRITE
";
        assert_eq!(flock_holder(locks, (0xfe, 0, 5333071)), Some(11707));
        assert_eq!(flock_holder(locks, (0xfe, 1, 42)), Some(11682));
        assert_eq!(flock_holder(locks, (0xfe, 0, 42)), None);
        assert_eq!(flock_holder("", (0xfe, 0, 5333071)), None);
    }

    #[test]
    fn json_records_keep_the_documented_fields_and_order() {
        // Goal: the export format stays as docs/cli.md describes it: field
        // order, `key_encoding` only beside a key, base64 for binary.
        let r = JsonRecord {
            seq: 7,
            timestamp: 1_700_000_000_000_001,
            time: format_time(1_700_000_000_000_001),
            key: Some("k".into()),
            key_encoding: Some("utf8"),
            payload: json_bytes(&[0xff]).0,
            payload_encoding: "base64",
            tombstone: false,
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"seq":7,"timestamp":1700000000000001,"time":"2023-11-14T22:13:20.000001Z","key":"k","key_encoding":"utf8","payload":"/w==","payload_encoding":"base64","tombstone":false}"#
        );
        let r = JsonRecord { key: None, key_encoding: None, ..r };
        assert!(serde_json::to_string(&r).unwrap().contains(r#""key":null,"payload""#));
    }
}
