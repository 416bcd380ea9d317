//! A named consumer's position file: two checksummed slots, written in
//! turn, so a torn write leaves the other slot's position intact.
//!
//! Layout (`docs/format.md`, "Consumer positions"): the file is
//! [`FILE_BYTES`] long; slot `k` starts at `k * SLOT_STRIDE` and holds
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `VVCP` |
//! | 4 | 2 | version (1), little-endian like every field |
//! | 6 | 2 | zero |
//! | 8 | 8 | generation: one more than the slot written before |
//! | 16 | 8 | position: the seq the consumer reads next |
//! | 24 | 8 | commit time, microseconds since the Unix epoch |
//! | 32 | 12 | zero |
//! | 44 | 4 | CRC32C of bytes 0..44 |
//!
//! The valid slot with the higher generation is the committed position; a
//! file with no valid slot was created but never committed to.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

/// Bytes of one slot.
const SLOT_BYTES: usize = 48;
/// Distance between slots: each in a sector of its own.
const SLOT_STRIDE: u64 = 512;
/// Length of a position file.
pub(crate) const FILE_BYTES: u64 = 2 * SLOT_STRIDE;
const MAGIC: &[u8; 4] = b"VVCP";
const VERSION: u16 = 1;
/// The subdirectory of the log directory that holds position files.
pub(crate) const DIR_NAME: &str = "consumers";
/// Suffix of a position file's name (`<consumer name>.pos`).
pub(crate) const SUFFIX: &str = ".pos";
/// Longest consumer name, in bytes.
pub const MAX_NAME_BYTES: usize = 64;

/// A committed position as stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Slot {
    pub(crate) generation: u64,
    pub(crate) position: u64,
    pub(crate) committed_at_us: u64,
}

impl Slot {
    fn encode(&self) -> [u8; SLOT_BYTES] {
        let mut b = [0u8; SLOT_BYTES];
        b[0..4].copy_from_slice(MAGIC);
        b[4..6].copy_from_slice(&VERSION.to_le_bytes());
        b[8..16].copy_from_slice(&self.generation.to_le_bytes());
        b[16..24].copy_from_slice(&self.position.to_le_bytes());
        b[24..32].copy_from_slice(&self.committed_at_us.to_le_bytes());
        let crc = crc32c::crc32c(&b[..44]);
        b[44..48].copy_from_slice(&crc.to_le_bytes());
        b
    }

    fn decode(b: &[u8]) -> Option<Slot> {
        let b: &[u8; SLOT_BYTES] = b.get(..SLOT_BYTES)?.try_into().ok()?;
        let u64_at = |o: usize| u64::from_le_bytes(b[o..o + 8].try_into().unwrap_or_default());
        let crc = u32::from_le_bytes([b[44], b[45], b[46], b[47]]);
        let version = u16::from_le_bytes([b[4], b[5]]);
        (&b[0..4] == MAGIC && version == VERSION && crc32c::crc32c(&b[..44]) == crc).then(|| Slot {
            generation: u64_at(8),
            position: u64_at(16),
            committed_at_us: u64_at(24),
        })
    }
}

/// Checks a consumer name: 1 to [`MAX_NAME_BYTES`] bytes of ASCII letters,
/// digits, `-`, `_` and `.`, not starting with `.`.
pub(crate) fn check_name(name: &str) -> Result<()> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > MAX_NAME_BYTES {
        Some("it is longer than 64 bytes")
    } else if name.starts_with('.') {
        Some("it starts with '.'")
    } else if !name.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.')) {
        Some("only ASCII letters, digits, '-', '_' and '.' are allowed")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(Error::InvalidConsumerName { name: name.to_string(), reason }),
        None => Ok(()),
    }
}

/// The position file of consumer `name` of the log in `dir`.
pub(crate) fn path(dir: &Path, name: &str) -> PathBuf {
    dir.join(DIR_NAME).join(format!("{name}{SUFFIX}"))
}

