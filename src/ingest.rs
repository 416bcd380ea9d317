//! Appending from many threads: a cloneable handle on the log's one writer,
//! with group commit for durable appends.
//!
//! Producers call [`Ingest::append`] from any thread. Each one appends its
//! record itself, under a lock on the writer: no thread hand-off, no queue,
//! no allocation, and the critical section is the frame copy and its
//! publication only (limits and the timestamp are taken before the lock).
//! A durable append then waits for a sync that covers its record: the first
//! producer to reach the log's sync lock syncs everything published so far,
//! and every producer whose record that sync covered returns without
//! syncing again (group commit). While one sync runs, other producers keep
//! appending, so under load one sync covers many producers' records.
//! An error (poisoned writer, full disk) reaches the callers it hits.

use std::sync::Arc;

use crossbeam_utils::CachePadded;
use parking_lot::Mutex;

use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::log::Log;
use crate::writer::{Entry, Writer};

/// A handle for appending from many threads, from [`Log::ingest`].
///
/// Cheap to clone and `Send + Sync`: each producer thread appends directly
/// into the log's one writer (taking a short lock), and durable appends from
/// many threads share their syncs. The handle holds the log's writer until
/// the last clone is dropped or [`Ingest::close`] is called; then
/// [`Log::writer`] works again.
///
/// Timestamps are read on the producer's thread just before it takes the
/// lock, so records from different producers may be out of timestamp order
/// by that short interval (time lookups do not need timestamps to be
/// monotonic).
///
/// ```
/// # fn main() -> varvelog::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// use varvelog::{Log, Options};
///
/// let log = Log::open(dir.path(), Options::new())?;
/// let ingest = log.ingest()?;
/// let producers: Vec<_> = (0..4)
///     .map(|p| {
///         let ingest = ingest.clone();
///         std::thread::spawn(move || ingest.append(format!("from {p}").as_bytes()))
///     })
///     .collect();
/// for p in producers {
///     p.join().unwrap()?;
/// }
/// let seq = ingest.append_durable(b"durable")?; // returns once synced
/// assert!(log.durable_seq() >= Some(seq));
/// ingest.close()?;
/// assert_eq!(log.snapshot().len(), 5);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Ingest {
    inner: Arc<Handle>,
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest").field("closed", &self.inner.writer.lock().is_none()).finish()
    }
}

/// What every clone of one [`Ingest`] shares.
///
/// Producers read `clock` and `log` before they take the lock, and the
/// holder of the lock writes the writer's state on every append: the lock
/// and the writer get cache lines of their own, so that those reads never
/// take a line away from the holder.
struct Handle {
    clock: Clock,
    log: Log,
    /// The log's writer; `None` once closed (dropping it hands it back).
    writer: CachePadded<Mutex<Option<Writer>>>,
}

/// The answer to an [`Ingest::submit`]: the record is already appended (and
/// visible); waiting on a durable ticket makes it durable, sharing one sync
/// with whoever else is waiting.
#[derive(Debug)]
#[must_use = "a ticket does nothing unless waited on"]
pub struct Ticket {
    answer: Option<Result<u64>>,
    durable: Option<Log>,
}

impl Ticket {
    /// The record's seq once appended (and synced, for a durable submit).
    ///
    /// # Errors
    ///
    /// The append's error (see [`Ingest::append`]), the sync's for a durable submit, or
    /// [`Error::IngestClosed`] if the handle was closed first.
    pub fn wait(self) -> Result<u64> {
        let Ticket { answer, durable } = self;
        let seq = answer.unwrap_or(Err(Error::IngestClosed))?;
        match durable {
            Some(log) => log.shared().sync_through(seq).map(|()| seq),
            None => Ok(seq),
        }
    }

    /// The answer if it is ready without waiting: at once for a visible
    /// submit, once a sync has covered the record for a durable one (this
    /// call never syncs; [`Ticket::wait`] does). Later calls return `None`.
    pub fn try_get(&mut self) -> Option<Result<u64>> {
        if let (Some(Ok(seq)), Some(log)) = (&self.answer, &self.durable) {
            if !log.shared().is_durable(*seq) {
                return None;
            }
        }
        self.answer.take()
    }
}

