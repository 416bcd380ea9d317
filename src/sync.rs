//! The synchronisation shim: loom's types under `cfg(loom)`, std otherwise.
//!
//! Everything the publication, rotation and retention protocols synchronise
//! through is imported from here, so the loom models check the real code.

/// Cells whose every access loom checks for races (used under loom only,
/// to make reads and writes of mapped frame bytes visible to the models).
#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU64, AtomicUsize, Ordering};
#[cfg(loom)]
pub(crate) use loom::sync::{Arc, Condvar, Mutex, MutexGuard};
#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicU64, AtomicUsize, Ordering};
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
