//! One adapter per engine, each used the way its documentation recommends
//! for throughput (its batch API for batches, its own durable path for syncs).

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use crate::Res;

/// What an engine can be asked to do.
pub trait Peer {
    /// Accepts one record through the engine's fastest non-durable path.
    fn append(&mut self, payload: &[u8]) -> Res<()>;
    /// Accepts records through the engine's batch API.
    fn append_batch(&mut self, payloads: &[&[u8]]) -> Res<()>;
    /// Hands everything accepted so far to the OS (no fsync).
    fn flush(&mut self) -> Res<()>;
    /// Accepts `payloads` and makes everything durable (fdatasync or equivalent).
    fn append_durable(&mut self, payloads: &[&[u8]]) -> Res<()>;
    /// Reads every record back; returns how many.
    fn scan(&mut self) -> Res<u64>;
}

/// The engines the harness knows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    Varvelog,
    Raft,
    Commitlog,
    OpenWal,
    Okaywal,
    Fjall,
    FileFloor,
}

impl Engine {
    pub const ALL: [Engine; 7] =
        [Engine::Varvelog, Engine::Raft, Engine::Commitlog, Engine::OpenWal, Engine::Okaywal, Engine::Fjall, Engine::FileFloor];

    pub fn name(self) -> &'static str {
        match self {
            Engine::Varvelog => "varvelog",
            Engine::Raft => "raft-engine 0.4",
            Engine::Commitlog => "commitlog 0.2",
            Engine::OpenWal => "open-wal 0.2",
            Engine::Okaywal => "okaywal 0.3",
            Engine::Fjall => "fjall 3",
            Engine::FileFloor => "File+BufWriter+fdatasync",
        }
    }

    pub fn parse(s: &str) -> Option<Engine> {
        Engine::ALL.into_iter().find(|e| e.name().split_whitespace().next() == Some(s) || e.name() == s)
    }

    /// Whether its sync really reaches the disk.
    pub fn durable(self) -> bool {
        self != Engine::Commitlog
    }

    /// Whether it has a non-durable write path (okaywal commits are always synced).
    pub fn has_nondurable_append(self) -> bool {
        self != Engine::Okaywal
    }

    /// Whether records can be read back without reopening.
    pub fn can_scan(self) -> bool {
        self != Engine::Okaywal
    }

    /// How the adapter uses the engine, for the report.
    pub fn notes(self) -> &'static str {
        match self {
            Engine::Varvelog => "Writer::append / append_batch; sync = Writer::sync (msync), durable rows with Options::zero_fill; scan = Snapshot::iter (CRC verified)",
            Engine::Raft => {
                "one region, entries as protobuf BytesValue; append = write(LogBatch, false); durable = write(batch, true) \
                 (Engine::sync() is a no-op); scan = fetch_entries_to in chunks"
            }
            Engine::Commitlog => "append_msg / append(MessageBuf); flush() does not fsync data: excluded from durable rows",
            Engine::OpenWal => "append buffers in memory; flush/durable = commit (write + fdatasync): it has no write without fsync",
            Engine::Okaywal => {
                "every commit is fsynced (no non-durable path); a batch = one entry of N chunks; checkpoint threshold raised to \
                 1 TiB so it keeps data; read back only through recovery on reopen"
            }
            Engine::Fjall => "keyspace insert (journal PersistMode::Buffer); batch = WriteBatch; durable = persist(SyncData); LZ4 on",
            Engine::FileFloor => "length+CRC32C frames through a 64 KiB BufWriter; durable = flush + fdatasync; scan = BufReader",
        }
    }
}

/// Opens `engine` in `dir` for the durable rows: as [`open`], except that
/// varvelog is opened as its documentation recommends for a writer that
/// syncs by hand (`Options::zero_fill`).
pub fn open_for_syncing(engine: Engine, dir: &Path) -> Res<Box<dyn Peer>> {
    if engine == Engine::Varvelog {
        std::fs::create_dir_all(dir)?;
        return Ok(Box::new(Varve::open_with(dir, varvelog::Options::new().zero_fill(true))?));
    }
    open(engine, dir)
}

/// Opens (creating or recovering) `engine` in `dir`.
pub fn open(engine: Engine, dir: &Path) -> Res<Box<dyn Peer>> {
    std::fs::create_dir_all(dir)?;
    Ok(match engine {
        Engine::Varvelog => Box::new(Varve::open(dir)?),
        Engine::Raft => Box::new(Raft::open(dir)?),
        Engine::Commitlog => Box::new(CLog::open(dir)?),
        Engine::OpenWal => Box::new(OWal::open(dir)?),
        Engine::Okaywal => Box::new(Okay::open(dir)?),
        Engine::Fjall => Box::new(Fj::open(dir)?),
        Engine::FileFloor => Box::new(Floor::open(dir)?),
    })
}

