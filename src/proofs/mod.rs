//! Tamper evidence a third party can check: the log's records are the
//! leaves of one Merkle tree (RFC 6962's shape and domain separation, over
//! blake3), whose root commits to every record up to a size. A snapshot
//! gives the root ([`crate::Snapshot::root`]), proves that a record is in
//! the tree ([`crate::Snapshot::prove_inclusion`]) and that a later tree
//! extends an earlier one without rewriting it
//! ([`crate::Snapshot::prove_consistency`]); [`verify_inclusion`] and
//! [`verify_consistency`] check those with nothing but the proof, the
//! record and the roots. The format and the costs are in docs/proofs.md.
//!
//! - `tree.rs`: the tree's definition, proof paths and their verification;
//! - `frontier.rs`: building the tree leaf by leaf, and leaf hashes;
//! - `nodes.rs`: where the log finds nodes (segments' Merkle sections, live
//!   segments, records).

mod checkpoint;
mod encoding;
mod frontier;
mod nodes;
mod tree;

pub use encoding::DecodeError;

pub use frontier::leaf_hash;
pub(crate) use frontier::Frontier;
pub(crate) use nodes::{merkle_section, LiveNodes, LogNodes};
pub use tree::{empty_root, node_hash, verify_consistency_path, verify_inclusion_path, Hash};

use crate::error::{Error, Result};
use crate::snapshot::Snapshot;

/// The root of the log's Merkle tree over its first `size` records (seqs
/// `0..size`): what a third party keeps to check proofs against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde_derive::Serialize, serde_derive::Deserialize))]
pub struct Root {
    /// Records covered: seqs `0..size`.
    pub size: u64,
    /// The tree's root hash.
    pub hash: Hash,
}

/// That record `seq` is leaf `seq` of the tree of `size` records.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde_derive::Serialize, serde_derive::Deserialize))]
pub struct InclusionProof {
    /// The record's seq (its leaf index).
    pub seq: u64,
    /// The size of the tree the proof is for.
    pub size: u64,
    /// Sibling hashes from the leaf up.
    pub path: Vec<Hash>,
}

/// A root recorded in the log's directory by [`crate::Log::checkpoint`], with
/// the time it was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde_derive::Serialize, serde_derive::Deserialize))]
pub struct Checkpoint {
    /// The root over every record durable when it was taken.
    pub root: Root,
    /// When, in microseconds since the Unix epoch.
    pub time_us: u64,
}

/// That the tree of `new_size` records extends the tree of `old_size`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde_derive::Serialize, serde_derive::Deserialize))]
pub struct ConsistencyProof {
    /// The earlier size.
    pub old_size: u64,
    /// The later size.
    pub new_size: u64,
    /// The RFC 6962 consistency path.
    pub path: Vec<Hash>,
}

/// What a leaf of the tree is given as: a record (borrowed or owned), or
/// its leaf hash ([`leaf_hash`]) when only that was kept.
pub trait Leaf {
    /// The leaf's hash in the tree.
    fn leaf(&self) -> Hash;
}

impl Leaf for Hash {
    fn leaf(&self) -> Hash {
        *self
    }
}

impl Leaf for crate::Record<'_> {
    fn leaf(&self) -> Hash {
        self.leaf_hash()
    }
}

impl Leaf for crate::OwnedRecord {
    fn leaf(&self) -> Hash {
        self.leaf_hash()
    }
}

/// Whether `proof` shows that `record` (a [`crate::Record`], an
/// [`crate::OwnedRecord`], or a leaf hash from [`leaf_hash`]) is in the tree
/// `root` is the root of. Needs no log.
///
/// ```
/// # let dir = tempfile::tempdir()?;
/// use varvelog::{verify_inclusion, Log, Options};
/// let log = Log::open(dir.path(), Options::new())?;
/// let mut writer = log.writer()?;
/// for i in 0..100u32 {
///     writer.append(&i.to_le_bytes())?;
/// }
/// let snap = log.snapshot();
/// let root = snap.root()?; // published somewhere the log's owner cannot change
/// let proof = snap.prove_inclusion(42)?;
/// let record = snap.get(42)?.unwrap();
/// assert!(verify_inclusion(&root, &record, &proof));
/// assert!(!verify_inclusion(&root, &snap.get(43)?.unwrap(), &proof));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use]
pub fn verify_inclusion(root: &Root, record: &impl Leaf, proof: &InclusionProof) -> bool {
    proof.size == root.size && verify_inclusion_path(&record.leaf(), proof.seq, proof.size, &proof.path, &root.hash)
}

