//! Records as readers get them: borrowed from a mapping ([`Record`]) or
//! owned, still without a copy ([`OwnedRecord`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use crate::format::{DecodedFrame, FLAG_TOMBSTONE};
use crate::segment::Segment;

/// The accessors [`Record`] and [`OwnedRecord`] share, over their `seq`,
/// `timestamp_us` and `flags` fields.
macro_rules! record_metadata {
    () => {
        /// The record's sequence number.
        #[must_use]
        pub fn seq(&self) -> u64 {
            self.seq
        }

        /// Microseconds since the Unix epoch.
        #[must_use]
        pub fn timestamp(&self) -> u64 {
            self.timestamp_us
        }

        /// The timestamp as a [`SystemTime`].
        #[must_use]
        pub fn time(&self) -> SystemTime {
            UNIX_EPOCH + Duration::from_micros(self.timestamp_us)
        }

        /// Whether the record was appended as a tombstone for its key.
        #[must_use]
        pub fn is_tombstone(&self) -> bool {
            self.flags & FLAG_TOMBSTONE != 0
        }

        /// The record's leaf hash in the log's Merkle tree (see
        /// [`crate::leaf_hash`]): what [`crate::verify_inclusion`] checks.
        #[must_use]
        pub fn leaf_hash(&self) -> crate::Hash {
            crate::leaf_hash(self.seq, self.timestamp_us, self.is_tombstone(), self.key().unwrap_or_default(), self.payload())
        }
    };
}

/// One record, borrowed from the snapshot's mappings: no copy, no allocation.
///
/// [`Record::to_owned_record`] turns it into an [`OwnedRecord`] that keeps
/// the mapping alive instead of copying the bytes.
#[derive(Clone, Copy)]
pub struct Record<'a> {
    seq: u64,
    timestamp_us: u64,
    flags: u8,
    key: &'a [u8],
    payload: &'a [u8],
    /// The segment whose mapping holds `key` and `payload`.
    segment: &'a Segment,
}

impl<'a> Record<'a> {
    #[inline]
    pub(crate) fn new(f: &DecodedFrame<'a>, segment: &'a Segment) -> Record<'a> {
        Record { seq: f.seq, timestamp_us: f.timestamp_us, flags: f.flags, key: f.key, payload: f.payload, segment }
    }

    record_metadata!();

    /// The key, or `None` if the record has none (an empty key is no key).
    #[must_use]
    pub fn key(&self) -> Option<&'a [u8]> {
        (!self.key.is_empty()).then_some(self.key)
    }

    /// The payload. It starts 8-byte aligned within the mapping.
    #[must_use]
    pub fn payload(&self) -> &'a [u8] {
        self.payload
    }

    /// The record as an [`OwnedRecord`], to keep past the snapshot or tail
    /// it came from or to send to another thread. The bytes are not copied:
    /// the owned record holds the segment's mapping (a reference count and
    /// one small allocation).
    #[must_use]
    pub fn to_owned_record(&self) -> OwnedRecord {
        let payload = MappedBytes::share(self.segment, self.payload);
        let key = self.key().map(|k| MappedBytes::share(self.segment, k));
        OwnedRecord { seq: self.seq, timestamp_us: self.timestamp_us, flags: self.flags, key, payload }
    }
}

impl PartialEq for Record<'_> {
    fn eq(&self, other: &Self) -> bool {
        (self.seq, self.timestamp_us, self.flags, self.key, self.payload)
            == (other.seq, other.timestamp_us, other.flags, other.key, other.payload)
    }
}

impl Eq for Record<'_> {}

impl std::fmt::Debug for Record<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Record")
            .field("seq", &self.seq)
            .field("timestamp_us", &self.timestamp_us)
            .field("flags", &self.flags)
            .field("key", &self.key)
            .field("payload", &self.payload)
            .finish()
    }
}

