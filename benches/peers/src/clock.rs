//! The benchmark's timer: the CPU's time-stamp counter where it is invariant
//! (x86_64 with `constant_tsc` and `nonstop_tsc`), calibrated against
//! `Instant`; `Instant` elsewhere. Latency samples are `end - start - overhead`
//! where `overhead` is the median of back-to-back reads measured in the same
//! run, so the figures exclude the cost of reading the clock itself.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

/// Which counter [`ticks`] reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// `rdtsc`: ~20 cycles, invariant across cores on this kind of CPU.
    Tsc,
    /// `Instant::now()` (vDSO `clock_gettime(CLOCK_MONOTONIC)`), in nanoseconds.
    Instant,
}

static SOURCE: OnceLock<Source> = OnceLock::new();
static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Reads the counter chosen by [`Clock::calibrate`].
#[inline(always)]
pub fn ticks() -> u64 {
    #[cfg(target_arch = "x86_64")]
    if SOURCE.get() == Some(&Source::Tsc) {
        // SAFETY: `rdtsc` has no preconditions: it reads the time-stamp
        // counter and touches no memory. It is only selected after
        // /proc/cpuinfo showed an invariant TSC.
        return unsafe { core::arch::x86_64::_rdtsc() };
    }
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// The calibrated timer.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    /// The counter in use.
    pub source: Source,
    /// Nanoseconds per tick.
    pub ns_per_tick: f64,
    /// Median ticks between two back-to-back reads, subtracted from every sample.
    pub overhead_ticks: u64,
}

impl Clock {
    /// Picks the counter, measures its rate over ~100 ms and its read overhead.
    pub fn calibrate() -> Clock {
        let source = *SOURCE.get_or_init(|| if invariant_tsc() { Source::Tsc } else { Source::Instant });
        let _ = EPOCH.get_or_init(Instant::now);
        let ns_per_tick = match source {
            Source::Instant => 1.0,
            Source::Tsc => {
                let (t0, c0) = (Instant::now(), ticks());
                while t0.elapsed() < Duration::from_millis(100) {
                    std::hint::spin_loop();
                }
                let (c1, t1) = (ticks(), Instant::now());
                (t1 - t0).as_nanos() as f64 / (c1.wrapping_sub(c0)).max(1) as f64
            }
        };
        let mut pairs: Vec<u64> = (0..200_000)
            .map(|_| {
                let a = ticks();
                let b = ticks();
                b.wrapping_sub(a)
            })
            .collect();
        pairs.sort_unstable();
        Clock { source, ns_per_tick, overhead_ticks: pairs[pairs.len() / 2] }
    }

    /// Ticks to nanoseconds.
    #[inline]
    pub fn ns(&self, ticks: u64) -> u64 {
        (ticks as f64 * self.ns_per_tick) as u64
    }

    /// The overhead subtracted from each sample, in nanoseconds.
    pub fn overhead_ns(&self) -> f64 {
        self.overhead_ticks as f64 * self.ns_per_tick
    }

    /// Records `end - start - overhead` (clamped at zero) in nanoseconds.
    #[inline]
    pub fn record(&self, h: &mut Histogram<u64>, start: u64, end: u64) {
        h.saturating_record(self.ns(end.saturating_sub(start).saturating_sub(self.overhead_ticks)));
    }

    /// Describes the timer for the report.
    pub fn describe(&self) -> String {
        match self.source {
            Source::Tsc => format!(
                "rdtsc at {:.3} GHz; {:.1} ns per read pair (median), subtracted from every latency sample",
                1.0 / self.ns_per_tick,
                self.overhead_ns()
            ),
            Source::Instant => {
                format!("Instant::now(); {:.1} ns per read pair (median), subtracted from every latency sample", self.overhead_ns())
            }
        }
    }
}

fn invariant_tsc() -> bool {
    if !cfg!(target_arch = "x86_64") {
        return false;
    }
    let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") else { return false };
    let flags = info.lines().find(|l| l.starts_with("flags")).unwrap_or("");
    let has = |f: &str| flags.split_whitespace().any(|w| w == f);
    has("constant_tsc") && has("nonstop_tsc")
}
