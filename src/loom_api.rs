//! Hooks for the loom models in `loom-tests/`, compiled only under
//! `--cfg loom`. They drive the engine's own publication code — the writer's
//! frame writing and `Release` publication, rotation's state publication,
//! the sealer's swap, retention, snapshots, readers, the tail wake-up and
//! the preparer's populator beside the header write —
//! over tiny segments, so that loom explores their interleavings. Nothing
//! here re-implements a protocol; each function is a thin call into the
//! module that owns it.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use memmap2::MmapRaw;
use zerocopy::IntoBytes;

use crate::format::{align_up, segment_file_name, SegmentHeader, FRAME_HEADER_BYTES, HEADER_BYTES};
use crate::fs::FileSystem;
use crate::lifecycle::seal;
use crate::options::Options;
use crate::raw::MapWriter;
use crate::retention::{apply, Retention};
use crate::segment::{ActiveSegment, Segment};
use crate::shared::Shared;
use crate::snapshot::{Snapshot, State};
use crate::sync::Arc;
use crate::writer::{Entry, WriterCore, WriterState};

/// A file system whose syncs do nothing: the models check memory ordering,
/// not durability, and must stay fast.
#[derive(Debug)]
struct NoSyncFs;

impl FileSystem for NoSyncFs {
    fn sync_file(&self, _: &File) -> io::Result<()> {
        Ok(())
    }
    fn sync_map(&self, _: &MmapRaw, _: usize, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn sync_dir(&self, _: &Path) -> io::Result<()> {
        Ok(())
    }
}

/// Length of a segment file with room for `frame_bytes` of frames and,
/// as the engine preallocates it, for its footer past them.
fn file_bytes(frame_bytes: u64) -> u64 {
    crate::format::segment_file_bytes((HEADER_BYTES + frame_bytes).next_multiple_of(HEADER_BYTES))
}

/// The writer's side of one segment: the engine's `WriterCore`.
pub struct SegmentWriter {
    core: WriterCore,
}

impl SegmentWriter {
    /// A segment starting at `base_seq` with room for `frame_bytes` of
    /// frames, over an anonymous mapping (it cannot be sealed).
    pub fn anonymous(base_seq: u64, frame_bytes: u64) -> SegmentWriter {
        let map = MapWriter::anonymous(file_bytes(frame_bytes)).expect("anonymous mapping");
        let file = File::open("/dev/null").expect("open /dev/null");
        SegmentWriter::over(PathBuf::from(format!("anonymous-{base_seq}")), file, map, base_seq)
    }

    /// A segment file in `dir` (so that it can be sealed and retained).
    pub fn file(dir: &Path, base_seq: u64, frame_bytes: u64) -> SegmentWriter {
        let path = dir.join(segment_file_name(base_seq));
        let file = std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&path).expect("create segment");
        file.set_len(file_bytes(frame_bytes)).expect("size segment");
        let map = MapWriter::create(&file, file_bytes(frame_bytes)).expect("map segment");
        SegmentWriter::over(path, file, map, base_seq)
    }

    fn over(path: PathBuf, file: File, mut map: MapWriter, base_seq: u64) -> SegmentWriter {
        let header = SegmentHeader::new(base_seq, 0, map.shared().len());
        map.write_header(header.as_bytes());
        let seg = Arc::new(ActiveSegment::new(path, file, map.shared().clone(), base_seq));
        // No preparer runs in a model: rotation is driven by `LogState::rotate`.
        let (_, ready) = crossbeam_channel::bounded(1);
        SegmentWriter { core: WriterCore { seg, map, st: WriterState::fresh(), ready, unsynced_bytes: 0 } }
    }

    /// Appends and publishes one record (timestamp = seq); returns its seq.
    pub fn append(&mut self, payload: &[u8]) -> u64 {
        self.assert_room(&[payload]);
        let seq = self.next_seq();
        self.core.append_one(&Entry::new(payload), seq, 0)
    }