/// A record that owns its bytes: cheap to clone, `Send + Sync`, and
/// still zero-copy when it comes from the log. Its key and payload are
/// [`Bytes`] that keep the segment's mapping alive (as a [`crate::Snapshot`]
/// does) rather than copies; a retention pass that removes the segment
/// meanwhile does not invalidate them.
///
/// The price of not copying: while any owned record of a segment lives, so
/// do its mapping, its file's disk space (even after retention unlinked
/// it) and, for the live segment, its in-memory index and key table. To
/// keep a few records for long, copy them out
/// (`Bytes::copy_from_slice(record.payload())`).
///
/// ```
/// # fn main() -> varvelog::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// use varvelog::{Log, Options, OwnedRecord};
///
/// let log = Log::open(dir.path(), Options::new())?;
/// log.writer()?.append(b"kept")?;
/// let owned: OwnedRecord = log.snapshot().get(0)?.expect("appended").to_owned_record();
/// let handle = std::thread::spawn(move || owned.payload().to_vec());
/// assert_eq!(handle.join().unwrap(), b"kept");
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OwnedRecord {
    seq: u64,
    timestamp_us: u64,
    flags: u8,
    key: Option<Bytes>,
    payload: Bytes,
}

impl OwnedRecord {
    record_metadata!();

    /// The key, or `None` if the record has none.
    #[must_use]
    pub fn key(&self) -> Option<&[u8]> {
        self.key.as_deref()
    }

    /// The payload.
    #[must_use]
    pub fn payload(&self) -> &[u8] {
        &self.payload
    }

    /// The key as shared [`Bytes`] (a clone is a reference count).
    #[must_use]
    pub fn key_bytes(&self) -> Option<&Bytes> {
        self.key.as_ref()
    }

    /// The payload as shared [`Bytes`] (a clone is a reference count).
    #[must_use]
    pub fn payload_bytes(&self) -> &Bytes {
        &self.payload
    }

    /// The payload, giving up the rest of the record.
    #[must_use]
    pub fn into_payload(self) -> Bytes {
        self.payload
    }
}

impl From<Record<'_>> for OwnedRecord {
    fn from(r: Record<'_>) -> Self {
        r.to_owned_record()
    }
}

/// Bytes of a segment's frame area, owned by holding the segment: the
/// owner of a zero-copy [`Bytes`].
struct MappedBytes {
    segment: Segment,
    /// Offsets into the segment's frame area.
    start: usize,
    end: usize,
}

impl MappedBytes {
    /// `part` (a slice of `segment`'s frame area) as [`Bytes`] that hold
    /// the segment; a copy if `part` is not where the segment now shows
    /// frames (a log cut back under a read-only reader).
    fn share(segment: &Segment, part: &[u8]) -> Bytes {
        let frames = frames_of(segment, usize::MAX);
        let start = (part.as_ptr() as usize).wrapping_sub(frames.as_ptr() as usize);
        let end = start.wrapping_add(part.len());
        if start > end || frames.get(start..end).is_none_or(|s| s.as_ptr() != part.as_ptr()) {
            return Bytes::copy_from_slice(part);
        }
        Bytes::from_owner(MappedBytes { segment: segment.clone(), start, end })
    }
}

impl AsRef<[u8]> for MappedBytes {
    fn as_ref(&self) -> &[u8] {
        // `share` checked the range; an empty slice rather than a panic if a
        // live segment's published end went back since.
        frames_of(&self.segment, self.end).get(self.start..self.end).unwrap_or_default()
    }
}

/// The frame area of `segment` (from `HEADER_BYTES`), up to `end` bytes of
/// it; for a live segment no further than it is published.
fn frames_of(segment: &Segment, end: usize) -> &[u8] {
    match segment {
        Segment::Sealed(s) => s.frames(),
        Segment::Live(a) => a.map.frames(crate::format::HEADER_BYTES.saturating_add(end as u64)),
        // Records come from views made ready, whose segment is the fetched
        // (sealed) form: a record never points at a remote segment.
        Segment::Remote(_) => &[],
    }
}

// Owned records and their bytes cross threads.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<OwnedRecord>();
    send_sync::<MappedBytes>();
};
