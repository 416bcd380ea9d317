//! Checkpoints: roots recorded durably in the log's directory, for later
//! verification from a trusted point and for anchoring elsewhere.
//!
//! `<dir>/checkpoints` holds one 64-byte entry per checkpoint, appended and
//! synced: the 48-byte checkpoint (`encoding.rs`), 12 zero bytes, and the
//! CRC32C of the 60 bytes before it. An entry cut short by a crash at the
//! end of the file is ignored; a damaged entry before the last is an error
//! naming its offset.

use std::io::Write;
use std::path::Path;

use super::{Checkpoint, Root};
use crate::error::{Error, Result};
use crate::log::Log;
use crate::verify::VerifyReport;

/// Name of the checkpoints file in a log's directory.
pub(crate) const CHECKPOINTS_FILE: &str = "checkpoints";
const ENTRY: usize = 64;

fn encode(cp: &Checkpoint) -> [u8; ENTRY] {
    let mut e = [0u8; ENTRY];
    e[..48].copy_from_slice(&cp.to_bytes());
    let crc = crc32c::crc32c(&e[..60]);
    e[60..].copy_from_slice(&crc.to_le_bytes());
    e
}

/// The checkpoints recorded in `dir`, oldest first.
pub(crate) fn read(dir: &Path) -> Result<Vec<Checkpoint>> {
    let path = dir.join(CHECKPOINTS_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("read checkpoints", &path, e)),
    };
    let whole = bytes.len() / ENTRY;
    let mut out = Vec::with_capacity(whole);
    for (i, e) in bytes.chunks_exact(ENTRY).enumerate() {
        let crc = u32::from_le_bytes([e[60], e[61], e[62], e[63]]);
        let good = crc == crc32c::crc32c(&e[..60]) && e[48..60] == [0; 12];
        match (good, Checkpoint::from_bytes(&e[..48])) {
            (true, Ok(cp)) => out.push(cp),
            // The last entry, torn by a crash while it was appended.
            _ if i + 1 == whole => break,
            _ => return Err(Error::corrupt(&path, (i * ENTRY) as u64, "checkpoint entry fails its checksum")),
        }
    }
    Ok(out)
}

impl Log {
    /// Records the root over every durable record in the log's directory
    /// (syncing first, so it covers every record appended so far) and
    /// returns it. Keep it elsewhere too (`Checkpoint::to_bytes`, or its
    /// hex form from `varve root --checkpoint`) to anchor the log's
    /// history; [`Log::verify_from`] checks the log against it later.
    ///
    /// ```
    /// # let dir = tempfile::tempdir()?;
    /// let log = varvelog::Log::open(dir.path(), varvelog::Options::new().proofs(true))?;
    /// log.writer()?.append(b"event")?;
    /// let checkpoint = log.checkpoint()?;
    /// assert_eq!(checkpoint.root.size, 1);
    /// assert_eq!(log.checkpoints()?, vec![checkpoint]);
    /// assert!(log.verify_from(&checkpoint).is_ok());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    ///
    /// A failed sync ([`Error::Poisoned`]), a root that cannot be computed
    /// ([`Error::ProofUnavailable`]), or [`Error::Io`] writing the file.
    pub fn checkpoint(&self) -> Result<Checkpoint> {
        let shared = self.shared();
        shared.sync_all()?;
        let snap = self.snapshot();
        let size = shared.durable_next.load(std::sync::atomic::Ordering::Acquire).min(snap.next_seq());
        let root: Root = snap.root_at(size)?;
        let cp = Checkpoint { root, time_us: crate::lifecycle::now_us() };
        let path = shared.dir.join(CHECKPOINTS_FILE);
        let mut f =
            std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(|e| Error::io("open checkpoints", &path, e))?;
        // A torn entry left by a crash would misalign the ones after it.
        let len = f.metadata().map_err(|e| Error::io("stat checkpoints", &path, e))?.len();
        if len % ENTRY as u64 != 0 {
            f.set_len(len - len % ENTRY as u64).map_err(|e| Error::io("truncate checkpoints", &path, e))?;
        }
        f.write_all(&encode(&cp)).map_err(|e| Error::io("write checkpoint", &path, e))?;
        f.sync_all().map_err(|e| Error::io("fsync checkpoints", &path, e))?;
        if len == 0 {
            shared.fs().sync_dir(&shared.dir).map_err(|e| Error::io("fsync directory", &shared.dir, e))?;
        }
        Ok(cp)
    }

    /// The checkpoints recorded so far, oldest first.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] reading the file; a corruption error naming an entry
    /// before the last that fails its checksum.
    pub fn checkpoints(&self) -> Result<Vec<Checkpoint>> {
        read(&self.shared().dir)
    }

    /// Verifies the log from a trusted checkpoint forward: the root over
    /// the checkpoint's records must still be the checkpoint's (computed
    /// from the nodes segments keep, without reading those records), and
    /// the segments after it are checked in full as [`Log::verify`] does.
    /// Cheaper than a full verify by the bytes before the checkpoint.
    #[must_use]
    pub fn verify_from(&self, checkpoint: &Checkpoint) -> VerifyReport {
        let snap = self.snapshot();
        let mut report = crate::verify::verify_snapshot_from(&snap, checkpoint.root.size, |_, _| {});
        match snap.root_at(checkpoint.root.size) {
            Ok(root) if root == checkpoint.root => {}
            Ok(root) => report.problems.insert(
                0,
                Error::corrupt(
                    &self.shared().dir,
                    0,
                    format!(
                        "the root over the first {} records is {}, the checkpoint says {}: history before the checkpoint was rewritten",
                        root.size,
                        hex(&root.hash),
                        hex(&checkpoint.root.hash)
                    ),
                ),
            ),
            Err(e) => report.problems.insert(0, e),
        }
        report
    }
}

fn hex(h: &[u8; 32]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

impl crate::ReadOnlyLog {
    /// The checkpoints recorded in the log's directory, oldest first; as
    /// [`Log::checkpoints`].
    ///
    /// # Errors
    ///
    /// As [`Log::checkpoints`]; [`Error::InvalidOptions`] for a log read from
    /// an object store.
    pub fn checkpoints(&self) -> Result<Vec<Checkpoint>> {
        read(self.local_dir()?)
    }
}