// ---------------------------------------------------------------- varvelog

struct Varve {
    log: varvelog::Log,
    writer: varvelog::Writer,
}

impl Varve {
    fn open(dir: &Path) -> Res<Varve> {
        Varve::open_with(dir, varvelog::Options::new())
    }

    fn open_with(dir: &Path, opts: varvelog::Options) -> Res<Varve> {
        let log = varvelog::Log::open(dir, opts)?;
        let writer = log.writer()?;
        Ok(Varve { log, writer })
    }
}

impl Peer for Varve {
    fn append(&mut self, p: &[u8]) -> Res<()> {
        self.writer.append(p)?;
        Ok(())
    }
    fn append_batch(&mut self, ps: &[&[u8]]) -> Res<()> {
        self.writer.append_batch(ps.iter().copied())?;
        Ok(())
    }
    fn flush(&mut self) -> Res<()> {
        Ok(()) // appends are in the page cache as soon as they return
    }
    fn append_durable(&mut self, ps: &[&[u8]]) -> Res<()> {
        self.writer.append_batch(ps.iter().copied())?;
        self.writer.sync()?;
        Ok(())
    }
    fn scan(&mut self) -> Res<u64> {
        let snap = self.log.snapshot();
        let mut n = 0;
        for r in snap.iter() {
            std::hint::black_box(r?.payload());
            n += 1;
        }
        Ok(n)
    }
}

// ------------------------------------------------------------- raft-engine

/// Entries are protobuf `BytesValue`s whose first 8 bytes carry the index.
struct Entries;

impl raft_engine::MessageExt for Entries {
    type Entry = protobuf::well_known_types::BytesValue;
    fn index(e: &Self::Entry) -> u64 {
        e.value.get(..8).and_then(|b| b.try_into().ok()).map_or(0, u64::from_le_bytes)
    }
}

const REGION: u64 = 1;

struct Raft {
    engine: raft_engine::Engine,
    next: u64,
    entries: Vec<protobuf::well_known_types::BytesValue>,
}

impl Raft {
    fn open(dir: &Path) -> Res<Raft> {
        let cfg = raft_engine::Config { dir: dir.to_string_lossy().into_owned(), ..Default::default() };
        let engine = raft_engine::Engine::open(cfg)?;
        let next = engine.last_index(REGION).map_or(1, |i| i + 1);
        Ok(Raft { engine, next, entries: Vec::new() })
    }

    fn write(&mut self, ps: &[&[u8]], sync: bool) -> Res<()> {
        self.entries.clear();
        for p in ps {
            let mut e = protobuf::well_known_types::BytesValue::new();
            let mut v = Vec::with_capacity(8 + p.len());
            v.extend_from_slice(&self.next.to_le_bytes());
            v.extend_from_slice(p);
            e.value = v;
            self.entries.push(e);
            self.next += 1;
        }
        let mut batch = raft_engine::LogBatch::with_capacity(ps.len());
        batch.add_entries::<Entries>(REGION, &self.entries)?;
        self.engine.write(&mut batch, sync)?;
        Ok(())
    }
}

impl Peer for Raft {
    fn append(&mut self, p: &[u8]) -> Res<()> {
        self.write(&[p], false)
    }
    fn append_batch(&mut self, ps: &[&[u8]]) -> Res<()> {
        self.write(ps, false)
    }
    fn flush(&mut self) -> Res<()> {
        Ok(()) // write() has already written to the file
    }
    fn append_durable(&mut self, ps: &[&[u8]]) -> Res<()> {
        self.write(ps, true)
    }
    fn scan(&mut self) -> Res<u64> {
        let (Some(first), Some(last)) = (self.engine.first_index(REGION), self.engine.last_index(REGION)) else { return Ok(0) };
        let mut n = 0u64;
        let mut at = first;
        let mut buf = Vec::new();
        while at <= last {
            buf.clear();
            let end = (at + 65_536).min(last + 1);
            self.engine.fetch_entries_to::<Entries>(REGION, at, end, None, &mut buf)?;
            if buf.is_empty() {
                return Err(format!("raft-engine returned no entries at {at}").into());
            }
            n += buf.len() as u64;
            at += buf.len() as u64;
            std::hint::black_box(&buf);
        }
        Ok(n)
    }
}

