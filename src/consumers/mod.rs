//! Named consumers: tails that remember, across restarts and crashes, how
//! far they have read.
//!
//! A [`Consumer`] is a [`Tail`] plus a position file of its own in the log
//! directory (`consumers/<name>.pos`, see `position.rs` and
//! `docs/format.md`). Committing writes the tail's position there; opening
//! the consumer again resumes from it. The file is written by the
//! consumer's process alone (it is locked while the consumer is open), so a
//! consumer of a [`ReadOnlyLog`] needs nothing from the writer.

mod position;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error::{Error, Result};
use crate::lifecycle::now_us;
use crate::log::Log;
use crate::read_only::ReadOnlyLog;
use crate::record::{OwnedRecord, Record};
use crate::tail::{Batch, Source, Tail, WaitStrategy};

use position::PositionFile;
pub use position::MAX_NAME_BYTES;

/// How a [`Consumer`] starts and commits.
///
/// ```
/// use std::time::Duration;
/// use varvelog::ConsumerOptions;
/// let opts = ConsumerOptions::new().commit_every_records(1000).commit_every(Duration::from_millis(100));
/// # let _ = opts;
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ConsumerOptions {
    every_records: Option<u64>,
    every: Option<Duration>,
    sync: bool,
    from_end: bool,
    skip_removed: bool,
}

impl ConsumerOptions {
    /// Explicit commits only, not synced to disk, new consumers start at
    /// the first record.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Commits automatically once `n` records were read since the last
    /// commit. The commit happens when the consumer is asked for the next
    /// record, so it covers only records handed out by earlier calls: a
    /// crash re-delivers at most the records not yet committed, never skips
    /// one, *provided each record is processed before the next is asked
    /// for*. Code that takes records ahead of processing them (collecting a
    /// batch from the iterator, stream adapters such as `chunks` or
    /// `buffer_unordered`) must commit by hand after processing instead.
    #[must_use]
    pub fn commit_every_records(mut self, n: u64) -> Self {
        self.every_records = Some(n.max(1));
        self
    }

    /// Commits automatically, as [`ConsumerOptions::commit_every_records`]
    /// does (with the same proviso), once `interval` passed since the last
    /// commit and something was read since, also while the consumer waits
    /// for the writer.
    #[must_use]
    pub fn commit_every(mut self, interval: Duration) -> Self {
        self.every = Some(interval);
        self
    }

    /// Whether every commit also flushes the position file to disk
    /// (`fdatasync`, about as long as a small write's sync, ~0.1 ms on the
    /// test machine). Off (the default), a commit survives a crash of any
    /// process at once and a crash of the machine once the kernel writes it
    /// back or [`Consumer::sync`] runs.
    #[must_use]
    pub fn sync_commits(mut self, on: bool) -> Self {
        self.sync = on;
        self
    }

    /// Where a consumer with no committed position starts: at the first
    /// record in the log (`false`, the default) or after the last one
    /// published when it opens (`true`).
    #[must_use]
    pub fn start_from_end(mut self, on: bool) -> Self {
        self.from_end = on;
        self
    }

    /// What to do when retention removed the records at a consumer's
    /// committed position: fail with [`Error::Truncated`] (`false`, the
    /// default), or resume at the first record still in the log (`true`;
    /// the records between are lost to this consumer, and a warning is
    /// logged through `tracing`).
    #[must_use]
    pub fn skip_removed(mut self, on: bool) -> Self {
        self.skip_removed = on;
        self
    }
}

/// A named consumer's committed position, as [`Log::consumers`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumerInfo {
    /// The consumer's name.
    pub name: String,
    /// The seq it reads next when it resumes (`None`: its file holds no
    /// position yet, as when its first open was interrupted).
    pub position: Option<u64>,
    /// When it last committed.
    pub committed_at: Option<SystemTime>,
    /// Records published at or past its position (all of them without one).
    pub lag: u64,
    /// Its position file.
    pub path: PathBuf,
}

