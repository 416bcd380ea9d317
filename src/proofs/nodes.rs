//! Where the log's Merkle tree gets its nodes: stored ones from sealed
//! segments' Merkle sections (nodes of level `MERKLE_LEVEL` and up, and the
//! frontiers at each segment's bounds), ones a live segment's readers have
//! built, and below those, leaves hashed from the records themselves.

use std::collections::HashMap;

use super::frontier::{frame_leaf, Frontier};
use super::tree::{node_hash, split, Hash, Nodes};
use crate::error::{Error, Result};
use crate::format::{MerkleSection, HEADER_BYTES, MERKLE_LEVEL};
use crate::segment::{ActiveSegment, Segment};
use crate::snapshot::Snapshot;

/// The nodes a live segment's records complete, as far as they have been
/// hashed (levels from `MERKLE_LEVEL` up; lower ones are rehashed).
#[derive(Default)]
pub(crate) struct LiveNodes {
    /// The frontier after the records hashed so far, and where the next
    /// frame starts; `None` until first asked.
    at: Option<(Frontier, u64)>,
    nodes: HashMap<(u32, u64), Hash>,
}

/// Whether the perfect subtree `j` of level `h` is one of the frontier of a
/// tree of `size` leaves, and if so its position in that frontier.
fn frontier_position(size: u64, h: u32, j: u64) -> Option<usize> {
    let on = h < 64 && size >> h & 1 == 1 && (h == 63 || j == (size >> (h + 1)) << 1);
    on.then(|| (size >> h >> 1).count_ones() as usize)
}

/// A node from a Merkle section: kept, or one of its two frontiers.
fn from_section(m: &MerkleSection<'_>, base: u64, end: u64, h: u32, j: u64) -> Option<Hash> {
    if let Some(x) = m.node(h, j) {
        return Some(x);
    }
    if let Some(i) = frontier_position(end, h, j) {
        return m.frontier_end().get(i).copied();
    }
    frontier_position(base, h, j).and_then(|i| m.frontier_start().get(i).copied())
}

/// The log's tree as a snapshot sees it.
pub(crate) struct LogNodes<'s> {
    pub(crate) snap: &'s Snapshot,
}

impl LogNodes<'_> {
    /// The frontier of the first `size` leaves.
    pub(crate) fn frontier(&mut self, size: u64) -> Result<Frontier> {
        let mut hashes = Vec::new();
        let mut at = 0;
        for h in (0..64u32).rev().filter(|h| size >> h & 1 == 1) {
            hashes.push(self.range(at, at + (1 << h))?);
            at += 1 << h;
        }
        Frontier::from_hashes(size, &hashes).ok_or_else(|| Error::corrupt("", 0, "frontier out of shape"))
    }

    /// Node `j` of level `h`, if something keeps it.
    fn stored(&mut self, h: u32, j: u64) -> Result<Option<Hash>> {
        let last = ((j + 1) << h) - 1;
        let snap = self.snap;
        let Some(i) = snap.segment_of(last) else {
            // Before the log's first segment (retention): the first one's
            // frontier at its start covers every subtree a proof of later
            // leaves can need from there.
            return Ok(match snap.segments().first() {
                Some(first) if last < first.base_seq() => {
                    let first = snap.sealed_ready(0)?;
                    first.and_then(|s| s.merkle().and_then(|m| from_section(&m, s.base_seq, s.end_seq, h, j)))
                }
                _ => None,
            });
        };
        match &snap.segments()[i] {
            Segment::Live(a) => self.live(i, a, h, j),
            _ => {
                let Some(s) = snap.sealed_ready(i)? else { return Ok(None) };
                Ok(s.merkle().and_then(|m| from_section(&m, s.base_seq, s.end_seq, h, j)))
            }
        }
    }

    /// Node `j` of level `h` (at least `MERKLE_LEVEL`) completed by live
    /// segment `i`, hashing its records up to the node's last leaf first.
    fn live(&mut self, i: usize, a: &ActiveSegment, h: u32, j: u64) -> Result<Option<Hash>> {
        if h < MERKLE_LEVEL {
            return Ok(None);
        }
        let last = ((j + 1) << h) - 1;
        let mut t = a.merkle.lock().unwrap_or_else(|p| p.into_inner());
        if t.at.is_none() {
            // The frontier at the segment's start: from the segments before.
            drop(t);
            let start = self.frontier(a.base_seq)?;
            t = a.merkle.lock().unwrap_or_else(|p| p.into_inner());
            t.at.get_or_insert((start, HEADER_BYTES));
        }
        if let Some(x) = t.nodes.get(&(h, j)) {
            return Ok(Some(*x));
        }
        let view = self.snap.view_ready(i)?;
        let t = &mut *t;
        let Some((frontier, off)) = t.at.as_mut() else { return Ok(None) };
        while frontier.size() <= last {
            let Some(f) = view.next_frame(*off, frontier.size(), true)? else { break };
            *off += f.padded_len;
            let nodes = &mut t.nodes;
            frontier.push(frame_leaf(&f), |level, index, hash| {
                if level >= MERKLE_LEVEL {
                    nodes.insert((level, index), *hash);
                }
            });
        }
        Ok(t.nodes.get(&(h, j)).copied())
    }

    /// `MTH` of leaves `lo..hi` from the records, read in order.
    fn by_records(&mut self, lo: u64, hi: u64) -> Result<Hash> {
        let mut f = Frontier::default();
        let mut next = lo;
        for r in self.snap.iter_from(lo) {
            let r = r.map_err(|e| match e {
                Error::Truncated { .. } | Error::Missing { .. } => Error::ProofUnavailable { what: e.to_string() },
                e => e,
            })?;
            if r.seq() != next {
                return Err(Error::ProofUnavailable { what: format!("record {next} is not in the log") });
            }
            f.push(r.leaf_hash(), |_, _, _| {});
            next += 1;
            if next == hi {
                // The frontier of leaves `lo..hi` folds to their `MTH` (the
                // leaf indices only shift by `lo`).
                return Ok(f.root());
            }
        }
        Err(Error::ProofUnavailable { what: format!("records {next}..{hi} are not in view") })
    }

    /// The hash of leaf `seq`, from its record.
    fn leaf(&mut self, seq: u64) -> Result<Hash> {
        let got = self.snap.get(seq).map_err(|e| match e {
            Error::Truncated { .. } | Error::Missing { .. } => {
                Error::ProofUnavailable { what: format!("record {seq} is gone ({e}) and no node the log kept covers it") }
            }
            e => e,
        })?;
        match got {
            Some(r) => Ok(r.leaf_hash()),
            None => Err(Error::ProofUnavailable {
                what: format!(
                    "record {seq} is not in the log (compaction removed it, or it is not written yet), and a proof needs its hash"
                ),
            }),
        }
    }
}

