//! The Merkle section of a sealed segment's footer (written when the log
//! keeps proofs, `Options::proofs`): what the log's Merkle tree over record
//! hashes needs from this segment without reading its frames.
//!
//! ```text
//! frontier_start: popcount(base_seq) hashes   the tree's perfect subtrees
//!                                             covering seqs 0..base_seq
//! frontier_end:   popcount(end_seq) hashes    the same for 0..end_seq
//! nodes:          for each level h >= MERKLE_LEVEL, ascending, the nodes of
//!                 level h whose last leaf is in base_seq..end_seq, by index
//! ```
//! A node of level `h` and index `j` covers leaves (seqs)
//! `j·2^h .. (j+1)·2^h`; its last leaf is in this segment for
//! `j` in `base_seq >> h .. end_seq >> h`. Frontiers list subtrees largest
//! (leftmost) first, one per set bit of the size. The section's length
//! follows from `base_seq`, `end_seq` and the level, so it needs no header.

/// The lowest level whose nodes a footer keeps: one node per 1024 leaves,
/// about 0.06 bytes a record; lower nodes are rehashed from at most 1024
/// records when a proof needs them.
pub const MERKLE_LEVEL: u32 = 10;

/// Bytes of one hash.
pub const MERKLE_HASH_BYTES: u64 = 32;

/// Number of level-`h` nodes whose last leaf is in `base..end`.
#[must_use]
pub const fn merkle_nodes_at(base: u64, end: u64, h: u32) -> u64 {
    (end >> h).saturating_sub(base >> h)
}

/// Number of hashes in the section of a segment covering `base..end`.
#[must_use]
pub fn merkle_hashes(base: u64, end: u64) -> u64 {
    let nodes: u64 = (MERKLE_LEVEL..64).map(|h| merkle_nodes_at(base, end, h)).sum();
    u64::from(base.count_ones()) + u64::from(end.count_ones()) + nodes
}

/// The most bytes a Merkle section of a segment with `records` records can
/// take (for the room a segment reserves for its footer).
#[must_use]
pub const fn merkle_bound(records: u64) -> u64 {
    // Two frontiers of at most 64 hashes; at most 2·records/2^level + 1
    // nodes per level summed over levels (a geometric series), plus one per
    // level for alignment.
    (128 + 2 * (records >> MERKLE_LEVEL) + 2 + 64) * MERKLE_HASH_BYTES
}

/// A Merkle section, read in place (its length checked against the bounds).
#[derive(Clone, Copy, Debug)]
pub struct MerkleSection<'a> {
    base: u64,
    end: u64,
    bytes: &'a [u8],
}

impl<'a> MerkleSection<'a> {
    /// The section of a segment covering `base..end`, if `bytes` has the
    /// length those bounds imply.
    #[must_use]
    pub fn decode(bytes: &'a [u8], base: u64, end: u64) -> Option<MerkleSection<'a>> {
        (end >= base && bytes.len() as u64 == merkle_hashes(base, end) * MERKLE_HASH_BYTES).then_some(MerkleSection { base, end, bytes })
    }

    fn hash(&self, i: u64) -> [u8; 32] {
        let at = (i * MERKLE_HASH_BYTES) as usize;
        let mut h = [0u8; 32];
        h.copy_from_slice(&self.bytes[at..at + 32]);
        h
    }

    /// The subtrees covering seqs `0..base_seq`, largest first.
    #[must_use]
    pub fn frontier_start(&self) -> Vec<[u8; 32]> {
        (0..u64::from(self.base.count_ones())).map(|i| self.hash(i)).collect()
    }

    /// The subtrees covering seqs `0..end_seq`, largest first.
    #[must_use]
    pub fn frontier_end(&self) -> Vec<[u8; 32]> {
        let at = u64::from(self.base.count_ones());
        (0..u64::from(self.end.count_ones())).map(|i| self.hash(at + i)).collect()
    }

    /// Node `j` of level `h`, if its last leaf is in this segment and the
    /// section keeps that level.
    #[must_use]
    pub fn node(&self, h: u32, j: u64) -> Option<[u8; 32]> {
        if !(MERKLE_LEVEL..64).contains(&h) {
            return None;
        }
        let first = self.base >> h;
        if j < first || j >= self.end >> h {
            return None;
        }
        let before: u64 = (MERKLE_LEVEL..h).map(|l| merkle_nodes_at(self.base, self.end, l)).sum();
        let at = u64::from(self.base.count_ones()) + u64::from(self.end.count_ones()) + before + (j - first);
        Some(self.hash(at))
    }

    /// The section's bytes.
    #[must_use]
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

/// Builds a section from the two frontiers and the nodes, which must come
/// in the section's order (level, then index).
#[must_use]
pub fn encode_merkle_section(frontier_start: &[[u8; 32]], frontier_end: &[[u8; 32]], nodes: &[[u8; 32]]) -> Vec<u8> {
    let mut out = Vec::with_capacity((frontier_start.len() + frontier_end.len() + nodes.len()) * 32);
    for h in frontier_start.iter().chain(frontier_end).chain(nodes) {
        out.extend_from_slice(h);
    }
    out
}