/// A [`Tail`] with a name and a durable position: opened again (in this
/// process or another, after a clean exit or a crash), it resumes after the
/// last position it committed.
///
/// Records are read as from a tail: borrowed ([`Consumer::try_next`],
/// [`Consumer::next_timeout`], [`Consumer::wait`]) or owned through
/// [`Iterator`]. [`Consumer::commit`] stores the position: every record
/// handed out so far counts as processed. Commits are never automatic
/// unless [`ConsumerOptions`] say so, and never cover a record not yet
/// handed out, so after a crash the consumer gets again at most what it
/// had not committed (at-least-once delivery), and never misses a record.
///
/// Only one consumer of a name is open at a time, across processes
/// ([`Error::ConsumerBusy`] otherwise). The lock is an `flock` on the
/// position file, so a process forked while a consumer is open (and that
/// does not exec) shares it until it exits. A consumer of a
/// [`ReadOnlyLog`] writes its position file and nothing else.
///
/// ```
/// # fn main() -> varvelog::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// use std::time::Duration;
/// use varvelog::{Log, Options};
///
/// let log = Log::open(dir.path(), Options::new())?;
/// let mut writer = log.writer()?;
/// writer.append_batch([&b"a"[..], b"b", b"c"])?;
///
/// let mut billing = log.consumer("billing")?;
/// let first = billing.next_timeout(Duration::from_secs(1))?.expect("published");
/// assert_eq!(first.payload(), b"a");
/// billing.commit()?; // "a" is done
/// drop(billing);
///
/// // Later, or in another process: resumes after "a".
/// let mut billing = log.consumer("billing")?;
/// assert_eq!(billing.position(), 1);
/// assert_eq!(billing.next_timeout(Duration::from_secs(1))?.expect("published").payload(), b"b");
/// assert_eq!(log.consumers()?[0].lag, 2);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Consumer {
    name: String,
    tail: Tail,
    file: PositionFile,
    opts: ConsumerOptions,
    /// The position last committed (where a reopened consumer resumes).
    committed: u64,
    last_commit: Instant,
    /// The position at the last commit or seek: automatic commits count
    /// the records read since.
    since: u64,
}

impl Consumer {
    fn open(src: Source, name: &str, opts: ConsumerOptions) -> Result<Consumer> {
        let mut file = PositionFile::open(src.dir(), name)?;
        // A read-only view first catches up with the directory, so this is
        // the log's end, not where the view stood.
        let next_seq = src.next_seq()?;
        let position = match file.committed() {
            // A position past the end: the log lost records the consumer
            // had read (a machine crash before they were durable); the
            // seqs are given out again, so read them when they come.
            Some(slot) if slot.position > next_seq => {
                tracing::warn!(
                    consumer = name,
                    committed = slot.position,
                    next_seq,
                    "consumer position past the end of the log; resuming at the end"
                );
                next_seq
            }
            Some(slot) => slot.position,
            None if opts.from_end => next_seq,
            None => 0,
        };
        let tail = match Tail::new(src.clone(), position) {
            // Never committed and the log's start was removed: begin at
            // what is there now.
            Err(Error::Truncated { first_available, .. }) if file.committed().is_none() => Tail::new(src, first_available)?,
            Err(Error::Truncated { requested, first_available }) if opts.skip_removed => {
                tracing::warn!(
                    consumer = name,
                    committed = requested,
                    first_available,
                    "records at the consumer's position were removed; skipping to the first one left"
                );
                Tail::new(src, first_available)?
            }
            other => other?,
        };
        let start = tail.position();
        if file.committed().map(|s| s.position) != Some(start) {
            // Store where this consumer starts before it hands anything out:
            // a new consumer's start (so one starting at the end does not
            // skip what is published before its first commit), or a position
            // lowered to the end or moved past removed records (so a reopen
            // does not go back to the old one). Synced: it replaces a
            // position that was.
            file.store(start, now_us(), true)?;
        }
        Ok(Consumer { name: name.to_string(), tail, file, opts, committed: start, last_commit: Instant::now(), since: start })
    }