// --------------------------------------------------------------- commitlog

struct CLog {
    log: commitlog::CommitLog,
}

impl CLog {
    fn open(dir: &Path) -> Res<CLog> {
        let mut opts = commitlog::LogOptions::new(dir);
        opts.segment_max_bytes(64 << 20);
        Ok(CLog { log: commitlog::CommitLog::new(opts)? })
    }
}

impl Peer for CLog {
    fn append(&mut self, p: &[u8]) -> Res<()> {
        self.log.append_msg(p).map_err(|e| format!("commitlog append: {e:?}"))?;
        Ok(())
    }
    fn append_batch(&mut self, ps: &[&[u8]]) -> Res<()> {
        let mut buf = commitlog::message::MessageBuf::default();
        for p in ps {
            buf.push(p).map_err(|e| format!("commitlog batch: {e:?}"))?;
        }
        self.log.append(&mut buf).map_err(|e| format!("commitlog append: {e:?}"))?;
        Ok(())
    }
    fn flush(&mut self) -> Res<()> {
        self.log.flush()?;
        Ok(())
    }
    fn append_durable(&mut self, ps: &[&[u8]]) -> Res<()> {
        self.append_batch(ps)?;
        self.log.flush()?; // NOT durable: flush() does not fsync the data
        Ok(())
    }
    fn scan(&mut self) -> Res<u64> {
        use commitlog::message::MessageSet;
        let end = self.log.next_offset();
        let mut at = 0;
        let mut n = 0;
        while at < end {
            let buf = self.log.read(at, commitlog::ReadLimit::max_bytes(4 << 20)).map_err(|e| format!("commitlog read: {e:?}"))?;
            let mut last = None;
            for m in buf.iter() {
                std::hint::black_box(m.payload());
                last = Some(m.offset());
                n += 1;
            }
            match last {
                Some(o) => at = o + 1,
                None => return Err(format!("commitlog read nothing at offset {at}").into()),
            }
        }
        Ok(n)
    }
}

// ---------------------------------------------------------------- open-wal

struct OWal {
    wal: open_wal::Wal,
}

impl OWal {
    fn open(dir: &Path) -> Res<OWal> {
        let cfg = open_wal::WalConfig { segment_size: 64 << 20, ..open_wal::WalConfig::default() };
        let (wal, _report) = open_wal::Wal::open(dir, cfg)?;
        Ok(OWal { wal })
    }
}

impl Peer for OWal {
    fn append(&mut self, p: &[u8]) -> Res<()> {
        self.wal.append(p)?;
        Ok(())
    }
    fn append_batch(&mut self, ps: &[&[u8]]) -> Res<()> {
        for p in ps {
            self.wal.append(p)?;
        }
        Ok(())
    }
    fn flush(&mut self) -> Res<()> {
        self.wal.commit()?; // its only way to write: write + fdatasync
        Ok(())
    }
    fn append_durable(&mut self, ps: &[&[u8]]) -> Res<()> {
        self.append_batch(ps)?;
        self.wal.commit()?;
        Ok(())
    }
    fn scan(&mut self) -> Res<u64> {
        let mut r = self.wal.reader_from(open_wal::Lsn(0))?;
        let mut n = 0;
        while let Some(rec) = r.next() {
            std::hint::black_box(rec?.1);
            n += 1;
        }
        Ok(n)
    }
}

// ----------------------------------------------------------------- okaywal