impl Nodes for LogNodes<'_> {
    fn range(&mut self, lo: u64, hi: u64) -> Result<Hash> {
        let n = hi - lo;
        if n.is_power_of_two() && lo.is_multiple_of(n) {
            let h = n.trailing_zeros();
            if let Some(x) = self.stored(h, lo >> h)? {
                return Ok(x);
            }
            if n == 1 {
                return self.leaf(lo);
            }
        }
        // Below the kept levels: the records in one pass (a lookup per
        // record costs about as much as hashing it). Where records are
        // missing (compaction), nodes kept at the segments' bounds may
        // still stand for them: go down the tree instead.
        if n <= 1 << MERKLE_LEVEL {
            match self.by_records(lo, hi) {
                Err(Error::ProofUnavailable { .. }) => {}
                other => return other,
            }
        }
        let k = split(n);
        Ok(node_hash(&self.range(lo, lo + k)?, &self.range(lo + k, hi)?))
    }
}

/// The Merkle section of a segment starting at `base` with `frames`, its
/// tree continuing `frontier` (which must cover `base` leaves): returns the
/// section's bytes and moves `frontier` to the segment's end. On a frame
/// that does not decode, `(offset, what)`.
pub(crate) fn merkle_section(frontier: &mut Frontier, frames: &[u8], base: u64) -> std::result::Result<Vec<u8>, (u64, String)> {
    if frontier.size() != base {
        return Err((HEADER_BYTES, format!("Merkle frontier covers {} leaves, the segment starts at {base}", frontier.size())));
    }
    let start = frontier.hashes();
    let mut levels: Vec<Vec<Hash>> = Vec::new();
    let mut off = 0u64;
    while let Ok(f) = crate::format::decode_frame(frames, off, false) {
        if f.seq != frontier.size() {
            return Err((HEADER_BYTES + off, format!("expected seq {}, found {}", frontier.size(), f.seq)));
        }
        off += f.padded_len;
        frontier.push(frame_leaf(&f), |level, _, hash| {
            if level >= MERKLE_LEVEL {
                let l = (level - MERKLE_LEVEL) as usize;
                if levels.len() <= l {
                    levels.resize_with(l + 1, Vec::new);
                }
                levels[l].push(*hash);
            }
        });
        if off as usize >= frames.len() {
            break;
        }
    }
    let nodes: Vec<Hash> = levels.concat();
    Ok(crate::format::encode_merkle_section(&start, &frontier.hashes(), &nodes))
}
