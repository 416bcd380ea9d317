//! The manifest: one small JSON object next to the segments that says, on
//! its own, what the log in the bucket is. Written by the uploader after
//! each upload with a conditional put (so two writers cannot interleave),
//! and kept locally as `tier/manifest.json` (written, synced, renamed) so a
//! log opens without the store and knows which segments are remote.
//!
//! What it guarantees: every segment listed was uploaded and its object read
//! back and matched the segment's file hash when it was listed; the listed
//! segments are in seq order without overlap, and consecutive ones link
//! their digest chain; `generation` only grows.

use std::path::Path;

use serde_derive::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::segment::SegmentMeta;

/// The manifest's own format (not the segments').
pub(crate) const MANIFEST_VERSION: u16 = 1;
/// What the `format` field holds.
const MANIFEST_FORMAT: &str = "varvelog-tier-manifest";

/// The manifest.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Manifest {
    pub(crate) generation: u64,
    pub(crate) segments: Vec<Entry>,
}

/// One segment in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) meta: SegmentMeta,
    /// The object's key, from the store's root.
    pub(crate) key: String,
}

impl Manifest {
    /// The entry for `base_seq`, if listed.
    pub(crate) fn entry(&self, base_seq: u64) -> Option<&Entry> {
        let i = self.segments.binary_search_by_key(&base_seq, |e| e.meta.base_seq).ok()?;
        self.segments.get(i)
    }

    /// Whether the segment with `base_seq` and `digest` is listed.
    pub(crate) fn confirms(&self, base_seq: u64, digest: &[u8; 32]) -> bool {
        self.entry(base_seq).is_some_and(|e| &e.meta.digest == digest)
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        let wire = Wire {
            format: MANIFEST_FORMAT.into(),
            version: MANIFEST_VERSION,
            segment_format_version: crate::format::FORMAT_VERSION,
            generation: self.generation,
            segments: self.segments.iter().map(WireEntry::of).collect(),
        };
        // Serialising plain integers and strings cannot fail.
        serde_json::to_vec_pretty(&wire).unwrap_or_default()
    }

    /// Parses and checks a manifest read from `source` (named in errors).
    pub(crate) fn decode(bytes: &[u8], source: &Path) -> Result<Manifest> {
        let bad = |what: String| Error::corrupt(source, 0, what);
        let wire: Wire = serde_json::from_slice(bytes).map_err(|e| bad(format!("not a tier manifest: {e}")))?;
        if wire.format != MANIFEST_FORMAT {
            return Err(bad(format!("not a tier manifest (format {:?})", wire.format)));
        }
        if wire.version != MANIFEST_VERSION {
            return Err(Error::UnsupportedVersion { path: source.into(), found: wire.version, supported: MANIFEST_VERSION });
        }
        if wire.segment_format_version != crate::format::FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                path: source.into(),
                found: wire.segment_format_version,
                supported: crate::format::FORMAT_VERSION,
            });
        }
        let segments = wire
            .segments
            .iter()
            .map(|e| e.entry().map_err(|w| bad(format!("segment at seq {}: {w}", e.base_seq))))
            .collect::<Result<Vec<_>>>()?;
        for pair in segments.windows(2) {
            let (a, b) = (&pair[0].meta, &pair[1].meta);
            // A gap is the log's own (a damaged segment set aside); an
            // overlap never is.
            if b.base_seq < a.end_seq {
                return Err(bad(format!("segment at seq {} overlaps one ending at seq {}", b.base_seq, a.end_seq)));
            }
            if b.base_seq == a.end_seq && b.prev_digest != a.digest {
                return Err(bad(format!("segment at seq {} does not link to the digest of the one before", b.base_seq)));
            }
        }
        Ok(Manifest { generation: wire.generation, segments })
    }

    /// Reads the local copy in `path`; an empty manifest if there is none.
    pub(crate) fn load_local(path: &Path) -> Result<Manifest> {
        match std::fs::read(path) {
            Ok(bytes) => Manifest::decode(&bytes, path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Manifest::default()),
            Err(e) => Err(Error::io("read tier manifest", path, e)),
        }
    }

    /// Writes the local copy to `path` durably: a temporary file, synced,
    /// renamed over it, and the directory synced.
    pub(crate) fn store_local(&self, path: &Path) -> Result<()> {
        use std::io::Write;
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
        let tmp = path.with_extension("json.tmp");
        let mut f = std::fs::File::create(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
        f.write_all(&self.encode()).map_err(|e| Error::io("write", &tmp, e))?;
        f.sync_all().map_err(|e| Error::io("fsync", &tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::io("rename", path, e))?;
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io("fsync directory", dir, e))
    }
}

#[derive(Serialize, Deserialize)]
struct Wire {
    format: String,
    version: u16,
    segment_format_version: u16,
    generation: u64,
    segments: Vec<WireEntry>,
}

