//! Ingestion from many threads: a cloneable handle that feeds the log's one
//! writer through a bounded channel, with group commit.
//!
//! Producers call [`Ingest::append`] (or [`Ingest::submit`] for a [`Ticket`])
//! from any thread. A dedicated thread owns the [`Writer`]: it takes the first
//! waiting request, then everything else already queued (up to
//! [`IngestOptions::max_group_records`] / [`IngestOptions::max_group_bytes`]),
//! appends the whole group as one batch (one publication: readers see all of
//! it or none), answers the non-durable requests, and, if any request in the
//! group asked for durability, syncs once and answers those. A full queue
//! blocks producers (back-pressure, bounded memory). An error (poisoned
//! writer, full disk) reaches every request of the group it hit.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{JoinHandle, Thread};

use crossbeam_channel::{bounded, Receiver, Sender, TryRecvError};
use crossbeam_utils::Backoff;

use crate::error::{Error, Result};
use crate::format::{align_up, FRAME_HEADER_BYTES};
use crate::log::Log;
use crate::writer::{Entry, Writer};

/// Settings for [`Log::ingest`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IngestOptions {
    queue_capacity: usize,
    max_group_records: usize,
    max_group_bytes: u64,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions { queue_capacity: 4096, max_group_records: 1024, max_group_bytes: 4 << 20 }
    }
}

impl IngestOptions {
    /// Defaults: a queue of 4096 requests, groups of at most 1024 records
    /// and 4 MiB (and at most an eighth of a segment).
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests that may wait in the queue before producers block (at least 1).
    pub fn queue_capacity(mut self, n: usize) -> Self {
        self.queue_capacity = n.max(1);
        self
    }

    /// Most records appended as one group (at least 1).
    pub fn max_group_records(mut self, n: usize) -> Self {
        self.max_group_records = n.max(1);
        self
    }

    /// Most framed bytes in one group. It is also capped at an eighth of a
    /// segment's frame space, so that a group that does not fit at the end
    /// of a segment wastes little of it. A single larger record still goes
    /// through, alone.
    pub fn max_group_bytes(mut self, bytes: u64) -> Self {
        self.max_group_bytes = bytes;
        self
    }
}

/// A handle for appending from many threads, from [`Log::ingest`]: producers
/// queue records, one thread appends them in groups (one publication each).
/// Cheap to clone and `Send + Sync`. The pipeline stops, after appending
/// everything queued, when the last clone is dropped or [`Ingest::close`] is
/// called; the writer then returns to the log ([`Log::writer`] works again).
///
/// ```
/// # fn main() -> varvelog::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// use varvelog::{IngestOptions, Log, Options};
///
/// let log = Log::open(dir.path(), Options::new())?;
/// let ingest = log.ingest(IngestOptions::new())?;
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
    inner: Arc<Pipeline>,
}

impl std::fmt::Debug for Ingest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingest").field("queued", &self.inner.tx.len()).finish()
    }
}

struct Pipeline {
    tx: Sender<Msg>,
    /// Set once by `close` or the last drop; checked by every submit.
    closed: AtomicBool,
    /// Submits between their `closed` check and the end of their send. The
    /// writer thread stops only once this is zero with `closed` set and the
    /// queue empty, so no request is left unanswered in the channel.
    in_flight: AtomicUsize,
    thread: Mutex<Option<JoinHandle<()>>>,
    log: Log,
    payload_limit: usize,
    key_limit: usize,
}

enum Msg {
    Append(Request),
    /// Stop after everything queued (sent once, when closing).
    Stop,
}

/// One record on its way to the writer. Its reply slot is always filled:
/// by the writer thread, or on drop with [`Error::IngestClosed`].
struct Request {
    /// Payload, then key.
    buf: Vec<u8>,
    payload_len: usize,
    timestamp_us: Option<u64>,
    tombstone: bool,
    durable: bool,
    reply: Option<Arc<Slot>>,
}

