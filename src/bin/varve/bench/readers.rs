//! The tailing readers of the writer->tail and mixed phases, one per way of
//! waiting for the writer: a [`varvelog::Tail`] that busy-spins or parks,
//! and a [`varvelog::TailStream`] driven by a minimal executor
//! (`pollster::block_on`, which parks its thread until the stream's waker
//! is called). Each reads from `from` to `until` and records, per record,
//! the time from the writer's send stamp (the payload's first 8 bytes) to
//! the moment the reader holds the record.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::Poll;
use std::time::Duration;

use futures_core::Stream;
use futures_timer::Delay;
use hdrhistogram::Histogram;
use varvelog::{Log, WaitStrategy};

use super::clock::{histogram, ticks, Clock};
use super::{Res, Wait};

/// How long a reader waits for a record before it looks at `stop` (set
/// when the writer stopped early, so that no more records come).
const STOP_CHECK: Duration = Duration::from_millis(50);

/// One reader's samples: the stamp-to-observe histogram and how many
/// samples had the reader's clock behind the writer's (counted as 0).
pub type Samples = (Histogram<u64>, u64);

/// What every reader shares: the records to follow and how to stop.
pub struct Follow<'a> {
    pub log: &'a Log,
    pub from: u64,
    pub until: u64,
    pub clock: &'a Clock,
    /// Set when the writer stopped before `until`.
    pub stop: &'a AtomicBool,
    /// Each reader adds one once it is in place, before the writer starts.
    pub ready: &'a AtomicUsize,
}

/// Follows the log as `wait` says: `Wait::Spin` with
/// `WaitStrategy::BusySpin`, `Wait::Park` with the default spin-then-park,
/// `Wait::Async` through `Tail::into_stream`.
pub fn follow(f: &Follow<'_>, wait: Wait) -> Res<Samples> {
    match wait {
        Wait::Spin => tail_reader(f, WaitStrategy::BusySpin),
        Wait::Park => tail_reader(f, WaitStrategy::Park),
        Wait::Async => stream_reader(f),
    }
}

/// Checks each record's seq and records its stamp-to-observe time.
struct Observer<'a> {
    h: Histogram<u64>,
    clamped: u64,
    next: u64,
    clock: &'a Clock,
}

impl<'a> Observer<'a> {
    fn new(f: &Follow<'a>) -> Res<Self> {
        Ok(Observer { h: histogram()?, clamped: 0, next: f.from, clock: f.clock })
    }

    /// Records a record of seq `seq` and payload `payload` observed at `now`.
    #[inline]
    fn observe(&mut self, seq: u64, payload: &[u8], now: u64) -> Res<()> {
        if seq != self.next {
            return Err(format!("tail: expected seq {}, got {seq}", self.next).into());
        }
        let stamp = payload.get(..8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes).ok_or("payload too short for a stamp")?;
        if now < stamp {
            self.clamped += 1;
        }
        self.clock.record(&mut self.h, stamp, now);
        self.next += 1;
        Ok(())
    }

    fn done(self) -> Samples {
        (self.h, self.clamped)
    }
}

/// A `Tail` read with `Tail::next_timeout` (checksums verified).
fn tail_reader(f: &Follow<'_>, strategy: WaitStrategy) -> Res<Samples> {
    let mut obs = Observer::new(f)?;
    let mut tail = f.log.tail_from(f.from)?.wait_strategy(strategy);
    f.ready.fetch_add(1, Ordering::Release);
    while obs.next < f.until {
        let Some(r) = tail.next_timeout(STOP_CHECK)? else {
            if f.stop.load(Ordering::Relaxed) {
                break;
            }
            continue;
        };
        let now = ticks();
        obs.observe(r.seq(), r.payload(), now)?;
    }
    Ok(obs.done())
}

/// A `TailStream` (owned records, checksums verified) polled inside one
/// `pollster::block_on` for the whole run, so its waker stays the same. A
/// timer of [`STOP_CHECK`], re-armed each time it fires, lets the reader
/// look at `stop`; it is polled only when the stream has nothing.
fn stream_reader(f: &Follow<'_>) -> Res<Samples> {
    let mut obs = Observer::new(f)?;
    let mut stream = f.log.tail_from(f.from)?.into_stream();
    f.ready.fetch_add(1, Ordering::Release);
    pollster::block_on(async {
        let mut timer = Delay::new(STOP_CHECK);
        while obs.next < f.until {
            let item = poll_fn(|cx| match Pin::new(&mut stream).poll_next(cx) {
                Poll::Ready(item) => Poll::Ready(Some(item)),
                Poll::Pending => Pin::new(&mut timer).poll(cx).map(|()| None),
            })
            .await;
            match item {
                Some(Some(r)) => {
                    let r = r?;
                    let now = ticks();
                    obs.observe(r.seq(), r.payload(), now)?;
                }
                Some(None) => return Err("the tail's stream ended".into()),
                None => {
                    if f.stop.load(Ordering::Relaxed) {
                        break;
                    }
                    timer.reset(STOP_CHECK);
                }
            }
        }
        Res::<()>::Ok(())
    })?;
    Ok(obs.done())
}
