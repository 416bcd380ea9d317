//! Tail wake-up, over the engine's own `tail::Waiters` (the writer's
//! `wake` after a publication; a tail's `wait_until`): a tail that parks
//! because nothing new is published is always woken by the next
//! publication. Under loom a condition-variable wait has no timeout, so a
//! lost wake-up is a deadlock, which loom reports. Async tails register a
//! waker instead of parking (`Waiters::poll_ready`); they run under
//! `loom::future::block_on`, where a waker never woken is a deadlock too.
#![cfg(loom)]

mod common;

use std::path::Path;

use common::{model, payload, read_from};
use loom::thread;
use varvelog::__loom::{LogState, SegmentWriter};

#[test]
#[cfg_attr(feature = "mutant", ignore = "the mutant breaks publication on purpose")]
fn parked_tail_is_always_woken_by_the_next_publication() {
    // Goal: no lost wake-up. Method: a tail waits for record 0 while the
    // writer appends it and then wakes tails (what `Writer` does after every
    // publication); every interleaving must end with the tail reading it.
    model(|| {
        let mut w = SegmentWriter::anonymous(0, 256);
        let log = LogState::new(Path::new("unused"), &w);
        let tail = log.handle();
        let t = thread::spawn(move || {
            tail.wait_for(0);
            assert!(read_from(&tail.snapshot(), 0) >= 1);
        });
        w.append(&payload(0));
        log.wake_tails();
        t.join().unwrap();
    });
}

#[test]
#[cfg_attr(feature = "mutant", ignore = "the mutant breaks publication on purpose")]
fn two_tails_waiting_for_different_records_are_both_woken() {
    // Goal: a wake-up reaches every parked tail, including one waiting for a
    // later record. Method: two tails wait for records 0 and 1; the writer
    // appends both, waking after each.
    model(|| {
        let mut w = SegmentWriter::anonymous(0, 256);
        let log = LogState::new(Path::new("unused"), &w);
        let (a, b) = (log.handle(), log.handle());
        let ta = thread::spawn(move || a.wait_for(0));
        let tb = thread::spawn(move || b.wait_for(1));
        w.append(&payload(0));
        log.wake_tails();
        w.append(&payload(1));
        log.wake_tails();
        ta.join().unwrap();
        tb.join().unwrap();
        assert_eq!(log.waiting(), 0, "a registration or a parked count was left behind");
    });
}

/// An async tail waiting for record `seq`: polls until it is published.
fn poll_until_published(log: &LogState, id: u64, seq: u64) {
    loom::future::block_on(std::future::poll_fn(|cx| {
        if log.poll_for(id, seq, cx.waker()) {
            std::task::Poll::Ready(())
        } else {
            std::task::Poll::Pending
        }
    }));
}

#[test]
#[cfg_attr(any(feature = "mutant", feature = "mutant-waker"), ignore = "the mutants break wake-ups on purpose")]
fn waiting_async_tail_is_always_woken_by_the_next_publication() {
    // Goal: no lost wake-up for an async tail, beside a parked thread, and
    // no registration left behind. Method: an async tail (waker
    // registration) and a parked tail wait for record 0 while the writer
    // appends it and wakes; every interleaving must end with both reading
    // it, and with the waiter count back at 0 once the async tail dropped
    // its registration (the writer's fast path again).
    model(|| {
        let mut w = SegmentWriter::anonymous(0, 256);
        let log = LogState::new(Path::new("unused"), &w);
        let (a, b) = (log.handle(), log.handle());
        let ta = thread::spawn(move || {
            poll_until_published(&a, 1, 0);
            assert!(read_from(&a.snapshot(), 0) >= 1);
            a.forget_waker(1);
        });
        let tb = thread::spawn(move || b.wait_for(0));
        w.append(&payload(0));
        log.wake_tails();
        ta.join().unwrap();
        tb.join().unwrap();
    });
}

/// A waker that records that it was woken.
struct Flag(std::sync::atomic::AtomicBool);

impl std::task::Wake for Flag {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// One poll of an async tail for record 0 beside the writer appending it
/// and waking: afterwards the tail either saw the record or was woken
/// (checked after both threads joined, so a lost wake-up is an assertion
/// failure, not a deadlock).
fn one_poll_sees_the_record_or_is_woken() {
    model(|| {
        let mut w = SegmentWriter::anonymous(0, 256);
        let log = LogState::new(Path::new("unused"), &w);
        let a = log.handle();
        let flag = std::sync::Arc::new(Flag(std::sync::atomic::AtomicBool::new(false)));
        let waker = std::task::Waker::from(flag.clone());
        // A stream that got `Pending` stays registered until it is dropped.
        let ta = thread::spawn(move || a.poll_for(1, 0, &waker));
        w.append(&payload(0));
        log.wake_tails();
        let ready = ta.join().unwrap();
        assert!(ready || flag.0.load(std::sync::atomic::Ordering::SeqCst), "an async tail missed its wake-up");
        log.forget_waker(1);
        assert_eq!(log.waiting(), 0, "a registration was left behind");
    });
}

#[test]
#[cfg_attr(any(feature = "mutant", feature = "mutant-waker"), ignore = "the mutants break wake-ups on purpose")]
fn an_async_tail_sees_the_record_or_is_woken() {
    // Goal: the registration protocol on its own, every interleaving of
    // one poll with one publication.
    one_poll_sees_the_record_or_is_woken();
}

#[test]
#[cfg(feature = "mutant-waker")]
#[should_panic(expected = "missed its wake-up")]
fn mutant_waker_without_recheck_is_caught() {
    // The mutant returns Pending after registering without looking again,
    // so a publication between the first check and the registration is
    // never noticed.
    one_poll_sees_the_record_or_is_woken();
}
