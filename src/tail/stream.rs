//! Tails and consumers as async [`Stream`]s of owned records.
//!
//! A stream over a [`crate::Log`] of this process registers its task's
//! waker with the writer's [`super::Waiters`] when it finds nothing new, and
//! the writer wakes it after its next publication (protocol and loom model:
//! `waiters.rs`). While no stream waits, the writer pays nothing for them.
//! A stream over a [`crate::ReadOnlyLog`] cannot be woken by a writer in
//! another process: it looks again after a timer (`futures-timer`, no
//! runtime needed) of 50 µs doubling up to 1 ms, so it sees a new record
//! within about a millisecond.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use futures_timer::Delay;

use super::{step, Source, Tail};
use crate::consumers::Consumer;
use crate::error::Result;
use crate::record::OwnedRecord;

/// First timer of a stream over a read-only log that found nothing new.
const REMOTE_POLL_MIN: Duration = Duration::from_micros(50);
/// Longest timer of a stream over a read-only log.
const REMOTE_POLL_MAX: Duration = Duration::from_millis(1);

/// Ids of streams, to find their wakers among those registered.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// How a stream waits: its waker registration, or its timer.
#[derive(Debug)]
struct Waiting {
    id: u64,
    delay: Option<Delay>,
    interval: Duration,
}

impl Waiting {
    fn new() -> Waiting {
        Waiting { id: NEXT_ID.fetch_add(1, Ordering::Relaxed), delay: None, interval: REMOTE_POLL_MIN }
    }

    /// The tail's next record, `Pending` with the task set to be woken when
    /// there may be one, or `None` after an error was yielded (the tail's
    /// end, as for its iterator).
    fn poll_item(&mut self, tail: &mut Tail, cx: &mut Context<'_>) -> Poll<Option<Result<OwnedRecord>>> {
        if tail.ended {
            return Poll::Ready(None);
        }
        self.poll_next(tail, cx).map(|item| {
            tail.ended = item.is_err();
            Some(item)
        })
    }

    /// The tail's next record, or `Pending` with the task set to be woken
    /// when there may be one.
    fn poll_next(&mut self, tail: &mut Tail, cx: &mut Context<'_>) -> Poll<Result<OwnedRecord>> {
        loop {
            match tail.ready() {
                Err(e) => return Poll::Ready(Err(e)),
                Ok(true) => {
                    self.interval = REMOTE_POLL_MIN;
                    return Poll::Ready(match step(&tail.snap, &mut tail.cur, tail.verify) {
                        Ok(Some(r)) => Ok(r.to_owned_record()),
                        Ok(None) => unreachable_ready(),
                        Err(e) => Err(e),
                    });
                }
                Ok(false) => {}
            }
            match &tail.src {
                Source::Local(log) => {
                    let shared = log.shared();
                    if !shared.tail_waiters.poll_ready(self.id, cx.waker(), || tail.has_new(shared)) {
                        return Poll::Pending;
                    }
                }
                Source::ReadOnly(_) => {
                    let interval = self.interval;
                    let delay = self.delay.get_or_insert_with(|| Delay::new(interval));
                    if Pin::new(delay).poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    self.delay = None;
                    self.interval = (self.interval * 2).min(REMOTE_POLL_MAX);
                }
            }
        }
    }

    fn release(&mut self, tail: &Tail) {
        if let Source::Local(log) = &tail.src {
            log.shared().tail_waiters.deregister(self.id);
        }
    }
}

/// `ready()` said a record is in view, so `step` finds one; a miss would be
/// a bug, reported as damage rather than a panic.
fn unreachable_ready() -> Result<OwnedRecord> {
    Err(crate::Error::corrupt("", 0, "a tail found no record where its snapshot showed one"))
}

