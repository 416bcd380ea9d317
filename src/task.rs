//! A pass run every interval on a background thread: what
//! [`crate::Log::retain_every`] and [`crate::Log::compact_every`] start.

use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use crossbeam_channel::{bounded, RecvTimeoutError, Sender};

use crate::error::{Error, Result};
use crate::log::LogInner;

#[derive(Debug, Default)]
struct Stats {
    passes: u64,
    /// The sum of what the passes returned (segments removed, rewritten).
    done: u64,
    last_error: Option<Error>,
}

/// The thread of a periodic pass. Dropping it stops the thread (after a
/// pass in progress ends); it holds the log only weakly, so closing the log
/// stops it too.
#[derive(Debug)]
pub(crate) struct Periodic {
    stop: Option<Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
    stats: Arc<Mutex<Stats>>,
}

impl Periodic {
    /// Runs `pass` every `interval` on a thread called `name`.
    pub(crate) fn spawn(
        log: &Arc<LogInner>,
        name: &'static str,
        interval: Duration,
        pass: impl Fn(&LogInner) -> Result<u64> + Send + 'static,
    ) -> Result<Periodic> {
        let weak: Weak<LogInner> = Arc::downgrade(log);
        let (stop, stopped) = bounded::<()>(0);
        let stats = Arc::new(Mutex::new(Stats::default()));
        let task_stats = stats.clone();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    let Some(inner) = weak.upgrade() else { return };
                    let result = pass(&inner);
                    let mut s = task_stats.lock().unwrap_or_else(|p| p.into_inner());
                    s.passes += 1;
                    match result {
                        Ok(n) => s.done += n,
                        Err(e) => s.last_error = Some(e),
                    }
                }
            })
            .map_err(|e| Error::io("spawn thread", name, e))?;
        Ok(Periodic { stop: Some(stop), thread: Some(thread), stats })
    }

    fn stats(&self) -> std::sync::MutexGuard<'_, Stats> {
        self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Passes run so far.
    pub(crate) fn passes(&self) -> u64 {
        self.stats().passes
    }

    /// The sum of what the passes returned.
    pub(crate) fn done(&self) -> u64 {
        self.stats().done
    }

    /// The error of the latest failed pass, if any since the last call.
    pub(crate) fn take_error(&self) -> Option<Error> {
        self.stats().last_error.take()
    }
}

impl Drop for Periodic {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
