//! Tail wake-up, over the engine's own `tail::Waiters` (the writer's
//! `wake` after a publication; a tail's `wait_until`): a tail that parks
//! because nothing new is published is always woken by the next
//! publication. Under loom a condition-variable wait has no timeout, so a
//! lost wake-up is a deadlock, which loom reports.
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
    });
}
