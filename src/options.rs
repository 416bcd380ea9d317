//! Options for opening a log.

use std::sync::Arc;
use std::time::Duration;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::format::{FRAME_HEADER_BYTES, HEADER_BYTES, SEGMENT_BYTES_MAX, SEGMENT_BYTES_MIN};
use crate::fs::{FileSystem, StdFs};

/// Who makes appended records durable, and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncPolicy {
    /// Only explicit [`crate::Writer::sync`] calls (and the OS's own writeback).
    Never,
    /// Every append and every batch is synced before it returns.
    Always,
    /// A background flusher syncs once `bytes` have been appended since the
    /// last sync or `interval` has passed with unsynced data, whichever comes
    /// first; appends never wait for it.
    Background {
        /// Unsynced bytes that trigger a sync (`None`: no byte trigger).
        bytes: Option<u64>,
        /// Longest time unsynced data waits.
        interval: Duration,
    },
}

/// What opening does with damage it finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum RecoveryMode {
    /// Cut a torn tail (what a crash leaves) back to the longest valid prefix,
    /// zero the rest and report what was discarded. Sealed segments are
    /// trusted through their footer checksums (open cost does not grow with
    /// the bytes in the log).
    #[default]
    TolerateTornTail,
    /// Refuse to open if anything is damaged, including a torn tail; also
    /// verify every frame checksum and the digest chain of sealed segments.
    Strict,
    /// Like [`RecoveryMode::TolerateTornTail`], and where that refuses to
    /// open because a segment before the last is damaged (a blank or
    /// garbage header, a cut or corrupt frame), move that file aside into
    /// `<dir>/damaged/` (never unlink it) and open the intact segments
    /// around it. The seqs lost are listed in
    /// [`crate::RecoveryReport::gaps`]; reading them is [`crate::Error::Missing`].
    Salvage,
}

/// How to open a log. Build with [`Options::new`] and the setters.
#[derive(Clone, Debug)]
pub struct Options {
    pub(crate) segment_bytes: u64,
    pub(crate) sync_policy: SyncPolicy,
    pub(crate) recovery_mode: RecoveryMode,
    pub(crate) max_payload_bytes: Option<usize>,
    pub(crate) max_key_bytes: Option<usize>,
    pub(crate) prefault: bool,
    pub(crate) cached_sealed_segments: usize,
    pub(crate) zero_fill: Option<bool>,
    pub(crate) spare_segments: Option<usize>,
    pub(crate) clock: Clock,
    pub(crate) fs: Arc<dyn FileSystem>,
    pub(crate) proofs: bool,
    #[cfg(feature = "tiered")]
    pub(crate) tier: Option<crate::tiering::TierOptions>,
}

/// Default segment size: 64 MiB.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;
/// Default payload limit: 16 MiB (less if the segment is smaller).
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 16 << 20;
/// Default number of sealed segments left in the page cache: 8.
pub const DEFAULT_CACHED_SEALED_SEGMENTS: usize = 8;
/// Spare segments kept ready by default: two, so a rotation never waits for
/// a file to be created and allocated (with [`Options::zero_fill`], one:
/// syncing writers fill segments far more slowly than they are made, and
/// zero-filling a second spare right after open competed with the writer's
/// first syncs for the disk).
pub const DEFAULT_SPARE_SEGMENTS: usize = 2;
/// Most spare segments [`Options::spare_segments`] accepts.
pub const SPARE_SEGMENTS_MAX: usize = 8;

/// Default key limit: 64 KiB − 1 (the frame stores key lengths as u16).
pub const DEFAULT_MAX_KEY_BYTES: usize = u16::MAX as usize;

impl Default for Options {
    fn default() -> Self {
        Options {
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            sync_policy: SyncPolicy::Never,
            recovery_mode: RecoveryMode::default(),
            max_payload_bytes: None,
            max_key_bytes: None,
            prefault: true,
            cached_sealed_segments: DEFAULT_CACHED_SEALED_SEGMENTS,
            zero_fill: None,
            spare_segments: None,
            clock: Clock::default(),
            fs: Arc::new(StdFs),
            proofs: false,
            #[cfg(feature = "tiered")]
            tier: None,
        }
    }
}

