//! The Merkle tree of RFC 6962 (and RFC 9162, section 2.1) over blake3:
//! leaves are `H(0x00 ‖ leaf)`, interior nodes `H(0x01 ‖ left ‖ right)`,
//! and a tree of `n` leaves splits at the largest power of two below `n`.
//! Proof generation asks a [`Nodes`] source for the hash of a range of
//! leaves; verification needs nothing but the proof, the leaf and the root.

use crate::error::Result;

/// A 32-byte blake3 hash.
pub type Hash = [u8; 32];

/// Domain separation: a leaf's hash input starts with this byte…
const LEAF: u8 = 0x00;
/// …and an interior node's with this one, so no leaf hashes as a node.
const NODE: u8 = 0x01;

/// The hash of the empty tree.
#[must_use]
pub fn empty_root() -> Hash {
    *blake3::hash(b"").as_bytes()
}

/// `H(0x01 ‖ left ‖ right)`.
#[must_use]
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    // One call over a stack buffer: a `Hasher` fed three slices costs ~25%
    // more for an input this small (benchmarks.md).
    let mut buf = [0u8; 65];
    buf[0] = NODE;
    buf[1..33].copy_from_slice(left);
    buf[33..].copy_from_slice(right);
    *blake3::hash(&buf).as_bytes()
}

/// A leaf hasher: `H(0x00 ‖ parts…)`.
pub(crate) fn leaf_hasher() -> blake3::Hasher {
    let mut h = blake3::Hasher::new();
    h.update(&[LEAF]);
    h
}

/// The largest power of two strictly below `n` (`n >= 2`).
#[inline]
pub(crate) fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// Where proofs get the hash of leaves `lo..hi` of the tree (the RFC's
/// `MTH(D[lo:hi])`), for `lo < hi`.
pub(crate) trait Nodes {
    fn range(&mut self, lo: u64, hi: u64) -> Result<Hash>;
}

/// The audit path of leaf `index` in the tree of the first `size` leaves
/// (RFC 6962 `PATH(m, D[n])`), leaf side first.
pub(crate) fn inclusion_path(nodes: &mut impl Nodes, index: u64, size: u64) -> Result<Vec<Hash>> {
    debug_assert!(index < size);
    let mut path = Vec::new();
    // Walk down from the whole tree, collecting siblings root side first.
    let (mut lo, mut hi, m) = (0, size, index);
    while hi - lo > 1 {
        let k = split(hi - lo);
        if m < lo + k {
            path.push(nodes.range(lo + k, hi)?);
            hi = lo + k;
        } else {
            path.push(nodes.range(lo, lo + k)?);
            lo += k;
        }
    }
    path.reverse();
    Ok(path)
}

/// The consistency proof between the trees of the first `old` and the first
/// `new` leaves (RFC 6962 `PROOF(m, D[n])`), `0 < old <= new`.
pub(crate) fn consistency_path(nodes: &mut impl Nodes, old: u64, new: u64) -> Result<Vec<Hash>> {
    debug_assert!(0 < old && old <= new);
    // SUBPROOF(m, D[lo:hi], b), iteratively: the recursion only ever goes
    // into one half, appending the other half's hash after it returns.
    let mut after = Vec::new();
    let (mut lo, mut hi, mut m, mut whole) = (0, new, old, true);
    let mut path = loop {
        let n = hi - lo;
        if m == n {
            break if whole { Vec::new() } else { vec![nodes.range(lo, hi)?] };
        }
        let k = split(n);
        if m <= k {
            after.push(nodes.range(lo + k, hi)?);
            hi = lo + k;
        } else {
            after.push(nodes.range(lo, lo + k)?);
            lo += k;
            m -= k;
            whole = false;
        }
    };
    path.extend(after.into_iter().rev());
    Ok(path)
}

