//! The one error type.

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// Everything that can go wrong in varvelog.
///
/// Corruption variants carry the segment file and byte offset of the damage.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call failed.
    #[error("{op} failed on {path}: {source}")]
    Io {
        /// What was being done (`"fallocate"`, `"msync"`, …).
        op: &'static str,
        /// The file or directory it was done to.
        path: PathBuf,
        /// The operating system's error.
        #[source]
        source: io::Error,
    },
    /// The object store a log is tiered to failed, could not be reached, or
    /// refused a request (see `TierOptions`); the operation and the
    /// object's URL are named.
    #[error("{op} failed on {url}: {source}")]
    Store {
        /// What was being done (`"upload segment"`, `"fetch segment"`, …).
        op: &'static str,
        /// The object (or the log's prefix) in the store.
        url: String,
        /// The store client's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A Merkle root or proof needs a record (or a node covering it) the
    /// log no longer has, or sizes out of range.
    #[error("proof unavailable: {what}")]
    ProofUnavailable {
        /// What is missing.
        what: String,
    },
    /// An earlier I/O error on a mutating path left the writer unusable.
    /// Readers keep working; close and reopen the log to recover.
    #[error("writer is poisoned by an earlier error ({cause}); close and reopen the log")]
    Poisoned {
        /// The error that poisoned the writer.
        cause: Arc<Error>,
    },
    /// Another process holds the log's `LOCK` file.
    #[error("log {path} is locked by another process")]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// Another consumer of the same name is open, in this process or
    /// another (each named consumer's position file is locked while open).
    #[error("consumer {name:?} is in use ({path} is locked)")]
    ConsumerBusy {
        /// The consumer's name.
        name: String,
        /// Its position file.
        path: PathBuf,
    },
    /// A consumer name that cannot name a position file.
    #[error("invalid consumer name {name:?}: {reason}")]
    InvalidConsumerName {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The log's single writer is already handed out in this process.
    #[error("the log already has a writer")]
    WriterBusy,
    /// A record is larger than [`crate::Options::max_payload_bytes`].
    #[error("payload of {len} bytes exceeds the limit of {max} bytes")]
    PayloadTooLarge {
        /// Payload length given.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// A key is larger than [`crate::Options::max_key_bytes`].
    #[error("key of {len} bytes exceeds the limit of {max} bytes")]
    KeyTooLarge {
        /// Key length given.
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// A batch does not fit in one segment, so it cannot be published at once.
    #[error("batch of {len} bytes exceeds the segment capacity of {max} bytes")]
    BatchTooLarge {
        /// Encoded batch length.
        len: u64,
        /// Frame capacity of one segment.
        max: u64,
    },
    /// Options that cannot work together.
    #[error("invalid options: {0}")]
    InvalidOptions(String),
    /// The directory holds something that is not a varvelog log.
    #[error("{path} is not a varvelog segment: {reason}")]
    NotALog {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A segment written by a format version this build does not read.
    #[error("{path} has format version {found}; this build reads version {supported}")]
    UnsupportedVersion {
        /// The segment file.
        path: PathBuf,
        /// Version found on disk.
        found: u16,
        /// Version this build reads and writes.
        supported: u16,
    },
    /// A frame's checksum does not match its bytes.
    #[error("checksum mismatch in {path} at offset {offset}: stored {expected:#010x}, computed {found:#010x}")]
    ChecksumMismatch {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the frame.
        offset: u64,
        /// Checksum stored in the frame.
        expected: u32,
        /// Checksum of the bytes.
        found: u32,
    },
    /// Bytes that should be a structure are damaged (bad length, bad header,
    /// sequence break, bad footer, digest or chain mismatch).
    #[error("corruption in {path} at offset {offset}: {what}")]
    Corrupt {
        /// The segment file.
        path: PathBuf,
        /// Byte offset of the damage.
        offset: u64,
        /// What is wrong.
        what: String,
    },
    /// Records in the middle of the log are missing: the segment file that
    /// held them is absent (deleted, or moved aside by a salvaging open).
    #[error("seqs {from}..{to} are missing from the log: segment file {path} is absent")]
    Missing {
        /// The segment file that would hold seq `from`.
        path: PathBuf,
        /// First missing seq.
        from: u64,
        /// First seq present again after the gap.
        to: u64,
    },
    /// The ingest pipeline ([`crate::Ingest`]) was closed before this record
    /// reached the writer; it was not appended.
    #[error("the ingest pipeline is closed; the record was not appended")]
    IngestClosed,
    /// The requested records were removed by retention.
    #[error("seq {requested} is no longer in the log; the first available is {first_available}")]
    Truncated {
        /// The seq asked for.
        requested: u64,
        /// The first seq still in the log.
        first_available: u64,
    },
    /// A payload cannot be viewed as the requested type: wrong size, or not
    /// aligned for it (see [`crate::Record::payload_as`]).
    #[error("payload of {len} bytes cannot be viewed as {type_name}: {reason}")]
    PayloadLayout {
        /// The type asked for.
        type_name: &'static str,
        /// The payload's length.
        len: usize,
        /// What does not fit: size or alignment.
        reason: &'static str,
    },
    /// A value could not be encoded or decoded by a codec (feature `serde`).
    #[error("codec failed for {type_name}: {message}")]
    Codec {
        /// The type being encoded or decoded.
        type_name: &'static str,
        /// The codec's message.
        message: String,
    },
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Error {
        Error::Io { op, path: path.into(), source }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, offset: u64, what: impl Into<String>) -> Error {
        Error::Corrupt { path: path.into(), offset, what: what.into() }
    }

    /// True for the variants that mean stored bytes are damaged.
    #[must_use]
    pub fn is_corruption(&self) -> bool {
        matches!(self, Error::ChecksumMismatch { .. } | Error::Corrupt { .. })
    }

    /// The segment file and offset of a corruption, if this is one.
    #[must_use]
    pub fn corruption_location(&self) -> Option<(&std::path::Path, u64)> {
        match self {
            Error::ChecksumMismatch { path, offset, .. } | Error::Corrupt { path, offset, .. } => Some((path, *offset)),
            _ => None,
        }
    }

    /// Whether this is a full disk met while writing a sealed segment's
    /// footer or cutting the file: nothing vouches for the frames yet and
    /// the frames themselves were synced, so the seal can simply be retried.
    /// (A failed fdatasync is never retried: the kernel reports a write-back
    /// error once.)
    pub(crate) fn is_out_of_space_before_footer(&self) -> bool {
        matches!(self, Error::Io { op: "write footer" | "truncate sealed segment", source, .. }
            if source.raw_os_error() == Some(28) || source.kind() == io::ErrorKind::StorageFull)
    }

    /// A copy to keep as the poisoning cause (`io::Error` is not `Clone`).
    pub(crate) fn duplicate(&self) -> Error {
        match self {
            Error::Io { op, path, source } => {
                Error::Io { op, path: path.clone(), source: io::Error::new(source.kind(), source.to_string()) }
            }
            Error::Poisoned { cause } => Error::Poisoned { cause: cause.clone() },
            Error::Store { op, url, source } => Error::Store { op, url: url.clone(), source: source.to_string().into() },
            other => Error::corrupt("", 0, other.to_string()),
        }
    }
}