#[derive(Debug, Default)]
struct OkayManager {
    recovered: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl okaywal::LogManager for OkayManager {
    fn recover(&mut self, entry: &mut okaywal::Entry<'_>) -> std::io::Result<()> {
        if let Some(chunks) = entry.read_all_chunks()? {
            self.recovered.fetch_add(chunks.len() as u64, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    }

    fn checkpoint_to(
        &mut self,
        _last: okaywal::EntryId,
        _entries: &mut okaywal::SegmentReader,
        _wal: &okaywal::WriteAheadLog,
    ) -> std::io::Result<()> {
        Ok(())
    }
}

struct Okay {
    wal: Option<okaywal::WriteAheadLog>,
}

impl Okay {
    fn open(dir: &Path) -> Res<Okay> {
        let wal = okaywal::Configuration::default_for(dir).checkpoint_after_bytes(1 << 40).open(OkayManager::default())?;
        Ok(Okay { wal: Some(wal) })
    }
    fn wal(&self) -> Res<&okaywal::WriteAheadLog> {
        self.wal.as_ref().ok_or_else(|| "okaywal already shut down".into())
    }
}

impl Drop for Okay {
    fn drop(&mut self) {
        if let Some(w) = self.wal.take() {
            let _ = w.shutdown();
        }
    }
}

impl Peer for Okay {
    fn append(&mut self, p: &[u8]) -> Res<()> {
        self.append_durable(&[p])
    }
    fn append_batch(&mut self, ps: &[&[u8]]) -> Res<()> {
        self.append_durable(ps)
    }
    fn flush(&mut self) -> Res<()> {
        Ok(())
    }
    fn append_durable(&mut self, ps: &[&[u8]]) -> Res<()> {
        let mut entry = self.wal()?.begin_entry()?;
        for p in ps {
            entry.write_chunk(p)?;
        }
        entry.commit()?;
        Ok(())
    }
    fn scan(&mut self) -> Res<u64> {
        Err("okaywal reads back only through recovery on reopen".into())
    }
}

// ------------------------------------------------------------------- fjall

struct Fj {
    db: fjall::Database,
    ks: fjall::Keyspace,
    next: u64,
}

impl Fj {
    fn open(dir: &Path) -> Res<Fj> {
        let db = fjall::Database::builder(dir).open()?;
        let ks = db.keyspace("log", fjall::KeyspaceCreateOptions::default)?;
        let next = match ks.iter().next_back() {
            Some(g) => g.key()?.get(..8).and_then(|b| b.try_into().ok()).map_or(0, u64::from_be_bytes) + 1,
            None => 0,
        };
        Ok(Fj { db, ks, next })
    }
}

impl Peer for Fj {
    fn append(&mut self, p: &[u8]) -> Res<()> {
        self.ks.insert(self.next.to_be_bytes(), p)?;
        self.next += 1;
        Ok(())
    }
    fn append_batch(&mut self, ps: &[&[u8]]) -> Res<()> {
        let mut b = self.db.batch();
        for p in ps {
            b.insert(&self.ks, self.next.to_be_bytes(), *p);
            self.next += 1;
        }
        b.commit()?;
        Ok(())
    }
    fn flush(&mut self) -> Res<()> {
        self.db.persist(fjall::PersistMode::Buffer)?;
        Ok(())
    }
    fn append_durable(&mut self, ps: &[&[u8]]) -> Res<()> {
        self.append_batch(ps)?;
        self.db.persist(fjall::PersistMode::SyncData)?;
        Ok(())
    }
    fn scan(&mut self) -> Res<u64> {
        let mut n = 0;
        for g in self.ks.iter() {
            std::hint::black_box(g.into_inner()?);
            n += 1;
        }
        Ok(n)
    }
}

// ------------------------------------------------- plain file, the floor

struct Floor {
    path: std::path::PathBuf,
    out: BufWriter<File>,
}

impl Floor {
    fn open(dir: &Path) -> Res<Floor> {
        let path = dir.join("log.bin");
        let file = File::options().create(true).append(true).open(&path)?;
        Ok(Floor { path, out: BufWriter::with_capacity(64 << 10, file) })
    }
}

impl Peer for Floor {
    fn append(&mut self, p: &[u8]) -> Res<()> {
        self.out.write_all(&(p.len() as u32).to_le_bytes())?;
        self.out.write_all(&crc32c::crc32c(p).to_le_bytes())?;
        self.out.write_all(p)?;
        Ok(())
    }
    fn append_batch(&mut self, ps: &[&[u8]]) -> Res<()> {
        for p in ps {
            self.append(p)?;
        }
        Ok(())
    }
    fn flush(&mut self) -> Res<()> {
        self.out.flush()?;
        Ok(())
    }
    fn append_durable(&mut self, ps: &[&[u8]]) -> Res<()> {
        self.append_batch(ps)?;
        self.out.flush()?;
        self.out.get_ref().sync_data()?;
        Ok(())
    }
    fn scan(&mut self) -> Res<u64> {
        self.out.flush()?;
        let mut r = BufReader::with_capacity(1 << 20, File::open(&self.path)?);
        let mut head = [0u8; 8];
        let mut body = Vec::new();
        let mut n = 0;
        loop {
            match r.read_exact(&mut head) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(e) => return Err(e.into()),
            }
            let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
            let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
            body.resize(len, 0);
            r.read_exact(&mut body)?;
            if crc32c::crc32c(&body) != crc {
                return Err(format!("floor: checksum mismatch at record {n}").into());
            }
            n += 1;
        }
        Ok(n)
    }
}