impl Options {
    /// The defaults: 64 MiB segments, [`SyncPolicy::Never`], tolerant recovery.
    #[must_use]
    pub fn new() -> Options {
        Options::default()
    }

    /// Tiers the log to an object store: sealed segments are uploaded in
    /// the background, may leave the local disk once confirmed, and are
    /// fetched back when read (see [`crate::TierOptions`]).
    #[cfg(feature = "tiered")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tiered")))]
    #[must_use]
    pub fn tier(mut self, tier: crate::tiering::TierOptions) -> Self {
        self.tier = Some(tier);
        self
    }

    /// Keep the Merkle tree's nodes in each sealed segment's footer, so that
    /// [`crate::Snapshot::root`] and proofs read no record before the
    /// active segment (default off). The sealer hashes every record once
    /// more, off the writer's thread: about 0.4 µs of CPU a record of 100
    /// bytes, so one sealer keeps up with about 2 M such records a second
    /// (docs/benchmarks.md).
    /// Without it, roots and proofs hash the records they need, which is
    /// the whole log for a root.
    #[must_use]
    pub fn proofs(mut self, on: bool) -> Self {
        self.proofs = on;
        self
    }

    /// Size of each segment file while active (64 KiB ..= 2 GiB, a multiple of 4 KiB).
    #[must_use]
    pub fn segment_bytes(mut self, bytes: u64) -> Self {
        self.segment_bytes = bytes;
        self
    }

    /// Who syncs and when.
    #[must_use]
    pub fn sync_policy(mut self, policy: SyncPolicy) -> Self {
        self.sync_policy = policy;
        self
    }

    /// What opening does with damage.
    #[must_use]
    pub fn recovery_mode(mut self, mode: RecoveryMode) -> Self {
        self.recovery_mode = mode;
        self
    }

    /// Largest payload accepted by an append.
    #[must_use]
    pub fn max_payload_bytes(mut self, bytes: usize) -> Self {
        self.max_payload_bytes = Some(bytes);
        self
    }

    /// Largest key accepted by an append (at most 65 535).
    #[must_use]
    pub fn max_key_bytes(mut self, bytes: usize) -> Self {
        self.max_key_bytes = Some(bytes);
        self
    }

    /// Whether new segments are pre-faulted in the background (default on).
    #[must_use]
    pub fn prefault(mut self, on: bool) -> Self {
        self.prefault = on;
        self
    }

    /// How many of the newest sealed segments stay in the page cache
    /// (default 8: 512 MiB of 64 MiB segments). Once a segment is sealed
    /// (its bytes are on disk), the segments sealed before the newest `n`
    /// are dropped from the page cache (`POSIX_FADV_DONTNEED`). They stay on disk and readable through
    /// every API; a later read of them comes from the disk. Pages a reader
    /// currently has mapped are left alone by the kernel.
    ///
    /// Why: a log writes each byte once and is mostly read near its end
    /// (the active segment and the newest sealed ones stay cached).
    /// Dropping older history frees its memory at once, and the pages of
    /// the next segments are then allocated from memory just freed. On
    /// virtual machines that hand free memory back to the host, each page
    /// of never-used memory costs a fault in the host, so sustained
    /// appends go markedly faster (measured in `docs/design.md`, decision
    /// 16, and `docs/benchmarks.md`), and the
    /// page cache a writer occupies stays bounded instead of growing with
    /// the log. Pass `usize::MAX` to leave the page cache to the kernel,
    /// e.g. when readers scan recent history over and over.
    #[must_use]
    pub fn cached_sealed_segments(mut self, n: usize) -> Self {
        self.cached_sealed_segments = n;
        self
    }

    /// Prepares segments for small, frequent syncs: each new segment is
    /// written full of zeros and synced (in the background preparer) before
    /// the writer gets it, and mapped without readahead. Then a sync writes
    /// only the pages it covers: a sync into preallocated but never-written
    /// space must also write the file's extent metadata (measured ~1.4x
    /// slower for 100-record syncs on ext4), and readahead builds large
    /// folios that a sync writes back whole (measured ~0.9 MB written per
    /// 13.6 KB sync). The cost is writing every segment twice and ~60 ms
    /// more background work per 64 MiB segment. Default: on unless the sync
    /// policy is [`SyncPolicy::Never`]; turn it on when calling
    /// [`crate::Writer::sync`] yourself under `Never`.
    #[must_use]
    pub fn zero_fill(mut self, on: bool) -> Self {
        self.zero_fill = Some(on);
        self
    }