    /// Appends `payloads` as one batch, published with one store.
    pub fn append_batch(&mut self, payloads: &[&[u8]]) {
        self.assert_room(payloads);
        let now = self.next_seq();
        self.core.append_frames(payloads.iter().map(|p| Entry::new(p)), payloads.len(), now);
    }

    /// Models rotate explicitly; a record that does not fit is a model bug.
    fn assert_room(&self, payloads: &[&[u8]]) {
        let bytes: u64 = payloads.iter().map(|p| align_up(FRAME_HEADER_BYTES + p.len() as u64)).sum();
        assert!(self.core.st.tail + bytes <= self.core.seg.capacity(), "model segment too small");
    }

    /// Appends one record like [`SegmentWriter::append`]; returns its seq
    /// and the end of its frame in the segment.
    pub fn append_at(&mut self, payload: &[u8]) -> (u64, u64) {
        let seq = self.append(payload);
        (seq, self.core.st.tail)
    }

    /// The seq the next append gets.
    pub fn next_seq(&self) -> u64 {
        self.core.seg.base_seq + self.core.st.count
    }
}

/// The preparer's populate-ahead hand-over: a populator of a new segment's
/// map is dropped on another thread while the writer writes the segment's
/// header, whose check counts every other holder of the map as a populator
/// (`MapWriter::write_header`). Panics if that check sees a foreign holder.
pub fn header_beside_a_populator() {
    let mut map = MapWriter::anonymous(file_bytes(256)).expect("anonymous mapping");
    let populator = map.populator();
    let preparer = loom::thread::spawn(move || drop(populator));
    let header = SegmentHeader::new(0, 0, map.shared().len());
    map.write_header(header.as_bytes());
    preparer.join().expect("preparer thread");
}

/// The live key table (`keys/live.rs`): the writer inserts three entries
/// for one key (all in one bucket) while a reader looks the key up. Panics
/// if the reader reaches an entry before it was written, or sees the
/// entries out of order or with gaps (every lookup must return a newest-first
/// run ending at the oldest insert).
pub fn key_table_beside_a_reader() {
    let keys = Arc::new(crate::keys::LiveKeys::new(4 * HEADER_BYTES));
    let offsets = [HEADER_BYTES, HEADER_BYTES + 64, HEADER_BYTES + 128];
    let reader_keys = keys.clone();
    let reader = loom::thread::spawn(move || {
        let got: Vec<u64> = reader_keys.lookup(7, u64::MAX).collect();
        let want: Vec<u64> = offsets[..got.len()].iter().rev().copied().collect();
        assert_eq!(got, want, "a lookup saw a torn or out-of-order chain");
    });
    for off in offsets {
        keys.insert(7, off);
    }
    reader.join().expect("reader thread");
    let all: Vec<u64> = keys.lookup(7, u64::MAX).collect();
    assert_eq!(all, offsets.iter().rev().copied().collect::<Vec<_>>());
}

/// The log's key filter (`keys/log_filter.rs`): the sealer adds a sealed
/// segment's key hashes to the filter and then publishes a state naming
/// it, while a reader loads the state. Panics if a reader finds the filter
/// in a state without the keys.
pub fn key_filter_beside_a_reader() {
    use crate::keys::log_filter::{insert_then_publish, LogFilter};
    type Published = Option<std::sync::Arc<LogFilter>>;
    let filter = std::sync::Arc::new(LogFilter::with_capacity(1));
    let cell: Arc<crate::sync::SnapshotCell<Published>> = Arc::new(crate::sync::SnapshotCell::new(Arc::new(None)));
    let (reader_cell, hashes) = (cell.clone(), [0x1234_5678_9abc_def0_u64, 42]);
    let reader = loom::thread::spawn(move || {
        if let Some(f) = &*reader_cell.load() {
            assert!(hashes.iter().all(|&h| f.may_contain(h)), "a published key filter lacks a sealed segment's key");
        }
    });
    insert_then_publish(&filter, hashes.into_iter(), || cell.store(Arc::new(Some(filter.clone()))));
    reader.join().expect("reader thread");
}

