//! The right edge of the Merkle tree as leaves are added: the perfect
//! subtrees that cover the leaves so far, one per set bit of their count.
//! Adding a leaf merges equal subtrees, producing each interior node once,
//! as the leaf that completes it arrives.

use super::tree::{empty_root, leaf_hasher, node_hash, Hash};

/// The perfect subtrees covering leaves `0..size`, largest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Frontier {
    size: u64,
    /// `(level, hash)`, levels strictly decreasing.
    blocks: Vec<(u32, Hash)>,
}

impl Frontier {
    /// The frontier of a tree of `size` leaves from its subtrees' hashes
    /// (largest first), if there is one per set bit of `size`.
    pub(crate) fn from_hashes(size: u64, hashes: &[Hash]) -> Option<Frontier> {
        let levels = (0..64u32).rev().filter(|h| size >> h & 1 == 1);
        (hashes.len() == size.count_ones() as usize).then(|| Frontier { size, blocks: levels.zip(hashes.iter().copied()).collect() })
    }

    /// Leaves covered.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// The subtrees' hashes, largest first.
    pub(crate) fn hashes(&self) -> Vec<Hash> {
        self.blocks.iter().map(|b| b.1).collect()
    }

    /// Adds leaf hash `leaf`; `node(level, index, hash)` sees each interior
    /// node this completes, lowest first.
    pub(crate) fn push(&mut self, leaf: Hash, mut node: impl FnMut(u32, u64, &Hash)) {
        let (mut level, mut hash) = (0u32, leaf);
        while let Some(&(l, left)) = self.blocks.last() {
            if l != level {
                break;
            }
            self.blocks.pop();
            hash = node_hash(&left, &hash);
            level += 1;
            node(level, self.size >> level, &hash);
        }
        self.blocks.push((level, hash));
        self.size += 1;
    }

    /// The root of the tree of these leaves (RFC 6962 `MTH`).
    pub(crate) fn root(&self) -> Hash {
        let mut it = self.blocks.iter().rev();
        let Some(&(_, last)) = it.next() else { return empty_root() };
        it.fold(last, |right, (_, left)| node_hash(left, &right))
    }
}

/// The leaf hash of a record: `H(0x00 ‖ seq ‖ timestamp ‖ tombstone ‖
/// key length ‖ key ‖ payload)`, integers little-endian (seq and
/// timestamp 8 bytes, tombstone 1, key length 4).
#[must_use]
pub fn leaf_hash(seq: u64, timestamp_us: u64, tombstone: bool, key: &[u8], payload: &[u8]) -> Hash {
    // Small records: one call over a stack buffer (a `Hasher` fed six
    // slices costs ~50% more for 100-byte records; benchmarks.md).
    const SMALL: usize = 256;
    let len = 22 + key.len() + payload.len();
    if len <= SMALL {
        let mut buf = [0u8; SMALL];
        buf[1..9].copy_from_slice(&seq.to_le_bytes());
        buf[9..17].copy_from_slice(&timestamp_us.to_le_bytes());
        buf[17] = u8::from(tombstone);
        buf[18..22].copy_from_slice(&(key.len() as u32).to_le_bytes());
        buf[22..22 + key.len()].copy_from_slice(key);
        buf[22 + key.len()..len].copy_from_slice(payload);
        return *blake3::hash(&buf[..len]).as_bytes();
    }
    let mut h = leaf_hasher();
    h.update(&seq.to_le_bytes());
    h.update(&timestamp_us.to_le_bytes());
    h.update(&[u8::from(tombstone)]);
    h.update(&(key.len() as u32).to_le_bytes());
    h.update(key);
    h.update(payload);
    *h.finalize().as_bytes()
}

/// The leaf hash of a decoded frame.
pub(crate) fn frame_leaf(f: &crate::format::DecodedFrame<'_>) -> Hash {
    leaf_hash(f.seq, f.timestamp_us, f.flags & crate::format::FLAG_TOMBSTONE != 0, f.key, f.payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_frontier_gives_the_rfc_root_and_every_node_once() {
        // Goal: pushing leaves one by one gives the same root as the
        // recursive definition, at every size, and reports each interior
        // node exactly once with the index of its position.
        let leaves: Vec<Hash> = (0..300u64).map(|i| leaf_hash(i, i, false, b"", &i.to_le_bytes())).collect();
        let mut f = Frontier::default();
        let mut nodes = std::collections::HashSet::new();
        for (i, leaf) in leaves.iter().enumerate() {
            f.push(*leaf, |level, index, hash| {
                let lo = (index << level) as usize;
                let want = super::super::tree::tests_support::mth(&leaves[lo..lo + (1 << level)]);
                assert_eq!(*hash, want, "node {level}/{index}");
                assert!(nodes.insert((level, index)));
            });
            assert_eq!(f.root(), super::super::tree::tests_support::mth(&leaves[..=i]), "root of {}", i + 1);
            let again = Frontier::from_hashes(f.size(), &f.hashes()).unwrap();
            assert_eq!(again, f);
        }
        assert_eq!(nodes.len(), 300 - 300usize.count_ones() as usize);
        assert!(Frontier::from_hashes(3, &[[0; 32]]).is_none());
    }
}
