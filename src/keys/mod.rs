//! Keys: lookup by key, the latest value per key, and compaction.
//!
//! Every record may carry a key ([`crate::Entry::key`]) and be a tombstone
//! for it ([`crate::Entry::tombstone`]). A sealed segment's footer holds a
//! filter over its keys' hashes and a sorted `(hash, offset)` table
//! (`docs/format.md`), so looking up a key that a segment does not hold
//! reads none of its frames; the live segment keeps the same table in
//! memory, built by the writer as it appends ([`live`]).

pub(crate) mod compact;
mod live;
pub(crate) mod log_filter;
mod lookup;

pub use compact::{CompactOptions, CompactReport, CompactionTask, DEFAULT_TOMBSTONE_RETENTION};
pub(crate) use live::LiveKeys;
pub(crate) use log_filter::LogFilter;
pub use lookup::{KeyIter, Kv, KvIter};