/// A segment the writer rotated away from, waiting to be sealed.
pub struct RotatedSegment(Arc<ActiveSegment>);

/// What the log shares between writer, readers and background work: the
/// engine's `Shared` (snapshot cell, publication lock, tail waiters).
pub struct LogState {
    shared: Arc<Shared>,
}

impl LogState {
    /// A log in `dir` whose only segment is `first`'s.
    pub fn new(dir: &Path, first: &SegmentWriter) -> LogState {
        let state = State::new(vec![Segment::Live(first.core.seg.clone())]);
        let opts = Options::new().file_system(std::sync::Arc::new(NoSyncFs));
        LogState { shared: Arc::new(Shared::new(dir.to_path_buf(), opts, state, 0, [0; 32])) }
    }

    /// Another handle to the same log, for another thread.
    pub fn handle(&self) -> LogState {
        LogState { shared: self.shared.clone() }
    }

    /// What a reader sees now (`Log::snapshot`).
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::new(self.shared.state.load())
    }

    /// Rotation: publishes `next` as the new active segment and makes
    /// `writer` write there (the writer's own rotation step).
    pub fn rotate(&self, writer: &mut SegmentWriter, next: SegmentWriter) -> RotatedSegment {
        let SegmentWriter { core } = next;
        RotatedSegment(writer.core.install(&self.shared, core.seg, core.map))
    }

    /// Seals a rotated-away file segment and publishes it as sealed (the
    /// background sealer's step).
    pub fn seal(&self, seg: RotatedSegment) {
        let sealed = seal(self.shared.fs(), &seg.0, [0; 32], None, &|| Ok(())).expect("seal");
        crate::log::publish_sealed(&self.shared, &seg.0, sealed, None);
    }

    /// Removes the leading sealed segments holding only seqs below `seq`
    /// (a retention pass); returns how many went.
    pub fn retain_below(&self, seq: u64) -> usize {
        apply(&self.shared, &Retention::new().min_seq(seq)).expect("retention").removed.len()
    }

    /// Group commit (`Ingest::append_durable` after its append): returns
    /// once a completed sync covers `seq`.
    pub fn sync_through(&self, seq: u64) {
        self.shared.sync_through(seq).expect("sync");
    }

    /// Bytes of the first segment a completed sync has flushed.
    pub fn synced_end(&self) -> u64 {
        match &self.shared.state.load().segments[0] {
            Segment::Live(a) => a.synced_end.load(crate::sync::Ordering::Acquire),
            Segment::Sealed(_) | Segment::Remote(_) => u64::MAX,
        }
    }

    /// The writer's wake-up of parked tails, called after a publication.
    pub fn wake_tails(&self) {
        self.shared.tail_waiters.wake();
    }

    /// One poll of an async tail waiting for record `seq` (what
    /// `TailStream::poll_next` does when it finds nothing): `true` if a
    /// snapshot shows it, else `waker`, registered under `id`, is woken by
    /// the writer's next `wake_tails`.
    pub fn poll_for(&self, id: u64, seq: u64, waker: &std::task::Waker) -> bool {
        self.shared.tail_waiters.poll_ready(id, waker, || self.snapshot().next_seq() > seq)
    }

    /// Tails waiting now: parked threads and registered async wakers.
    pub fn waiting(&self) -> usize {
        self.shared.tail_waiters.parked()
    }

    /// Drops an async tail's registration (its stream was dropped).
    pub fn forget_waker(&self, id: u64) {
        self.shared.tail_waiters.deregister(id);
    }

    /// Parks like a tail until a snapshot shows a record with seq `seq`
    /// (under loom a lost wake-up is a deadlock, which loom reports).
    pub fn wait_for(&self, seq: u64) {
        let ready = self.shared.tail_waiters.wait_until(|| self.snapshot().next_seq() > seq, None);
        assert!(ready, "a wait without deadline returned unready");
    }
}