/// A [`Tail`] as a [`Stream`] of owned records, from [`Tail::into_stream`],
/// woken by the writer; runtime-agnostic. It ends only after an `Err` item
/// (damage, [`crate::Error::Truncated`], [`crate::Error::Missing`]).
///
/// Polling may make short blocking system calls (a read-only view lists
/// its directory every few milliseconds), and each wait costs the
/// registering task one `membarrier` (see `docs/design.md`).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> varvelog::Result<()> {
/// # let dir = tempfile::tempdir().unwrap();
/// use futures_util::StreamExt;
/// use varvelog::{Log, Options};
///
/// let log = Log::open(dir.path(), Options::new())?;
/// let mut stream = log.tail_from(0)?.into_stream();
/// let mut writer = log.writer()?;
/// writer.append(b"hello")?;
/// let record = stream.next().await.expect("ends only after an error")?;
/// assert_eq!(record.payload(), b"hello");
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "streams do nothing unless polled"]
#[cfg_attr(docsrs, doc(cfg(feature = "async")))]
pub struct TailStream {
    tail: Tail,
    waiting: Waiting,
}

impl Tail {
    /// This tail as an async [`Stream`] of owned records.
    #[cfg_attr(docsrs, doc(cfg(feature = "async")))]
    pub fn into_stream(self) -> TailStream {
        TailStream { tail: self, waiting: Waiting::new() }
    }
}

impl TailStream {
    /// The tail, to read its position or lag.
    #[must_use]
    pub fn get_ref(&self) -> &Tail {
        &self.tail
    }
}

impl Stream for TailStream {
    type Item = Result<OwnedRecord>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        this.waiting.poll_item(&mut this.tail, cx)
    }
}

impl Drop for TailStream {
    fn drop(&mut self) {
        self.waiting.release(&self.tail);
    }
}

/// A named [`Consumer`] as a [`Stream`] of owned records, from
/// [`Consumer::into_stream`]; it ends only after an `Err` item. Automatic
/// commits happen as it is polled (and, for
/// [`crate::ConsumerOptions::commit_every`], on a timer while it waits),
/// with the proviso written there: a stream adapter that takes records
/// ahead of processing them needs commits by hand, through
/// [`ConsumerStream::get_mut`]. A commit is a `pwrite` (and with
/// `sync_commits`, an `fdatasync`) made inside `poll_next`.
#[derive(Debug)]
#[must_use = "streams do nothing unless polled"]
#[cfg_attr(docsrs, doc(cfg(feature = "async")))]
pub struct ConsumerStream {
    consumer: Consumer,
    waiting: Waiting,
    /// Wakes the task when a time-based commit comes due while it waits.
    commit_timer: Option<Delay>,
}

impl Consumer {
    /// This consumer as an async [`Stream`] of owned records.
    #[cfg_attr(docsrs, doc(cfg(feature = "async")))]
    pub fn into_stream(self) -> ConsumerStream {
        ConsumerStream { consumer: self, waiting: Waiting::new(), commit_timer: None }
    }
}

impl ConsumerStream {
    /// The consumer, to commit or read its position.
    pub fn get_mut(&mut self) -> &mut Consumer {
        &mut self.consumer
    }

    /// The consumer.
    #[must_use]
    pub fn get_ref(&self) -> &Consumer {
        &self.consumer
    }
}

impl Stream for ConsumerStream {
    type Item = Result<OwnedRecord>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.consumer.tail_mut().ended {
            return Poll::Ready(None);
        }
        if let Err(e) = this.consumer.auto_commit_now() {
            this.consumer.tail_mut().ended = true;
            return Poll::Ready(Some(Err(e)));
        }
        let item = this.waiting.poll_item(this.consumer.tail_mut(), cx);
        if item.is_pending() {
            match this.consumer.commit_due_in() {
                Some(due) => {
                    let timer = this.commit_timer.get_or_insert_with(|| Delay::new(due));
                    if Pin::new(timer).poll(cx).is_ready() {
                        // Due: poll again at once, which commits.
                        this.commit_timer = None;
                        cx.waker().wake_by_ref();
                    }
                }
                None => this.commit_timer = None,
            }
        }
        item
    }
}

impl Drop for ConsumerStream {
    fn drop(&mut self) {
        self.waiting.release(self.consumer.tail_mut());
    }
}
