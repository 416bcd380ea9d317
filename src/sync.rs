//! The synchronisation shim: loom's types under `cfg(loom)`, std otherwise.
//!
//! Everything the publication, rotation and retention protocols synchronise
//! through is imported from here, so the loom models check the real code.

/// Cells whose every access loom checks for races (used under loom only,
/// to make reads and writes of mapped frame bytes visible to the models).
#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU32, AtomicU64, AtomicUsize, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicU32, AtomicU64, AtomicUsize, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Locks a mutex, ignoring poisoning (no protected state here is left
/// half-updated by a panic: every critical section is a single swap).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    #[cfg(not(loom))]
    {
        m.lock().unwrap_or_else(|p| p.into_inner())
    }
    #[cfg(loom)]
    {
        m.lock().unwrap()
    }
}

/// Holds the current `Arc<T>` for lock-free loads: `ArcSwap` normally, a loom
/// mutex under loom (loom cannot see inside arc-swap).
pub(crate) struct SnapshotCell<T> {
    #[cfg(not(loom))]
    inner: arc_swap::ArcSwap<T>,
    #[cfg(loom)]
    inner: Mutex<Arc<T>>,
}

impl<T> SnapshotCell<T> {
    pub(crate) fn new(value: Arc<T>) -> Self {
        #[cfg(not(loom))]
        {
            SnapshotCell { inner: arc_swap::ArcSwap::new(value) }
        }
        #[cfg(loom)]
        {
            SnapshotCell { inner: Mutex::new(value) }
        }
    }

    /// The current value (wait-free outside loom).
    pub(crate) fn load(&self) -> Arc<T> {
        #[cfg(not(loom))]
        {
            self.inner.load_full()
        }
        #[cfg(loom)]
        {
            lock(&self.inner).clone()
        }
    }

    /// Whether `value` is still the current value: a cheap check (no
    /// reference-count traffic) for readers polling for a change.
    pub(crate) fn is_current(&self, value: &Arc<T>) -> bool {
        #[cfg(not(loom))]
        {
            Arc::ptr_eq(&self.inner.load(), value)
        }
        #[cfg(loom)]
        {
            Arc::ptr_eq(&*self.inner.lock().unwrap(), value)
        }
    }

    /// Publishes a new value; readers that loaded the old one keep it.
    pub(crate) fn store(&self, value: Arc<T>) {
        #[cfg(not(loom))]
        {
            self.inner.store(value)
        }
        #[cfg(loom)]
        {
            *lock(&self.inner) = value;
        }
    }
}

/// Whether this process registered for expedited `membarrier`, which lets the
/// writer's side of the tail wake-up protocol be a compiler fence only. Set
/// once, in [`init_barriers`], before any writer or tail exists.
#[cfg(not(loom))]
static ASYMMETRIC: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Registers the process for `MEMBARRIER_CMD_PRIVATE_EXPEDITED` (once). Called
/// by `Log::open` before it creates the writer or any tail can exist; if the
/// kernel or a seccomp filter refuses, both sides keep using full fences.
pub(crate) fn init_barriers() {
    #[cfg(not(loom))]
    {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            use rustix::thread::{membarrier, MembarrierCommand};
            if membarrier(MembarrierCommand::RegisterPrivateExpedited).is_ok() && membarrier(MembarrierCommand::PrivateExpedited).is_ok() {
                ASYMMETRIC.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        });
    }
}

/// The frequent side of an asymmetric Dekker pair (the writer after each
/// publication). With expedited membarrier registered it only stops the
/// compiler from reordering; [`heavy_barrier`] supplies the CPU ordering.
#[inline]
pub(crate) fn light_barrier() {
    #[cfg(loom)]
    fence(Ordering::SeqCst);
    #[cfg(not(loom))]
    if ASYMMETRIC.load(std::sync::atomic::Ordering::Relaxed) {
        std::sync::atomic::compiler_fence(Ordering::SeqCst);
    } else {
        fence(Ordering::SeqCst);
    }
}

/// The rare side (a tail about to park): `membarrier` makes every running
/// thread of the process execute a full barrier before it returns, which is
/// what a `SeqCst` fence on the light side would have given. Returns false if
/// the barrier could not be issued, in which case the caller must not sleep
/// long (a wake-up may be missed).
pub(crate) fn heavy_barrier() -> bool {
    #[cfg(loom)]
    {
        fence(Ordering::SeqCst);
        true
    }
    #[cfg(not(loom))]
    {
        if ASYMMETRIC.load(std::sync::atomic::Ordering::Relaxed) {
            let ok = rustix::thread::membarrier(rustix::thread::MembarrierCommand::PrivateExpedited).is_ok();
            fence(Ordering::SeqCst);
            ok
        } else {
            fence(Ordering::SeqCst);
            true
        }
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn barriers_register_or_fall_back_and_the_heavy_side_succeeds() {
        // Goal: after registration the heavy barrier can always be issued, so
        // parked tails never fall back to short sleeps on this kernel.
        // Method: register, then issue both barriers.
        init_barriers();
        light_barrier();
        assert!(heavy_barrier(), "membarrier registered but PRIVATE_EXPEDITED failed");
        eprintln!("asymmetric barriers: {}", ASYMMETRIC.load(std::sync::atomic::Ordering::Relaxed));
    }
}