/// Whether `proof` shows that the tree of root `new` extends the tree of
/// root `old`: the same first `old.size` records, more after. Needs no log.
#[must_use]
pub fn verify_consistency(old: &Root, new: &Root, proof: &ConsistencyProof) -> bool {
    proof.old_size == old.size
        && proof.new_size == new.size
        && (old.size != 0 || old.hash == empty_root())
        && verify_consistency_path(old.size, new.size, &old.hash, &new.hash, &proof.path)
}

impl Snapshot {
    /// The root of the Merkle tree over every record in view (seqs
    /// `0..next_seq`). Computed from the nodes sealed segments keep
    /// (`Options::proofs`) and, for the rest, the records' hashes: about
    /// `O(segments)` hashes plus the records since the last node kept.
    ///
    /// # Errors
    ///
    /// [`Error::ProofUnavailable`] if a record the root needs is gone and
    /// no node covering it was kept (retention or compaction of a log that
    /// did not keep proofs); errors reading the records.
    pub fn root(&self) -> Result<Root> {
        self.root_at(self.next_seq())
    }

    /// The root of the tree over the first `size` records, for a `size` up
    /// to [`Snapshot::next_seq`].
    ///
    /// # Errors
    ///
    /// As [`Snapshot::root`]; [`Error::ProofUnavailable`] if `size` is past
    /// the records in view.
    pub fn root_at(&self, size: u64) -> Result<Root> {
        self.check_size(size)?;
        let hash = LogNodes { snap: self }.frontier(size)?.root();
        Ok(Root { size, hash })
    }

    /// A proof that record `seq` is in the tree of every record in view
    /// (check it with [`verify_inclusion`] against [`Snapshot::root`]).
    ///
    /// # Errors
    ///
    /// [`Error::ProofUnavailable`] if `seq` is not in view, or a record the
    /// proof needs is gone (see [`Snapshot::root`]).
    pub fn prove_inclusion(&self, seq: u64) -> Result<InclusionProof> {
        let size = self.next_seq();
        if seq >= size || !matches!(self.get(seq), Ok(Some(_))) {
            return Err(Error::ProofUnavailable {
                what: format!("record {seq} is not in view (next seq {size}; retention or compaction may have removed it)"),
            });
        }
        let path = tree::inclusion_path(&mut LogNodes { snap: self }, seq, size)?;
        Ok(InclusionProof { seq, size, path })
    }

    /// A proof that the tree of the first `new_size` records extends the
    /// tree of the first `old_size` (check it with [`verify_consistency`]
    /// against the two roots).
    ///
    /// # Errors
    ///
    /// [`Error::ProofUnavailable`] if `old_size > new_size` or `new_size`
    /// is past the records in view, or a record the proof needs is gone.
    pub fn prove_consistency(&self, old_size: u64, new_size: u64) -> Result<ConsistencyProof> {
        self.check_size(new_size)?;
        if old_size > new_size {
            return Err(Error::ProofUnavailable { what: format!("old size {old_size} is past new size {new_size}") });
        }
        let path = if old_size == 0 { Vec::new() } else { tree::consistency_path(&mut LogNodes { snap: self }, old_size, new_size)? };
        Ok(ConsistencyProof { old_size, new_size, path })
    }

    fn check_size(&self, size: u64) -> Result<()> {
        let next = self.next_seq();
        if size > next {
            return Err(Error::ProofUnavailable { what: format!("size {size} is past the records in view (next seq {next})") });
        }
        Ok(())
    }
}