/// Whether `path` proves that a leaf whose hash is `leaf` is leaf `index`
/// of the tree of `size` leaves whose root is `root` (RFC 9162 2.1.3.2).
#[must_use]
pub fn verify_inclusion_path(leaf: &Hash, index: u64, size: u64, path: &[Hash], root: &Hash) -> bool {
    if index >= size {
        return false;
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    s == 0 && r == *root
}

/// Whether `path` proves that the tree of `new` leaves with root `new_root`
/// extends the tree of `old` leaves with root `old_root` (RFC 9162 2.1.4.2).
/// Trivially true for `old == 0`, and for `old == new` with equal roots and
/// an empty path.
#[must_use]
pub fn verify_consistency_path(old: u64, new: u64, old_root: &Hash, new_root: &Hash, path: &[Hash]) -> bool {
    if old == 0 {
        return path.is_empty();
    }
    if old > new {
        return false;
    }
    if old == new {
        return path.is_empty() && old_root == new_root;
    }
    let mut proof: Vec<&Hash> = Vec::with_capacity(path.len() + 1);
    if old.is_power_of_two() {
        proof.push(old_root);
    }
    proof.extend(path);
    let Some((first, rest)) = proof.split_first() else { return false };
    let (mut f, mut s) = (old - 1, new - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (**first, **first);
    for c in rest {
        if s == 0 {
            return false;
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    fr == *old_root && sr == *new_root && s == 0
}

#[cfg(test)]
pub(crate) mod tests_support {
    use super::*;

    /// The RFC's `MTH`, recursively and without shortcuts.
    pub(crate) fn mth(d: &[Hash]) -> Hash {
        match d.len() {
            0 => empty_root(),
            1 => d[0],
            n => {
                let k = split(n as u64) as usize;
                node_hash(&mth(&d[..k]), &mth(&d[k..]))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::mth;
    use super::*;

    fn path(m: usize, d: &[Hash]) -> Vec<Hash> {
        if d.len() <= 1 {
            return Vec::new();
        }
        let k = split(d.len() as u64) as usize;
        if m < k {
            let mut p = path(m, &d[..k]);
            p.push(mth(&d[k..]));
            p
        } else {
            let mut p = path(m - k, &d[k..]);
            p.push(mth(&d[..k]));
            p
        }
    }

    fn subproof(m: usize, d: &[Hash], b: bool) -> Vec<Hash> {
        let n = d.len();
        if m == n {
            return if b { Vec::new() } else { vec![mth(d)] };
        }
        let k = split(n as u64) as usize;
        if m <= k {
            let mut p = subproof(m, &d[..k], b);
            p.push(mth(&d[k..]));
            p
        } else {
            let mut p = subproof(m - k, &d[k..], false);
            p.push(mth(&d[..k]));
            p
        }
    }

    struct Naive<'a>(&'a [Hash]);

    impl Nodes for Naive<'_> {
        fn range(&mut self, lo: u64, hi: u64) -> Result<Hash> {
            Ok(mth(&self.0[lo as usize..hi as usize]))
        }
    }

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n as u64)
            .map(|i| {
                let mut h = leaf_hasher();
                h.update(&i.to_le_bytes());
                *h.finalize().as_bytes()
            })
            .collect()
    }

    #[test]
    fn paths_and_proofs_match_the_rfc_definitions_and_verify() {
        // Every size up to 70 and a random sample of larger ones, against the
        // recursive definitions; each verifies, and changing any hash, the
        // index or the size makes it fail.
        let mut rng = fastrand::Rng::with_seed(6962);
        let mut sizes: Vec<usize> = (1..=70).collect();
        sizes.extend((0..30).map(|_| rng.usize(71..3000)));
        let all = leaves(3000);
        for &n in &sizes {
            let d = &all[..n];
            let root = mth(d);
            let mut nodes = Naive(d);
            let picked: Vec<usize> = (0..n).filter(|_| n < 70 || rng.u8(..) < 8).collect();
            for m in picked {
                let p = inclusion_path(&mut nodes, m as u64, n as u64).unwrap();
                assert_eq!(p, path(m, d), "path {m} of {n}");
                assert!(verify_inclusion_path(&d[m], m as u64, n as u64, &p, &root), "inclusion {m} of {n}");
                assert!(!verify_inclusion_path(&d[(m + 1) % n], m as u64, n as u64, &p, &root) || n == 1);
                // (The size is not bound by the path: a root is trusted
                // with its size, which `verify_inclusion` compares.)
                if m + 1 < n {
                    assert!(!verify_inclusion_path(&d[m], m as u64 + 1, n as u64, &p, &root));
                }
                for i in 0..p.len() {
                    let mut bad = p.clone();
                    bad[i][rng.usize(..32)] ^= 1 << rng.u8(..8);
                    assert!(!verify_inclusion_path(&d[m], m as u64, n as u64, &bad, &root));
                }
            }
            let picked: Vec<usize> = (1..=n).filter(|_| n < 70 || rng.u8(..) < 8).collect();
            for m in picked {
                let p = consistency_path(&mut nodes, m as u64, n as u64).unwrap();
                assert_eq!(p, subproof(m, d, true), "consistency {m} to {n}");
                let old = mth(&d[..m]);
                assert!(verify_consistency_path(m as u64, n as u64, &old, &root, &p), "consistency {m} to {n}");
                if m < n {
                    let mut other = old;
                    other[0] ^= 1;
                    assert!(!verify_consistency_path(m as u64, n as u64, &other, &root, &p));
                    assert!(!verify_consistency_path(m as u64, n as u64, &old, &other, &p));
                    for i in 0..p.len() {
                        let mut bad = p.clone();
                        bad[i][rng.usize(..32)] ^= 1 << rng.u8(..8);
                        assert!(!verify_consistency_path(m as u64, n as u64, &old, &root, &bad));
                    }
                    assert!(!verify_consistency_path(m as u64 + 1, n as u64, &old, &root, &p) || m + 1 == n);
                }
            }
        }
    }
}