impl Request {
    fn entry(&self) -> Entry<'_> {
        let (payload, key) = self.buf.split_at(self.payload_len);
        let mut e = Entry::new(payload).key(key);
        if let Some(ts) = self.timestamp_us {
            e = e.timestamp(ts);
        }
        if self.tombstone {
            e = e.tombstone();
        }
        e
    }

    fn framed_len(&self) -> u64 {
        align_up(FRAME_HEADER_BYTES + self.buf.len() as u64)
    }

    fn answer(&mut self, r: Result<u64>) {
        if let Some(slot) = self.reply.take() {
            slot.fill(r);
        }
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        self.answer(Err(Error::IngestClosed));
    }
}

/// Where the writer thread leaves one answer for the thread waiting on it.
#[derive(Default)]
struct Slot {
    /// Set (Release) once `value` holds an answer; lets a waiter poll
    /// without taking the lock.
    filled: AtomicBool,
    state: Mutex<SlotState>,
}

#[derive(Default)]
struct SlotState {
    value: Option<Result<u64>>,
    waiter: Option<Thread>,
}

impl Slot {
    fn fill(&self, r: Result<u64>) {
        let waiter = {
            let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
            s.value = Some(r);
            self.filled.store(true, Ordering::Release);
            s.waiter.take()
        };
        if let Some(t) = waiter {
            t.unpark();
        }
    }

    fn take(&self) -> Option<Result<u64>> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        self.filled.store(false, Ordering::Relaxed);
        s.value.take()
    }

    /// Waits until filled: polls briefly (the writer thread usually answers
    /// within microseconds, and a park/unpark round trip costs tens of them
    /// on a VM), then parks. `unpark` before `park` is not lost (the token
    /// stays), and a stray token only costs one more check.
    fn wait(&self) -> Result<u64> {
        let backoff = Backoff::new();
        while !backoff.is_completed() {
            if self.filled.load(Ordering::Acquire) {
                break;
            }
            backoff.snooze();
        }
        loop {
            {
                let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(v) = s.value.take() {
                    self.filled.store(false, Ordering::Relaxed);
                    return v;
                }
                s.waiter = Some(std::thread::current());
            }
            std::thread::park();
        }
    }
}

thread_local! {
    /// The reply slot of blocking appends made by this thread: a thread
    /// waits for one blocking append at a time, so one slot serves them all.
    static REPLY: Arc<Slot> = Arc::new(Slot::default());
}

/// The answer to a [`Ingest::submit`]: wait for it, from any thread.
#[derive(Debug)]
#[must_use = "a ticket does nothing unless waited on"]
pub struct Ticket {
    slot: Arc<Slot>,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Slot")
    }
}

impl Ticket {
    /// The record's seq once appended (and synced, for a durable submit).
    pub fn wait(self) -> Result<u64> {
        self.slot.wait()
    }

    /// The answer, if it has arrived (then later calls return `None`).
    pub fn try_get(&mut self) -> Option<Result<u64>> {
        self.slot.take()
    }
}

impl Ingest {
    /// Appends `payload` (no key, the writer's clock); returns its seq once
    /// readers can see it. Blocks while the queue is full.
    pub fn append(&self, payload: &[u8]) -> Result<u64> {
        self.append_entry(Entry::new(payload))
    }

    /// Appends one record; returns its seq once readers can see it.
    pub fn append_entry(&self, entry: Entry<'_>) -> Result<u64> {
        self.blocking(entry, false)
    }

    /// Appends `payload` and returns its seq only once it is durable (a sync
    /// covers it; the group it travels with shares that one sync).
    pub fn append_durable(&self, payload: &[u8]) -> Result<u64> {
        self.append_entry_durable(Entry::new(payload))
    }

    /// [`Ingest::append_durable`] for a full entry.
    pub fn append_entry_durable(&self, entry: Entry<'_>) -> Result<u64> {
        self.blocking(entry, true)
    }

    /// Queues one record without waiting for it; the [`Ticket`] gives its
    /// seq. Lets one producer keep many records in flight.
    pub fn submit(&self, entry: Entry<'_>) -> Result<Ticket> {
        let slot = Arc::new(Slot::default());
        self.send(entry, false, slot.clone())?;
        Ok(Ticket { slot })
    }