    /// The consumer's name.
    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sets how the consumer waits for the writer (see [`Tail::wait_strategy`]).
    #[must_use]
    pub fn wait_strategy(mut self, wait: WaitStrategy) -> Self {
        self.tail = self.tail.wait_strategy(wait);
        self
    }

    /// The seq of the next record this consumer hands out.
    #[must_use]
    pub fn position(&self) -> u64 {
        self.tail.position()
    }

    /// The position last committed: where the consumer would resume now.
    #[must_use]
    pub fn committed(&self) -> u64 {
        self.committed
    }

    /// Records published but not yet handed out.
    #[must_use]
    pub fn lag(&self) -> u64 {
        self.tail.lag()
    }

    /// Stores the position: every record handed out so far is done. Once it
    /// returns, a crash of any process resumes from here; with
    /// [`ConsumerOptions::sync_commits`] a crash of the machine does too.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the position file cannot be written, or (syncing)
    /// flushed; [`Consumer::committed`] is then unchanged, though after a
    /// failed flush the file may already hold the new position.
    pub fn commit(&mut self) -> Result<()> {
        self.store(self.opts.sync)
    }

    /// [`Consumer::commit`], then flushes the position file to disk, so the
    /// commit survives a crash of the machine too.
    ///
    /// # Errors
    ///
    /// As [`Consumer::commit`].
    pub fn commit_sync(&mut self) -> Result<()> {
        self.store(true)
    }

    /// Flushes the last commit to disk.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the flush fails.
    pub fn sync(&self) -> Result<()> {
        self.file.sync()
    }

    fn store(&mut self, sync: bool) -> Result<()> {
        let position = self.tail.position();
        if position == self.committed && self.file.committed().is_some_and(|s| s.position == position) {
            return if sync { self.file.sync() } else { Ok(()) };
        }
        self.file.store(position, now_us(), sync)?;
        self.committed = position;
        self.since = position;
        self.last_commit = Instant::now();
        Ok(())
    }

    /// How long until [`ConsumerOptions::commit_every`] asks for a commit,
    /// if it is set and records were read since the last commit.
    pub(crate) fn commit_due_in(&self) -> Option<Duration> {
        let every = self.opts.every?;
        (self.tail.position() != self.committed).then(|| every.saturating_sub(self.last_commit.elapsed()))
    }

    /// Waits up to `timeout` for the next record, making the commits
    /// [`ConsumerOptions::commit_every`] asks for while it waits.
    fn wait_ready(&mut self, timeout: Duration) -> Result<bool> {
        let deadline = Instant::now().checked_add(timeout);
        loop {
            self.auto_commit()?;
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            let slice = match (self.commit_due_in(), left) {
                (Some(due), Some(left)) => due.min(left),
                (due, left) => due.or(left).unwrap_or(Duration::MAX),
            };
            if self.tail.wait_ready(slice)? {
                return Ok(true);
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Ok(false);
            }
        }
    }

    /// Commits if the options ask for it now.
    /// On every read: one or two compares when no automatic commit is due.
    #[inline]
    fn auto_commit(&mut self) -> Result<()> {
        let read = self.tail.position().saturating_sub(self.since);
        let by_count = self.opts.every_records.is_some_and(|n| read >= n);
        if by_count || (self.opts.every.is_some() && self.tail.position() != self.committed) {
            self.auto_commit_slow(by_count)
        } else {
            Ok(())
        }
    }

    #[cold]
    #[inline(never)]
    fn auto_commit_slow(&mut self, by_count: bool) -> Result<()> {
        let by_time = self.opts.every.is_some_and(|d| self.last_commit.elapsed() >= d);
        if by_count || by_time {
            self.commit()?;
        }
        Ok(())
    }

