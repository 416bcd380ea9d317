//! How the writer wakes tails that wait for it: threads parked on a
//! condition variable, and async tasks through their registered wakers.

use std::task::Waker;
use std::time::{Duration, Instant};

use crate::sync::{heavy_barrier, light_barrier, AtomicUsize, Condvar, Mutex, Ordering};

/// Tails parked waiting for the writer, and how the writer wakes them.
///
/// # Protocol (no lost wake-ups)
///
/// Tail, to park ([`Waiters::wait_until`]):
/// 1. lock `lock`;
/// 2. `count += 1` (Relaxed), then the heavy barrier (`membarrier`, or a
///    `SeqCst` fence where that is unavailable or under loom);
/// 3. re-check for a published record (`ready()`, Acquire loads of the
///    committed word and of the snapshot pointer); if there is one, stop;
/// 4. `cv.wait` (atomically releases `lock`), then go to 3;
/// 5. on the way out, `count -= 1`.
///
/// Writer, after each publication ([`Waiters::wake`]):
/// 1. `Release` store of the committed word (done by the caller);
/// 2. the light barrier (a compiler fence when `membarrier` is registered,
///    else a `SeqCst` fence), then load `count` (Relaxed);
/// 3. only if it is non-zero: lock `lock`, `notify_all`, unlock.
///
/// Why nothing is lost: the heavy barrier makes every running thread, the
/// writer included, pass a full barrier before it returns, so it orders the
/// writer's store-then-load as a `SeqCst` fence there would, and the two
/// barriers are totally ordered. If the writer's comes first, the tail's
/// loads in step 3 see the writer's store, so it does not park. If the
/// tail's comes first, the writer's load of `count` sees the increment and it
/// takes the lock; the tail incremented while holding the lock and releases
/// it only by waiting, so the writer's `notify_all` happens after the tail
/// waits (or after it stopped), and wakes it. The writer's cost when nobody waits is
/// one load of a line only tails write (plus a fence where `membarrier` is
/// missing). The loom model checks this protocol with fences on both sides.
///
/// # Async tails
///
/// An async tail ([`Waiters::poll_ready`]) that finds nothing new registers
/// its task's waker instead of parking, by the same steps: under `lock`, add
/// (or replace) its entry in the list `lock` guards and, for a new entry,
/// `count += 1`; the heavy barrier; then re-check and return `Pending` only
/// if still nothing is published. The writer's `wake_slow` takes every
/// registered waker under the lock, lowers `count` by as many, and wakes
/// them after unlocking. The argument is the one above: a registration
/// either sees the publication in its re-check or is seen by the writer's
/// load of `count`, and the writer takes the wakers only under the lock the
/// registration held. A woken task that wants more registers again, so the
/// writer's fast path stays one load while no async tail waits. An entry is
/// removed when its stream is dropped. The loom model `tail_wakeup.rs` runs
/// an async tail under `loom::future::block_on` (a lost wake-up is a
/// deadlock there); its `mutant-waker` mutant skips the re-check and is
/// caught.
pub(crate) struct Waiters {
    count: AtomicUsize,
    lock: Mutex<Vec<(u64, Waker)>>,
    cv: Condvar,
}

impl Waiters {
    pub(crate) fn new() -> Waiters {
        Waiters { count: AtomicUsize::new(0), lock: Mutex::new(Vec::new()), cv: Condvar::new() }
    }

    /// Writer side: call after every `Release` publication.
    #[inline]
    pub(crate) fn wake(&self) {
        light_barrier();
        if self.count.load(Ordering::Relaxed) != 0 {
            self.wake_slow();
        }
    }

    #[cold]
    #[inline(never)]
    fn wake_slow(&self) {
        let wakers = {
            let mut g = crate::sync::lock(&self.lock);
            self.cv.notify_all();
            let wakers = std::mem::take(&mut *g);
            self.count.fetch_sub(wakers.len(), Ordering::Relaxed);
            wakers
        };
        for (_, waker) in wakers {
            waker.wake();
        }
    }

    /// Async reader side: `true` if `ready()`; otherwise registers `waker`
    /// under `id` (replacing an earlier one of the same id) so that the
    /// writer's next [`Waiters::wake`] wakes it, and returns `ready()`
    /// re-checked after registering. `ready` must be a few atomic loads.
    #[cfg(any(feature = "async", loom))]
    pub(crate) fn poll_ready(&self, id: u64, waker: &Waker, mut ready: impl FnMut() -> bool) -> bool {
        if ready() {
            return true;
        }
        {
            let mut g = crate::sync::lock(&self.lock);
            match g.iter_mut().find(|(i, _)| *i == id) {
                Some((_, w)) => w.clone_from(waker),
                None => {
                    g.push((id, waker.clone()));
                    self.count.fetch_add(1, Ordering::Relaxed);
                }
            }
            if !heavy_barrier() {
                // A wake-up may be missed: have the task polled again soon.
                waker.wake_by_ref();
            }
        }
        // Mutant (loom only): trust the check made before registering.
        if cfg!(all(loom, feature = "loom-mutant-waker")) {
            return false;
        }
        ready()
    }

    /// Removes the waker registered under `id`, if the writer has not taken it.
    #[cfg(any(feature = "async", loom))]
    pub(crate) fn deregister(&self, id: u64) {
        let mut g = crate::sync::lock(&self.lock);
        if let Some(i) = g.iter().position(|(i, _)| *i == id) {
            g.swap_remove(i);
            self.count.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Reader side: parks until `ready()` returns true or `deadline` passes;
    /// returns the last `ready()`. `ready` runs under the lock: keep it to a
    /// few atomic loads.
    pub(crate) fn wait_until(&self, mut ready: impl FnMut() -> bool, deadline: Option<Instant>) -> bool {
        let mut guard = crate::sync::lock(&self.lock);
        self.count.fetch_add(1, Ordering::Relaxed);
        // Without the barrier a wake-up could be missed: then sleep in short
        // slices so a missed one costs at most a millisecond.
        let slice = if heavy_barrier() { Duration::from_secs(3600) } else { Duration::from_millis(1) };
        let ok = loop {
            if ready() {
                break true;
            }
            let wait = match deadline {
                None => slice,
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left.min(slice),
                    _ => break false,
                },
            };
            guard = match self.cv.wait_timeout(guard, wait) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        };
        self.count.fetch_sub(1, Ordering::Relaxed);
        drop(guard);
        ok
    }

    /// Tails waiting right now, threads and async (for the loom models).
    #[allow(dead_code)]
    pub(crate) fn parked(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }
}