    /// [`Ingest::submit`], answered once the record is durable.
    pub fn submit_durable(&self, entry: Entry<'_>) -> Result<Ticket> {
        let slot = Arc::new(Slot::default());
        self.send(entry, true, slot.clone())?;
        Ok(Ticket { slot })
    }

    /// Requests waiting for the writer thread.
    pub fn queued(&self) -> usize {
        self.inner.tx.len()
    }

    /// Stops the pipeline for every clone: appends already queued are
    /// written, later ones fail with [`Error::IngestClosed`]; waits for the
    /// writer thread to finish and returns the writer to the log.
    /// [`Error::Poisoned`] if an I/O error poisoned the writer.
    pub fn close(self) -> Result<()> {
        self.inner.shutdown();
        self.inner.log.shared().check_poison()
    }

    fn blocking(&self, entry: Entry<'_>, durable: bool) -> Result<u64> {
        let slot = REPLY.try_with(Arc::clone).unwrap_or_else(|_| Arc::new(Slot::default()));
        self.send(entry, durable, slot.clone())?;
        slot.wait()
    }

    fn send(&self, e: Entry<'_>, durable: bool, slot: Arc<Slot>) -> Result<()> {
        let p = &*self.inner;
        if e.payload.len() > p.payload_limit {
            return Err(Error::PayloadTooLarge { len: e.payload.len(), max: p.payload_limit });
        }
        if e.key.len() > p.key_limit {
            return Err(Error::KeyTooLarge { len: e.key.len(), max: p.key_limit });
        }
        let mut buf = Vec::with_capacity(e.payload.len() + e.key.len());
        buf.extend_from_slice(e.payload);
        buf.extend_from_slice(e.key);
        let req =
            Request { buf, payload_len: e.payload.len(), timestamp_us: e.timestamp_us, tombstone: e.tombstone, durable, reply: Some(slot) };
        // SeqCst pairs with `shutdown`: either this submit sees `closed`, or
        // the writer thread sees it in flight and waits for the send.
        // A request that is not sent is dropped here, which answers
        // IngestClosed through its slot.
        p.in_flight.fetch_add(1, Ordering::SeqCst);
        if !p.closed.load(Ordering::SeqCst) {
            let _ = p.tx.send(Msg::Append(req));
        }
        p.in_flight.fetch_sub(1, Ordering::SeqCst);
        Ok(())
    }
}

