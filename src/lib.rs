//! # varvelog
//!
//! An embedded, memory-mapped, append-only, segmented log. One [`Writer`]
//! appends records into a preallocated, pre-faulted active segment; any
//! number of readers take lock-free [`Snapshot`]s and read records in place,
//! without copying, while the writer runs.
//!
//! ```
//! use varvelog::{Entry, Log, Options};
//!
//! # fn main() -> varvelog::Result<()> {
//! # let dir = tempfile::tempdir().unwrap();
//! let log = Log::open(dir.path(), Options::new())?;
//! let mut writer = log.writer()?;
//! let first = writer.append(b"hello")?;
//! writer.append_entry(Entry::new(b"world").key(b"greeting"))?;
//! writer.append_batch([&b"a"[..], b"b", b"c"])?; // all visible at once
//! writer.sync()?; // durable from here on
//!
//! let snap = log.snapshot();
//! assert_eq!(snap.get(first)?.unwrap().payload(), b"hello");
//! for record in snap.iter() {
//!     let record = record?;
//!     println!("{} {:?}", record.seq(), record.payload());
//! }
//! assert_eq!(log.durable_seq(), Some(4));
//! # Ok(()) }
//! ```
//!
//! Reading a log from other processes, and what makes it safe:
//! [`docs::multi_process`]. The bytes on disk: [`format`](mod@format).
//!
//! # Features
//!
//! * `serde`: append and read serde values through a `Codec` (`Json`
//!   built in); see [`typed`].
//! * `async`: tails and named consumers as `futures_core::Stream`s
//!   (`Tail::into_stream`, `Consumer::into_stream`), woken by the
//!   writer, on any runtime.
//! * `cli`: the `varve` command-line tool (`cargo install varvelog --features cli`);
//!   nothing the library needs.
//!
//! # Platform
//!
//! Linux. The engine maps files `MAP_SHARED`, reserves them with
//! `fallocate`, faults pages in ahead of the writer with
//! `MADV_POPULATE_WRITE` (Linux 5.14; older kernels fault them in on first
//! write), and lets the writer skip a CPU fence per append through
//! `membarrier(2)` (full fences if it is refused). `varve stat` names the
//! writing process from `/proc/locks`. Other Unixes lack some of these and
//! are not tested.

#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unsafe_op_in_unsafe_fn)]
#![deny(missing_docs)]
// Every fallible public function says when it fails; builders and pure
// getters are `#[must_use]`.
#![warn(clippy::missing_errors_doc, clippy::return_self_not_must_use, clippy::must_use_candidate)]

#[cfg(loom)]
#[doc(hidden)]
#[path = "loom_api.rs"]
pub mod __loom;
mod clock;
mod consumers;
pub mod docs;
mod error;
pub mod format;
pub mod fs;
mod ingest;
mod keys;
mod lifecycle;
mod log;
mod options;
mod proofs;
mod range;
mod raw;
mod read_only;
mod record;
mod recovery;
mod retention;
mod segment;
mod shared;
mod snapshot;
mod stats;
mod sync;
mod tail;
mod task;
#[cfg(feature = "tiered")]
mod tiering;
pub mod typed;
mod verify;
mod writer;

pub use crate::clock::Clock;
pub use crate::consumers::{Consumer, ConsumerInfo, ConsumerOptions, MAX_NAME_BYTES as MAX_CONSUMER_NAME_BYTES};
pub use crate::error::{Error, Result};
pub use crate::ingest::{Ingest, Ticket};
pub use crate::keys::{CompactOptions, CompactReport, CompactionTask, KeyIter, Kv, KvIter, DEFAULT_TOMBSTONE_RETENTION};
pub use crate::log::{Log, LOCK_FILE_NAME};
pub use crate::options::{
    Options, RecoveryMode, SyncPolicy, DEFAULT_CACHED_SEALED_SEGMENTS, DEFAULT_MAX_KEY_BYTES, DEFAULT_MAX_PAYLOAD_BYTES,
    DEFAULT_SEGMENT_BYTES, DEFAULT_SPARE_SEGMENTS, SPARE_SEGMENTS_MAX,
};
pub use crate::proofs::{
    empty_root, leaf_hash, node_hash, verify_consistency, verify_consistency_path, verify_inclusion, verify_inclusion_path, Checkpoint,
    ConsistencyProof, DecodeError, Hash, InclusionProof, Leaf, Root,
};
pub use crate::range::{RangeIter, TimeRangeIter};
pub use crate::read_only::ReadOnlyLog;
pub use crate::record::{OwnedRecord, Record};
pub use crate::recovery::RecoveryReport;
pub use crate::retention::{Retention, RetentionReport, RetentionTask};
pub use crate::snapshot::{Iter, RevIter, Snapshot};
pub use crate::stats::{ReaderStats, SegmentInfo, Stats};
pub use crate::tail::{Batch, Tail, WaitStrategy};
#[cfg(feature = "async")]
pub use crate::tail::{ConsumerStream, TailStream};
#[cfg(feature = "tiered")]
#[cfg_attr(docsrs, doc(cfg(feature = "tiered")))]
pub use crate::tiering::{TierOptions, TierStats, DEFAULT_CACHE_BYTES};
#[cfg(feature = "serde")]
pub use crate::typed::{Codec, Json};
pub use crate::verify::{verify_dir, verify_dir_with_progress, VerifyReport};
pub use crate::writer::{Entry, Writer};
pub use bytes::Bytes;

/// The README's Rust examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
