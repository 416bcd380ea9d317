//! One segment file: active (being appended to) or sealed (read-only).

mod active;
mod scan;
mod sealed;
pub(crate) mod view;

pub(crate) use active::{pack_committed, unpack_committed, ActiveSegment, LiveIndex};
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
}

impl Segment {
    pub(crate) fn base_seq(&self) -> u64 {
        match self {
            Segment::Sealed(s) => s.base_seq,
            Segment::Live(a) => a.base_seq,
        }
    }
}
