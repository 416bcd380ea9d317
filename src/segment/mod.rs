//! One segment file: active (being appended to) or sealed (read-only).

mod active;
mod remote;
mod scan;
mod sealed;
pub(crate) mod view;

pub(crate) use active::{pack_committed, unpack_committed, ActiveSegment, LiveIndex};
#[cfg_attr(not(feature = "tiered"), allow(unused_imports))]
pub(crate) use remote::{Fetch, RemoteSegment, SegmentMeta};
pub(crate) use scan::{scan_compacted, scan_frames, walk_and_digest, walk_and_digest_compacted, ScanStop, Scanned};
pub(crate) use sealed::{check_header, content_digest, content_hasher, HeaderOutcome, SealedSegment};
pub(crate) use view::SegView;

use crate::sync::Arc;

/// A segment as readers see it in a snapshot.
#[derive(Clone, Debug)]
pub(crate) enum Segment {
    /// Sealed: read-only mapping, footer and index trusted.
    Sealed(Arc<SealedSegment>),
    /// Active, or rotated away from and not yet sealed (then its committed
    /// position is final).
    Live(Arc<ActiveSegment>),
    /// Sealed, and its file is only in the object store the log is tiered
    /// to (see `tiering/`): fetched into a local cache when read.
    #[cfg_attr(not(feature = "tiered"), allow(dead_code))]
    Remote(Arc<RemoteSegment>),
}

impl Segment {
    pub(crate) fn base_seq(&self) -> u64 {
        match self {
            Segment::Sealed(s) => s.base_seq,
            Segment::Live(a) => a.base_seq,
            Segment::Remote(r) => r.meta.base_seq,
        }
    }

    /// The largest timestamp of a sealed segment (local or remote), which
    /// lets time lookups skip it; `None` for a live one.
    pub(crate) fn sealed_max_ts(&self) -> Option<u64> {
        match self {
            Segment::Sealed(s) => Some(s.max_ts),
            Segment::Remote(r) => Some(r.meta.max_ts),
            Segment::Live(_) => None,
        }
    }

    /// Whether compaction wrote it (seqs rise with gaps).
    pub(crate) fn is_compacted(&self) -> bool {
        match self {
            Segment::Sealed(s) => s.compacted,
            Segment::Remote(r) => r.meta.compacted,
            Segment::Live(_) => false,
        }
    }
}