/// The newest valid slot of a position file's bytes, if any.
pub(crate) fn newest(bytes: &[u8]) -> Option<Slot> {
    let slot = |k: u64| bytes.get(usize::try_from(k * SLOT_STRIDE).ok()?..).and_then(Slot::decode);
    match (slot(0), slot(1)) {
        (Some(a), Some(b)) => Some(if b.generation > a.generation { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// The committed slot of a position file's bytes: `None` if nothing was
/// committed (all zeros), a corruption error if bytes are there but no slot
/// is valid.
fn committed_in(path: &Path, bytes: &[u8]) -> Result<Option<Slot>> {
    match newest(bytes) {
        Some(slot) => Ok(Some(slot)),
        None => match bytes.iter().position(|&b| b != 0) {
            None => Ok(None),
            Some(at) => Err(Error::corrupt(path, at as u64, "consumer position file has no valid slot")),
        },
    }
}

/// Reads the committed slot of the position file at `path` without
/// locking it (for listings and retention).
pub(crate) fn read(path: &Path) -> Result<Option<Slot>> {
    // Without the lock a read can overlap commits; two of them in one read
    // could show both slots torn. Damage is reported only if it stays.
    let mut attempts = 0;
    loop {
        let bytes = std::fs::read(path).map_err(|e| Error::io("read consumer position", path, e))?;
        match committed_in(path, &bytes) {
            Err(_) if attempts < 3 => {
                attempts += 1;
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            other => return other,
        }
    }
}

/// An open position file, locked for its consumer.
#[derive(Debug)]
pub(crate) struct PositionFile {
    file: File,
    path: PathBuf,
    last: Option<Slot>,
}

impl PositionFile {
    /// Opens (creating if needed) and locks the position file of `name`,
    /// and reads its committed slot.
    pub(crate) fn open(dir: &Path, name: &str) -> Result<PositionFile> {
        let (file, path) = lock(dir, name)?;
        let mut bytes = vec![0u8; FILE_BYTES as usize];
        let n = read_fully_at(&file, &mut bytes).map_err(|e| Error::io("read consumer position", &path, e))?;
        bytes.truncate(n);
        let last = committed_in(&path, &bytes)?;
        Ok(PositionFile { file, path, last })
    }

    /// The committed slot, if anything was committed.
    pub(crate) fn committed(&self) -> Option<Slot> {
        self.last
    }

    /// Stores `position` in the slot not holding the committed one; with
    /// `sync`, also makes it durable (fdatasync) before returning.
    pub(crate) fn store(&mut self, position: u64, now_us: u64, sync: bool) -> Result<()> {
        let generation = match self.last {
            None => 1,
            Some(s) => s
                .generation
                .checked_add(1)
                .ok_or_else(|| Error::corrupt(&self.path, 8, "consumer position generation is at its maximum"))?,
        };
        let slot = Slot { generation, position, committed_at_us: now_us };
        let at = (generation % 2) * SLOT_STRIDE;
        self.file.write_all_at(&slot.encode(), at).map_err(|e| Error::io("write consumer position", &self.path, e))?;
        if sync {
            self.file.sync_data().map_err(|e| Error::io("sync consumer position", &self.path, e))?;
        }
        self.last = Some(slot);
        Ok(())
    }

    /// Makes the last stored position durable.
    pub(crate) fn sync(&self) -> Result<()> {
        self.file.sync_data().map_err(|e| Error::io("sync consumer position", &self.path, e))
    }

    /// The file's path.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// Opens (creating if needed) and locks the position file of `name`,
/// without reading it (removal needs no valid content).
pub(crate) fn lock(dir: &Path, name: &str) -> Result<(File, PathBuf)> {
    check_name(name)?;
    let sub = dir.join(DIR_NAME);
    if !sub.is_dir() {
        std::fs::create_dir_all(&sub).map_err(|e| Error::io("create consumers directory", &sub, e))?;
        sync_dir(dir)?;
    }
    let path = path(dir, name);
    // A remover may unlink the file between our open and our lock; the lock
    // is then on a file no one else will find. Retry on the new file.
    for _ in 0..8 {
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io("open consumer position", &path, e))?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive).map_err(|e| match e {
            rustix::io::Errno::WOULDBLOCK => Error::ConsumerBusy { name: name.to_string(), path: path.clone() },
            e => Error::io("lock consumer position", &path, e.into()),
        })?;
        let same = match (file.metadata(), std::fs::metadata(&path)) {
            (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
            _ => false,
        };
        if !same {
            continue;
        }
        if !existed {
            // A new file is all zeros (no valid slot yet); its name survives
            // a machine crash once the directory is synced.
            file.set_len(FILE_BYTES).map_err(|e| Error::io("size consumer position", &path, e))?;
            file.sync_all().map_err(|e| Error::io("sync consumer position", &path, e))?;
            sync_dir(&sub)?;
        }
        return Ok((file, path));
    }
    Err(Error::ConsumerBusy { name: name.to_string(), path })
}

fn read_fully_at(file: &File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], n as u64) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io("sync directory", dir, e))
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn the_newest_valid_slot_wins_and_a_torn_one_is_ignored() {
        // Goal: a torn write of one slot leaves the previous commit. Method:
        // write generations 1 and 2, then damage each slot in turn.
        let a = Slot { generation: 1, position: 10, committed_at_us: 5 }.encode();
        let b = Slot { generation: 2, position: 20, committed_at_us: 6 }.encode();
        let mut file = vec![0u8; FILE_BYTES as usize];
        assert_eq!(newest(&file), None);
        file[512..512 + SLOT_BYTES].copy_from_slice(&a);
        file[..SLOT_BYTES].copy_from_slice(&b);
        assert_eq!(newest(&file).map(|s| s.position), Some(20));
        file[20] ^= 1;
        assert_eq!(newest(&file).map(|s| s.position), Some(10));
        file[512 + 3] ^= 1;
        assert_eq!(newest(&file), None);
        assert_eq!(newest(&file[..100]), None, "a short file is read without a panic");
    }

    #[test]
    fn a_generation_at_its_maximum_is_damage_not_a_panic() {
        // Goal: no overflow on bytes from disk. Method: a valid slot with
        // generation u64::MAX, then a commit.
        let dir = tempfile::tempdir().unwrap();
        drop(PositionFile::open(dir.path(), "g").unwrap());
        let slot = Slot { generation: u64::MAX, position: 3, committed_at_us: 1 }.encode();
        std::fs::write(path(dir.path(), "g"), slot).unwrap();
        let mut f = PositionFile::open(dir.path(), "g").unwrap();
        assert_eq!(f.committed().map(|s| s.position), Some(3));
        assert!(f.store(4, 2, false).unwrap_err().is_corruption());
    }

    #[test]
    fn names_are_checked() {
        for bad in ["", ".hidden", "a/b", "a b", &"x".repeat(65), "é"] {
            assert!(matches!(check_name(bad), Err(Error::InvalidConsumerName { .. })), "{bad:?}");
        }
        for good in ["billing", "a.b-c_d", &"x".repeat(64)] {
            check_name(good).unwrap();
        }
    }
}
