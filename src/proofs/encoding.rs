//! Compact binary forms of roots, proofs and checkpoints, for files,
//! command lines (as hex) and other programs; decoding never panics and
//! refuses anything but exactly the encoded length.
//!
//! ```text
//! root:        size u64 ‖ hash 32                                       40 bytes
//! inclusion:   "VVPI" ‖ version 1 ‖ seq u64 ‖ size u64 ‖ n u8 ‖ 32×n   22 + 32n
//! consistency: "VVPC" ‖ version 1 ‖ old u64 ‖ new u64 ‖ n u8 ‖ 32×n    22 + 32n
//! checkpoint:  root ‖ time_us u64                                       48 bytes
//! ```
//! Integers little-endian; `n` is at most 128 (a tree of 2^64 leaves needs
//! 64 hashes, a consistency proof up to twice that).

use super::{Checkpoint, ConsistencyProof, InclusionProof, Root};

/// Why bytes are not a root, proof or checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("not a varvelog {what}: {why}")]
pub struct DecodeError {
    what: &'static str,
    why: &'static str,
}

const VERSION: u8 = 1;
const MAX_PATH: usize = 128;

fn err(what: &'static str, why: &'static str) -> DecodeError {
    DecodeError { what, why }
}

/// Reads `N` bytes at `*at`, moving on.
fn take<const N: usize>(bytes: &[u8], at: &mut usize) -> Option<[u8; N]> {
    let b = bytes.get(*at..at.checked_add(N)?)?;
    *at += N;
    b.try_into().ok()
}

fn u64_at(bytes: &[u8], at: &mut usize) -> Option<u64> {
    take::<8>(bytes, at).map(u64::from_le_bytes)
}

impl Root {
    /// The 40-byte form.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.size.to_le_bytes().to_vec();
        out.extend_from_slice(&self.hash);
        out
    }

    /// Reads the 40-byte form.
    ///
    /// # Errors
    ///
    /// [`DecodeError`] for any other length.
    pub fn from_bytes(bytes: &[u8]) -> Result<Root, DecodeError> {
        let mut at = 0;
        let size = u64_at(bytes, &mut at).ok_or(err("root", "too short"))?;
        let hash = take::<32>(bytes, &mut at).ok_or(err("root", "too short"))?;
        if at != bytes.len() {
            return Err(err("root", "trailing bytes"));
        }
        Ok(Root { size, hash })
    }
}

fn encode_path(magic: &[u8; 4], a: u64, b: u64, path: &[[u8; 32]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(22 + 32 * path.len());
    out.extend_from_slice(magic);
    out.push(VERSION);
    out.extend_from_slice(&a.to_le_bytes());
    out.extend_from_slice(&b.to_le_bytes());
    out.push(path.len().min(MAX_PATH) as u8);
    for h in path.iter().take(MAX_PATH) {
        out.extend_from_slice(h);
    }
    out
}

fn decode_path(what: &'static str, magic: &[u8; 4], bytes: &[u8]) -> Result<(u64, u64, Vec<[u8; 32]>), DecodeError> {
    let mut at = 0;
    let short = err(what, "too short");
    if take::<4>(bytes, &mut at).ok_or(short.clone())? != *magic {
        return Err(err(what, "bad magic"));
    }
    if take::<1>(bytes, &mut at).ok_or(short.clone())?[0] != VERSION {
        return Err(err(what, "unknown version"));
    }
    let a = u64_at(bytes, &mut at).ok_or(short.clone())?;
    let b = u64_at(bytes, &mut at).ok_or(short.clone())?;
    let n = take::<1>(bytes, &mut at).ok_or(short.clone())?[0] as usize;
    if n > MAX_PATH {
        return Err(err(what, "path too long"));
    }
    let path = (0..n).map(|_| take::<32>(bytes, &mut at).ok_or(short.clone())).collect::<Result<Vec<_>, _>>()?;
    if at != bytes.len() {
        return Err(err(what, "trailing bytes"));
    }
    Ok((a, b, path))
}

impl InclusionProof {
    /// The binary form.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        encode_path(b"VVPI", self.seq, self.size, &self.path)
    }

    /// Reads the binary form.
    ///
    /// # Errors
    ///
    /// [`DecodeError`] for bytes that are not exactly one inclusion proof.
    pub fn from_bytes(bytes: &[u8]) -> Result<InclusionProof, DecodeError> {
        let (seq, size, path) = decode_path("inclusion proof", b"VVPI", bytes)?;
        Ok(InclusionProof { seq, size, path })
    }
}

impl ConsistencyProof {
    /// The binary form.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        encode_path(b"VVPC", self.old_size, self.new_size, &self.path)
    }

    /// Reads the binary form.
    ///
    /// # Errors
    ///
    /// [`DecodeError`] for bytes that are not exactly one consistency proof.
    pub fn from_bytes(bytes: &[u8]) -> Result<ConsistencyProof, DecodeError> {
        let (old_size, new_size, path) = decode_path("consistency proof", b"VVPC", bytes)?;
        Ok(ConsistencyProof { old_size, new_size, path })
    }
}

impl Checkpoint {
    /// The 48-byte form: the root, then the time it was taken.
    #[must_use]
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.root.to_bytes();
        out.extend_from_slice(&self.time_us.to_le_bytes());
        out
    }

    /// Reads the 48-byte form.
    ///
    /// # Errors
    ///
    /// [`DecodeError`] for any other length.
    pub fn from_bytes(bytes: &[u8]) -> Result<Checkpoint, DecodeError> {
        if bytes.len() != 48 {
            return Err(err("checkpoint", "not 48 bytes"));
        }
        let root = Root::from_bytes(&bytes[..40])?;
        let mut at = 40;
        let time_us = u64_at(bytes, &mut at).ok_or(err("checkpoint", "too short"))?;
        Ok(Checkpoint { root, time_us })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_round_trips_and_every_cut_or_extension_is_refused() {
        let root = Root { size: 77, hash: [3; 32] };
        let inc = InclusionProof { seq: 5, size: 77, path: vec![[1; 32], [2; 32]] };
        let con = ConsistencyProof { old_size: 9, new_size: 77, path: vec![[4; 32]; 5] };
        let cp = Checkpoint { root, time_us: 1_700_000_000_000_000 };
        assert_eq!(Root::from_bytes(&root.to_bytes()), Ok(root));
        assert_eq!(InclusionProof::from_bytes(&inc.to_bytes()), Ok(inc.clone()));
        assert_eq!(ConsistencyProof::from_bytes(&con.to_bytes()), Ok(con.clone()));
        assert_eq!(Checkpoint::from_bytes(&cp.to_bytes()), Ok(cp));
        for b in [root.to_bytes(), inc.to_bytes(), con.to_bytes(), cp.to_bytes()] {
            for cut in 0..b.len() {
                let part = &b[..cut];
                assert!(Root::from_bytes(part).is_err() || part.len() == 40);
                assert!(InclusionProof::from_bytes(part).is_err());
                assert!(ConsistencyProof::from_bytes(part).is_err());
                // Roots and checkpoints have no magic: any 40 or 48 bytes
                // are one, so only their own cuts are checked.
                assert!(Checkpoint::from_bytes(part).is_err() || part.len() == 48);
            }
            let mut longer = b.clone();
            longer.push(0);
            assert!(InclusionProof::from_bytes(&longer).is_err() && ConsistencyProof::from_bytes(&longer).is_err());
        }
        assert!(InclusionProof::from_bytes(&con.to_bytes()).is_err(), "kinds are told apart");
    }
}