    /// Moves the consumer to `seq` (not committed until the next commit).
    ///
    /// # Errors
    ///
    /// [`Error::Truncated`] if retention removed `seq`.
    pub fn seek(&mut self, seq: u64) -> Result<()> {
        self.tail.seek(seq)?;
        self.since = seq;
        Ok(())
    }

    /// The next record if it is published; see [`Tail::try_next`].
    ///
    /// # Errors
    ///
    /// As [`Tail::try_next`], and [`Error::Io`] from an automatic commit.
    pub fn try_next(&mut self) -> Result<Option<Record<'_>>> {
        self.auto_commit()?;
        self.tail.try_next()
    }

    /// The next record, waiting up to `timeout`; see [`Tail::next_timeout`].
    ///
    /// # Errors
    ///
    /// As [`Consumer::try_next`].
    pub fn next_timeout(&mut self, timeout: Duration) -> Result<Option<Record<'_>>> {
        if !self.wait_ready(timeout)? {
            return Ok(None);
        }
        self.tail.try_next()
    }

    /// Every record published now; see [`Tail::poll`].
    ///
    /// # Errors
    ///
    /// As [`Consumer::try_next`].
    pub fn poll(&mut self) -> Result<Batch<'_>> {
        self.auto_commit()?;
        self.tail.poll()
    }

    /// Waits up to `timeout` for a record, then every record published; see
    /// [`Tail::wait`].
    ///
    /// # Errors
    ///
    /// As [`Consumer::try_next`].
    pub fn wait(&mut self, timeout: Duration) -> Result<Batch<'_>> {
        self.wait_ready(timeout)?;
        self.tail.poll()
    }

    /// The position file (for tools and tests).
    #[must_use]
    pub fn position_file(&self) -> &Path {
        self.file.path()
    }

    #[cfg(feature = "async")]
    pub(crate) fn tail_mut(&mut self) -> &mut Tail {
        &mut self.tail
    }

    #[cfg(feature = "async")]
    pub(crate) fn auto_commit_now(&mut self) -> Result<()> {
        self.auto_commit()
    }
}

/// A consumer is an iterator of owned records that waits for the writer,
/// as a [`Tail`] is (it ends only after an `Err` item); automatic commits
/// happen as it is advanced and while it waits.
impl Iterator for Consumer {
    type Item = Result<OwnedRecord>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.tail.ended {
            return None;
        }
        if let Err(e) = self.wait_ready(Duration::MAX) {
            self.tail.ended = true;
            return Some(Err(e));
        }
        self.tail.next()
    }
}

