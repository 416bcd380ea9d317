//! Where appends without an explicit timestamp get theirs.

use std::cell::Cell;
use std::sync::OnceLock;

/// Where appends without an explicit timestamp get theirs (microseconds
/// since the Unix epoch).
///
/// Reading the clock is a sizeable part of an append: a `CLOCK_REALTIME`
/// read goes through the vDSO, a TSC read is one instruction plus a scale,
/// and `CLOCK_REALTIME_COARSE` returns the last kernel tick. The project's
/// `docs/benchmarks.md` has measured costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Clock {
    /// The CPU's time-stamp counter (through the `quanta` crate), anchored
    /// to `CLOCK_REALTIME` once per second on each appending thread.
    ///
    /// Between two anchors the time follows the TSC, so it may differ from
    /// `CLOCK_REALTIME` by the TSC's drift against NTP's corrections (parts
    /// per million: microseconds per second at most), and when a thread
    /// re-anchors its clock may step back by as much. Timestamps therefore
    /// stay microsecond-accurate to the system clock within that drift but
    /// are not guaranteed monotonic; varvelog does not need them to be (time
    /// lookups track the running maximum). Where the CPU has no invariant
    /// TSC, `quanta` falls back to the OS's monotonic clock.
    #[default]
    Tsc,
    /// `CLOCK_REALTIME` read on every append: the system clock exactly.
    Realtime,
    /// `CLOCK_REALTIME_COARSE`: cheap, but only as fine as the kernel tick
    /// (typically 1-4 ms).
    RealtimeCoarse,
}

/// Nanoseconds a thread follows the TSC before reading `CLOCK_REALTIME` again.
const ANCHOR_INTERVAL_NS: u64 = 1_000_000_000;

/// The calibrated TSC (calibration runs once per process).
static TSC: OnceLock<quanta::Clock> = OnceLock::new();

thread_local! {
    /// This thread's anchor: a raw TSC reading and the real time read with it.
    static ANCHOR: Cell<Option<(u64, u64)>> = const { Cell::new(None) };
}

impl Clock {
    /// Microseconds since the Unix epoch.
    #[inline]
    #[must_use]
    pub fn now_us(self) -> u64 {
        match self {
            Clock::Tsc => tsc_now_us(),
            Clock::Realtime => read(rustix::time::ClockId::Realtime),
            Clock::RealtimeCoarse => read(rustix::time::ClockId::RealtimeCoarse),
        }
    }

    /// Does the one-time set-up off the append path (the TSC's calibration
    /// by `quanta`, which takes milliseconds), so the first append does not.
    pub(crate) fn warm_up(self) {
        if self == Clock::Tsc {
            tsc();
        }
    }
}

fn tsc() -> &'static quanta::Clock {
    TSC.get_or_init(quanta::Clock::new)
}

fn read(id: rustix::time::ClockId) -> u64 {
    let ts = rustix::time::clock_gettime(id);
    (ts.tv_sec as u64).wrapping_mul(1_000_000).wrapping_add(ts.tv_nsec as u64 / 1000)
}

#[inline]
fn tsc_now_us() -> u64 {
    let clock = tsc();
    let raw = clock.raw();
    let anchored = ANCHOR.with(|a| {
        let (at, us) = a.get()?;
        let ns = clock.delta_as_nanos(at, raw);
        (ns < ANCHOR_INTERVAL_NS).then(|| us + ns / 1000)
    });
    anchored.unwrap_or_else(|| reanchor(raw))
}

#[cold]
fn reanchor(raw: u64) -> u64 {
    let us = read(rustix::time::ClockId::Realtime);
    // Outside a thread's lifetime (in a TLS destructor) there is no anchor
    // to keep; the real time is still right.
    let _ = ANCHOR.try_with(|a| a.set(Some((raw, us))));
    us
}

#[cfg(all(test, not(loom)))]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn tsc_time_stays_within_a_millisecond_of_the_system_clock() {
        // Goal: the TSC clock is the real time, to well within what its
        // documentation allows. Method: over ~1.5 s (so the anchor renews),
        // compare each TSC reading with CLOCK_REALTIME read just before and
        // after; it must lie between them, give or take 1 ms.
        let start = std::time::Instant::now();
        let mut n = 0u64;
        while start.elapsed() < Duration::from_millis(1500) {
            let before = Clock::Realtime.now_us();
            let tsc = Clock::Tsc.now_us();
            let after = Clock::Realtime.now_us();
            assert!(tsc + 1000 >= before && tsc <= after + 1000, "tsc {tsc} outside {before}..{after}");
            n += 1;
            if n.is_multiple_of(1000) {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        assert!(n > 100);
    }
}