impl Ingest {
    /// Appends `payload` (no key, the log's clock); returns its seq once
    /// readers can see it.
    ///
    /// # Errors
    ///
    /// As [`crate::Writer::append`], and [`Error::IngestClosed`] after [`Ingest::close`].
    pub fn append(&self, payload: &[u8]) -> Result<u64> {
        self.append_entry(Entry::new(payload))
    }

    /// Appends one record; returns its seq once readers can see it.
    ///
    /// # Errors
    ///
    /// As [`crate::Writer::append_entry`], and [`Error::IngestClosed`] after [`Ingest::close`].
    pub fn append_entry(&self, entry: Entry<'_>) -> Result<u64> {
        let entry = self.inner.prepare(entry);
        match self.inner.writer.lock().as_mut() {
            Some(w) => w.append_entry(entry),
            None => Err(Error::IngestClosed),
        }
    }

    /// Appends `payload` and returns its seq only once it is durable (a sync
    /// covers it; concurrent durable appends share syncs).
    ///
    /// # Errors
    ///
    /// As [`Ingest::append`], and [`Error::Poisoned`] if the sync that would cover the record fails
    /// (the failure poisons the writer).
    pub fn append_durable(&self, payload: &[u8]) -> Result<u64> {
        self.append_entry_durable(Entry::new(payload))
    }

    /// [`Ingest::append_durable`] for a full entry.
    ///
    /// # Errors
    ///
    /// As [`Ingest::append_durable`].
    pub fn append_entry_durable(&self, entry: Entry<'_>) -> Result<u64> {
        let seq = self.append_entry(entry)?;
        self.inner.log.shared().sync_through(seq)?;
        Ok(seq)
    }

    /// Appends one record and returns a [`Ticket`] for its seq. The record
    /// is visible when this returns; an error shows when the ticket is read.
    ///
    /// # Errors
    ///
    /// [`Error::IngestClosed`] after [`Ingest::close`]; other failures come from [`Ticket::wait`].
    pub fn submit(&self, entry: Entry<'_>) -> Result<Ticket> {
        Ok(Ticket { answer: Some(self.append_entry(entry)), durable: None })
    }

    /// [`Ingest::submit`], whose ticket answers once the record is durable.
    /// One producer can submit many records and wait on the last ticket
    /// only: the sync that covers it covers every record before it.
    ///
    /// # Errors
    ///
    /// [`Error::IngestClosed`] after [`Ingest::close`]; other failures come from [`Ticket::wait`].
    pub fn submit_durable(&self, entry: Entry<'_>) -> Result<Ticket> {
        Ok(Ticket { answer: Some(self.append_entry(entry)), durable: Some(self.inner.log.clone()) })
    }

    /// Closes the handle for every clone: later appends fail with
    /// [`Error::IngestClosed`] and the writer returns to the log. It neither
    /// syncs nor waits for sealing: durable appends are already synced, and
    /// [`Log::close`] makes the rest durable and reports what remains.
    ///
    /// # Errors
    ///
    /// [`Error::Poisoned`] if an I/O error poisoned the writer.
    pub fn close(self) -> Result<()> {
        drop(self.inner.writer.lock().take());
        self.inner.log.shared().check_poison()
    }
}

impl Handle {
    /// Takes the timestamp before the writer's lock, so the critical
    /// section holds only the frame copy and its publication.
    fn prepare<'e>(&self, entry: Entry<'e>) -> Entry<'e> {
        match entry.timestamp_us {
            Some(_) => entry,
            None => entry.timestamp(self.clock.now_us()),
        }
    }
}

impl Log {
    /// A handle for appending from many threads: takes the log's writer
    /// ([`Error::WriterBusy`] if it is out) and shares it. See [`Ingest`].
    ///
    /// # Errors
    ///
    /// [`Error::WriterBusy`] if the log's writer (or another `Ingest`) is out.
    pub fn ingest(&self) -> Result<Ingest> {
        let writer = self.writer()?;
        let clock = self.shared().opts.clock;
        Ok(Ingest { inner: Arc::new(Handle { clock, log: self.clone(), writer: CachePadded::new(Mutex::new(Some(writer))) }) })
    }
}

const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Ingest>();
    const fn send<T: Send>() {}
    send::<Ticket>();
};