#[derive(Serialize, Deserialize)]
struct WireEntry {
    base_seq: u64,
    end_seq: u64,
    records: u64,
    min_ts_us: u64,
    max_ts_us: u64,
    frames_end: u64,
    last_frame_offset: u64,
    bytes: u64,
    compacted: bool,
    prev_digest: String,
    digest: String,
    content_digest: String,
    file_blake3: String,
    key: String,
}

impl WireEntry {
    fn of(e: &Entry) -> WireEntry {
        let m = &e.meta;
        WireEntry {
            base_seq: m.base_seq,
            end_seq: m.end_seq,
            records: m.count,
            min_ts_us: m.min_ts,
            max_ts_us: m.max_ts,
            frames_end: m.frames_end,
            last_frame_offset: m.last_frame_offset,
            bytes: m.file_bytes,
            compacted: m.compacted,
            prev_digest: hex::encode(m.prev_digest),
            digest: hex::encode(m.digest),
            content_digest: hex::encode(m.content_digest),
            file_blake3: hex::encode(m.file_hash),
            key: e.key.clone(),
        }
    }

    fn entry(&self) -> std::result::Result<Entry, String> {
        let digest = |name: &str, s: &str| {
            let mut out = [0u8; 32];
            hex::decode_to_slice(s, &mut out).map_err(|e| format!("{name}: {e}"))?;
            Ok::<_, String>(out)
        };
        let end_ok = self.end_seq >= self.base_seq && self.count_fits();
        let offsets_ok = self.frames_end >= crate::format::HEADER_BYTES
            && self.frames_end <= self.bytes
            && self.last_frame_offset < self.frames_end.max(1);
        if !end_ok || !offsets_ok || self.key.is_empty() {
            return Err("impossible bounds".into());
        }
        Ok(Entry {
            meta: SegmentMeta {
                base_seq: self.base_seq,
                end_seq: self.end_seq,
                count: self.records,
                min_ts: self.min_ts_us,
                max_ts: self.max_ts_us,
                frames_end: self.frames_end,
                last_frame_offset: self.last_frame_offset,
                file_bytes: self.bytes,
                compacted: self.compacted,
                prev_digest: digest("prev_digest", &self.prev_digest)?,
                digest: digest("digest", &self.digest)?,
                content_digest: digest("content_digest", &self.content_digest)?,
                file_hash: digest("file_blake3", &self.file_blake3)?,
            },
            key: self.key.clone(),
        })
    }

    fn count_fits(&self) -> bool {
        self.records <= self.end_seq - self.base_seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(base: u64, end: u64, prev: u8, digest: u8) -> Entry {
        Entry {
            meta: SegmentMeta {
                base_seq: base,
                end_seq: end,
                count: end - base,
                min_ts: 1,
                max_ts: 2,
                frames_end: 8192,
                last_frame_offset: 4096,
                file_bytes: 9000,
                compacted: false,
                prev_digest: [prev; 32],
                digest: [digest; 32],
                content_digest: [7; 32],
                file_hash: [9; 32],
            },
            key: format!("p/segments/{base:020}.seg"),
        }
    }

    #[test]
    fn a_manifest_round_trips_and_an_overlap_or_broken_chain_is_refused() {
        let path = Path::new("s3://b/p/manifest.json");
        let m = Manifest { generation: 3, segments: vec![entry(0, 10, 0, 1), entry(10, 25, 1, 2)] };
        assert_eq!(Manifest::decode(&m.encode(), path).unwrap(), m);
        let overlap = Manifest { generation: 1, segments: vec![entry(0, 10, 0, 1), entry(9, 25, 1, 2)] };
        let e = Manifest::decode(&overlap.encode(), path).unwrap_err().to_string();
        assert!(e.contains("overlaps one ending at seq 10"), "{e}");
        // A gap in the log (a damaged segment set aside) is listed as it is.
        let gap = Manifest { generation: 1, segments: vec![entry(0, 10, 0, 1), entry(11, 25, 7, 2)] };
        assert_eq!(Manifest::decode(&gap.encode(), path).unwrap(), gap);
        let unlinked = Manifest { generation: 1, segments: vec![entry(0, 10, 0, 1), entry(10, 25, 5, 2)] };
        let e = Manifest::decode(&unlinked.encode(), path).unwrap_err().to_string();
        assert!(e.contains("does not link"), "{e}");
        let e = Manifest::decode(b"{\"format\":1}", path).unwrap_err().to_string();
        assert!(e.contains("not a tier manifest"), "{e}");
    }

    #[test]
    fn entries_with_impossible_bounds_are_refused() {
        let path = Path::new("m.json");
        let mut e = entry(0, 10, 0, 1);
        e.meta.count = 11;
        let m = Manifest { generation: 1, segments: vec![e] };
        assert!(Manifest::decode(&m.encode(), path).unwrap_err().to_string().contains("impossible bounds"));
    }
}