/// The committed positions of the log in `dir`, by name.
fn list(dir: &Path, next_seq: u64) -> Result<Vec<ConsumerInfo>> {
    let mut out = Vec::new();
    for path in position_files(dir)? {
        let name = path.file_name().and_then(|n| n.to_str()).and_then(|n| n.strip_suffix(position::SUFFIX)).unwrap_or_default();
        let slot = match position::read(&path) {
            Ok(slot) => slot,
            // Removed since it was listed.
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        out.push(ConsumerInfo {
            name: name.to_string(),
            position: slot.map(|s| s.position),
            committed_at: slot.map(|s| UNIX_EPOCH + Duration::from_micros(s.committed_at_us)),
            lag: next_seq.saturating_sub(slot.map_or(0, |s| s.position)),
            path,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The least position any named consumer of the log in `dir` resumes from;
/// `None` without consumers. A file without a position (being created, or
/// damaged: logged) counts as 0, so retention keeps all it may for it.
pub(crate) fn least_position(dir: &Path) -> Result<Option<u64>> {
    let mut least = None;
    for path in position_files(dir)? {
        let position = match position::read(&path) {
            Ok(slot) => slot.map_or(0, |s| s.position),
            Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                tracing::warn!(error = %e, "retention keeps records for a consumer whose position cannot be read");
                0
            }
        };
        least = Some(least.map_or(position, |l: u64| l.min(position)));
    }
    Ok(least)
}

/// The position files in the consumers directory of the log in `dir`.
fn position_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let sub = dir.join(position::DIR_NAME);
    let entries = match std::fs::read_dir(&sub) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("list consumers", &sub, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("list consumers", &sub, e))?;
        let name = entry.file_name();
        let valid = name.to_str().and_then(|n| n.strip_suffix(position::SUFFIX)).is_some_and(|n| position::check_name(n).is_ok());
        if valid {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

/// Removes consumer `name`'s position file.
fn remove(dir: &Path, name: &str) -> Result<bool> {
    // Taking the file's lock proves no consumer of that name is open.
    let path = position::path(dir, name);
    if !path.exists() {
        position::check_name(name)?;
        return Ok(false);
    }
    // Locked, not read: a damaged file can be removed too.
    let (_locked, path) = position::lock(dir, name)?;
    std::fs::remove_file(&path).map_err(|e| Error::io("remove consumer position", &path, e))?;
    let sub = dir.join(position::DIR_NAME);
    std::fs::File::open(&sub).and_then(|d| d.sync_all()).map_err(|e| Error::io("sync directory", &sub, e))?;
    Ok(true)
}

impl Log {
    /// The named consumer `name`, resuming after its last committed position
    /// (new consumers start at the first record). Names are 1 to 64 ASCII
    /// letters, digits, `-`, `_` or `.`, not starting with `.`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConsumerName`]; [`Error::ConsumerBusy`] if a consumer
    /// of that name is open; [`Error::Truncated`] if retention removed its
    /// position; [`Error::Io`] if the position file cannot be created or read.
    pub fn consumer(&self, name: &str) -> Result<Consumer> {
        self.consumer_with(name, ConsumerOptions::new())
    }

    /// [`Log::consumer`] with options.
    ///
    /// # Errors
    ///
    /// As [`Log::consumer`].
    pub fn consumer_with(&self, name: &str, opts: ConsumerOptions) -> Result<Consumer> {
        Consumer::open(Source::Local(self.clone()), name, opts)
    }

    /// Every named consumer's committed position and lag, by name.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] if the position files cannot be listed or read.
    pub fn consumers(&self) -> Result<Vec<ConsumerInfo>> {
        list(self.dir(), self.next_seq())
    }

    /// Forgets consumer `name` (its position file goes); `false` if there
    /// was none. Retention then no longer keeps records for it.
    ///
    /// # Errors
    ///
    /// [`Error::ConsumerBusy`] if it is open; [`Error::InvalidConsumerName`]; [`Error::Io`].
    pub fn remove_consumer(&self, name: &str) -> Result<bool> {
        remove(self.dir(), name)
    }
}

impl ReadOnlyLog {
    /// The named consumer `name` of this log, which another process may be
    /// writing; as [`Log::consumer`]. Its position file is the only thing
    /// it writes.
    ///
    /// # Errors
    ///
    /// As [`Log::consumer`].
    pub fn consumer(&self, name: &str) -> Result<Consumer> {
        self.consumer_with(name, ConsumerOptions::new())
    }

    /// [`ReadOnlyLog::consumer`] with options.
    ///
    /// # Errors
    ///
    /// As [`Log::consumer`].
    pub fn consumer_with(&self, name: &str, opts: ConsumerOptions) -> Result<Consumer> {
        self.local_dir()?;
        Consumer::open(Source::ReadOnly(self.clone()), name, opts)
    }

    /// Every named consumer's committed position and lag; as [`Log::consumers`].
    ///
    /// # Errors
    ///
    /// As [`Log::consumers`].
    pub fn consumers(&self) -> Result<Vec<ConsumerInfo>> {
        list(self.local_dir()?, self.snapshot().next_seq())
    }

    /// Forgets consumer `name`; as [`Log::remove_consumer`]. Its position
    /// file is the only thing removed.
    ///
    /// # Errors
    ///
    /// As [`Log::remove_consumer`].
    pub fn remove_consumer(&self, name: &str) -> Result<bool> {
        remove(self.local_dir()?, name)
    }
}