    /// How many segment files the background preparer keeps ready ahead of
    /// the writer, each `segment_bytes` on disk (0 ..= [`SPARE_SEGMENTS_MAX`];
    /// default [`DEFAULT_SPARE_SEGMENTS`], or 1 with [`Options::zero_fill`]).
    /// With 0 the writer creates, allocates and (with
    /// [`Options::prefault`]) populates each new segment itself when it
    /// rotates, so the append that fills a segment waits for that: fewer
    /// files and less memory for small logs, slower rotations.
    #[must_use]
    pub fn spare_segments(mut self, count: usize) -> Self {
        self.spare_segments = Some(count);
        self
    }

    /// The spare segments in force.
    pub(crate) fn spares(&self) -> usize {
        let default = if self.zero_fill_enabled() { 1 } else { DEFAULT_SPARE_SEGMENTS };
        self.spare_segments.unwrap_or(default)
    }

    /// Whether new segments are zero-filled and synced before use.
    pub(crate) fn zero_fill_enabled(&self) -> bool {
        self.zero_fill.unwrap_or(self.sync_policy != SyncPolicy::Never)
    }

    /// The clock for appends that carry no timestamp (default [`Clock::Tsc`]).
    #[must_use]
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The file system under all I/O (tests inject faults through it).
    #[must_use]
    pub fn file_system(mut self, fs: Arc<dyn FileSystem>) -> Self {
        self.fs = fs;
        self
    }

    /// Frame bytes one segment can hold.
    pub(crate) fn frame_capacity(&self) -> u64 {
        self.segment_bytes - HEADER_BYTES
    }

    /// The key limit in force: the default shrinks to a quarter of a
    /// segment's frame space for small segments.
    pub(crate) fn key_limit(&self) -> usize {
        let quarter = (self.frame_capacity() / 4) as usize;
        self.max_key_bytes.unwrap_or(DEFAULT_MAX_KEY_BYTES.min(quarter))
    }

    /// The payload limit in force: the default shrinks so that a record
    /// with the largest key still fits in one segment.
    pub(crate) fn payload_limit(&self) -> usize {
        let room = self.frame_capacity().saturating_sub(FRAME_HEADER_BYTES + self.key_limit() as u64) as usize;
        self.max_payload_bytes.unwrap_or(DEFAULT_MAX_PAYLOAD_BYTES.min(room))
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::InvalidOptions(m));
        if !(SEGMENT_BYTES_MIN..=SEGMENT_BYTES_MAX).contains(&self.segment_bytes) || !self.segment_bytes.is_multiple_of(4096) {
            return bad(format!(
                "segment_bytes {} must be a multiple of 4096 between {SEGMENT_BYTES_MIN} and {SEGMENT_BYTES_MAX}",
                self.segment_bytes
            ));
        }
        if self.key_limit() > u16::MAX as usize {
            return bad(format!("max_key_bytes {} exceeds {}", self.key_limit(), u16::MAX));
        }
        let frame_max = FRAME_HEADER_BYTES + self.key_limit() as u64 + self.payload_limit() as u64;
        if frame_max > self.frame_capacity() {
            return bad(format!(
                "a record of max_payload_bytes + max_key_bytes ({frame_max} bytes framed) does not fit in a {} byte segment",
                self.segment_bytes
            ));
        }
        if self.spares() > SPARE_SEGMENTS_MAX {
            return bad(format!("spare_segments {} exceeds {SPARE_SEGMENTS_MAX}", self.spares()));
        }
        if let SyncPolicy::Background { interval, bytes } = self.sync_policy {
            if interval.is_zero() || bytes == Some(0) {
                return bad("background sync needs a non-zero interval and byte threshold".into());
            }
        }
        Ok(())
    }
}