impl Pipeline {
    /// Closes to new submits, lets the writer thread drain, and joins it.
    fn shutdown(&self) {
        if !self.closed.swap(true, Ordering::SeqCst) {
            let _ = self.tx.send(Msg::Stop);
        }
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        // The writer thread itself may drop the last reference (it upgrades
        // its weak one while draining); it cannot wait for itself.
        if let Some(t) = thread.filter(|t| t.thread().id() != std::thread::current().id()) {
            let _ = t.join();
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl Log {
    /// Starts an ingest pipeline: takes the log's writer ([`Error::WriterBusy`]
    /// if it is out) and moves it to a dedicated thread fed by the returned
    /// handle. See [`Ingest`].
    pub fn ingest(&self, opts: IngestOptions) -> Result<Ingest> {
        let writer = self.writer()?;
        let inner = self.inner();
        let group_bytes = opts.max_group_bytes.min(self.shared().opts.frame_capacity() / 8);
        let (tx, rx) = bounded(opts.queue_capacity);
        let pipeline = Arc::new(Pipeline {
            tx,
            closed: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
            thread: Mutex::new(None),
            log: self.clone(),
            payload_limit: inner.payload_limit,
            key_limit: inner.key_limit,
        });
        let weak = Arc::downgrade(&pipeline);
        let group = Grouping { records: opts.max_group_records, bytes: group_bytes };
        let thread = std::thread::Builder::new()
            .name("varvelog-ingest".into())
            .spawn(move || run(writer, rx, group, weak))
            .map_err(|e| Error::io("spawn thread", "varvelog-ingest", e))?;
        *pipeline.thread.lock().unwrap_or_else(|p| p.into_inner()) = Some(thread);
        Ok(Ingest { inner: pipeline })
    }
}

#[derive(Clone, Copy)]
struct Grouping {
    records: usize,
    bytes: u64,
}

/// The writer thread: group, append, answer; until stopped and drained.
fn run(mut writer: Writer, rx: Receiver<Msg>, limits: Grouping, pipeline: std::sync::Weak<Pipeline>) {
    // Whatever way this thread ends (also by a panic), nobody may be left
    // waiting on a request in the channel.
    let _guard = AnswerTheRest { rx: &rx, pipeline: &pipeline };
    let mut group: Vec<Request> = Vec::with_capacity(limits.records.min(4096));
    let mut carry: Option<Request> = None;
    let mut stopping = false;
    loop {
        let first = match carry.take() {
            Some(r) => r,
            None if stopping => match rx.try_recv() {
                Ok(Msg::Append(r)) => r,
                Ok(Msg::Stop) => continue,
                Err(TryRecvError::Disconnected) => break,
                Err(TryRecvError::Empty) => {
                    if drained(&pipeline) {
                        break;
                    }
                    std::thread::yield_now();
                    continue;
                }
            },
            None => match rx.recv() {
                Ok(Msg::Append(r)) => r,
                Ok(Msg::Stop) => {
                    stopping = true;
                    continue;
                }
                Err(_) => break,
            },
        };
        let mut bytes = first.framed_len();
        group.push(first);
        while group.len() < limits.records {
            match rx.try_recv() {
                Ok(Msg::Append(r)) => {
                    let b = r.framed_len();
                    if bytes + b > limits.bytes {
                        carry = Some(r);
                        break;
                    }
                    bytes += b;
                    group.push(r);
                }
                Ok(Msg::Stop) => stopping = true,
                Err(_) => break,
            }
        }
        commit(&mut writer, &mut group);
    }
}

/// On the writer thread's way out: closes the pipeline and answers every
/// request still queued or being queued with [`Error::IngestClosed`]. After
/// a normal stop there are none; after a panic this keeps callers from
/// waiting for ever.
struct AnswerTheRest<'a> {
    rx: &'a Receiver<Msg>,
    pipeline: &'a std::sync::Weak<Pipeline>,
}

impl Drop for AnswerTheRest<'_> {
    fn drop(&mut self) {
        if let Some(p) = self.pipeline.upgrade() {
            p.closed.store(true, Ordering::SeqCst);
        }
        loop {
            while let Ok(msg) = self.rx.try_recv() {
                drop(msg); // a request answers IngestClosed when dropped
            }
            if drained(self.pipeline) {
                return;
            }
            std::thread::yield_now();
        }
    }
}

/// Whether no submit can still add to the queue (closing is set and none
/// is between its check and its send). `true` if the pipeline is gone.
fn drained(pipeline: &std::sync::Weak<Pipeline>) -> bool {
    pipeline.upgrade().is_none_or(|p| p.in_flight.load(Ordering::SeqCst) == 0 && p.tx.is_empty())
}

/// Appends `group` as one batch, answers everyone, empties `group`.
fn commit(writer: &mut Writer, group: &mut Vec<Request>) {
    let durable = group.iter().any(|r| r.durable);
    match writer.append_batch(group.iter().map(Request::entry)) {
        Ok(seqs) => {
            for (r, seq) in group.iter_mut().zip(seqs.clone()) {
                if !r.durable {
                    r.answer(Ok(seq));
                }
            }
            if durable {
                let synced = writer.sync();
                for (r, seq) in group.iter_mut().zip(seqs) {
                    r.answer(synced.as_ref().map(|_| seq).map_err(Error::duplicate));
                }
            }
        }
        Err(e) => {
            for r in group.iter_mut() {
                r.answer(Err(e.duplicate()));
            }
        }
    }
    group.clear();
}

const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Ingest>();
    const fn send<T: Send>() {}
    send::<Ticket>();
};
