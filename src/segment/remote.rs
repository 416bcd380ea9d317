//! A sealed segment whose file is in an object store, not in the log's
//! directory: what readers know of it without fetching it, and how to fetch it.

use std::path::PathBuf;

use crate::error::Result;
use crate::sync::Arc;

use super::SealedSegment;

/// What a sealed segment's footer and trailer say, kept for a segment whose
/// file is elsewhere: enough to place it in the log, plan reads and check
/// the file once fetched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SegmentMeta {
    pub(crate) base_seq: u64,
    /// One past the last seq it covers.
    pub(crate) end_seq: u64,
    pub(crate) count: u64,
    pub(crate) min_ts: u64,
    pub(crate) max_ts: u64,
    pub(crate) frames_end: u64,
    pub(crate) last_frame_offset: u64,
    /// The whole file's size.
    pub(crate) file_bytes: u64,
    pub(crate) compacted: bool,
    pub(crate) prev_digest: [u8; 32],
    pub(crate) digest: [u8; 32],
    pub(crate) content_digest: [u8; 32],
    /// blake3 of the whole file, footer and trailer included: what a fetched
    /// copy must hash to.
    pub(crate) file_hash: [u8; 32],
}

#[cfg_attr(not(feature = "tiered"), allow(dead_code))]
impl SegmentMeta {
    /// The metadata of a sealed segment, with the blake3 of its whole file.
    pub(crate) fn of(s: &SealedSegment, file_hash: [u8; 32]) -> SegmentMeta {
        SegmentMeta {
            base_seq: s.base_seq,
            end_seq: s.end_seq,
            count: s.count,
            min_ts: s.min_ts,
            max_ts: s.max_ts,
            frames_end: s.frames_end,
            last_frame_offset: s.last_frame_offset,
            file_bytes: s.bytes().len() as u64,
            compacted: s.compacted,
            prev_digest: s.prev_digest,
            digest: s.digest,
            content_digest: s.content_digest,
            file_hash,
        }
    }

    /// Whether the fetched segment `s` is the one described.
    pub(crate) fn matches(&self, s: &SealedSegment) -> bool {
        s.base_seq == self.base_seq
            && s.end_seq == self.end_seq
            && s.count == self.count
            && s.digest == self.digest
            && s.prev_digest == self.prev_digest
            && s.bytes().len() as u64 == self.file_bytes
    }
}

/// Brings a remote segment's file to this machine and maps it.
pub(crate) trait Fetch: Send + Sync {
    /// The segment, mapped from a local copy whose whole-file hash matched.
    fn fetch(&self, seg: &RemoteSegment) -> Result<Arc<SealedSegment>>;
}

/// A segment held only in the object store.
#[cfg_attr(not(feature = "tiered"), allow(dead_code))]
pub(crate) struct RemoteSegment {
    pub(crate) meta: SegmentMeta,
    /// Where it is, for messages: the object's URL.
    pub(crate) path: PathBuf,
    /// The object's key in the store.
    pub(crate) key: String,
    fetch: std::sync::Arc<dyn Fetch>,
}

impl std::fmt::Debug for RemoteSegment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteSegment").field("path", &self.path).field("base_seq", &self.meta.base_seq).finish()
    }
}

#[cfg_attr(not(feature = "tiered"), allow(dead_code))]
impl RemoteSegment {
    pub(crate) fn new(meta: SegmentMeta, path: PathBuf, key: String, fetch: std::sync::Arc<dyn Fetch>) -> RemoteSegment {
        RemoteSegment { meta, path, key, fetch }
    }

    /// The segment's file, fetched (or found in the cache) and mapped.
    pub(crate) fn load(&self) -> Result<Arc<SealedSegment>> {
        self.fetch.fetch(self)
    }
}
