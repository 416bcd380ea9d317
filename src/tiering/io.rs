//! The thread that drives the object store client: a current-thread tokio
//! runtime, so that the log's own threads (and the user's) stay plain
//! blocking code. A caller hands it a future and waits for the answer on a
//! channel; the runtime's thread sits in `block_on`, which is what drives a
//! current-thread runtime's I/O and timers. Stopping it drops the runtime,
//! which cancels whatever is in flight: the log's close never waits out a
//! store that hangs.

use std::future::Future;
use std::sync::Mutex;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use crate::error::{Error, Result};

pub(crate) struct Io {
    handle: tokio::runtime::Handle,
    stop: Mutex<Option<oneshot::Sender<()>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// For messages: the store this thread talks to.
    url: String,
}

impl Io {
    pub(crate) fn start(url: &str) -> Result<Io> {
        let spawn_error = |e: std::io::Error| Error::io("start the object store thread", url, e);
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(spawn_error)?;
        let handle = rt.handle().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("varvelog-store".into())
            .spawn(move || {
                rt.block_on(async {
                    let _ = stopped.await;
                });
                // Dropping `rt` here cancels every task still spawned.
            })
            .map_err(spawn_error)?;
        Ok(Io { handle, stop: Mutex::new(Some(stop)), thread: Mutex::new(Some(thread)), url: url.to_string() })
    }

    /// Runs `fut` on the store's thread and waits for its output; an error
    /// if the thread was stopped (the log closed) before it finished.
    pub(crate) fn call<F, T>(&self, fut: F) -> Result<T>
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.handle.spawn(async move {
            let _ = tx.send(fut.await);
        });
        rx.recv().map_err(|_| Error::Store { op: "call the object store", url: self.url.clone(), source: "the log was closed".into() })
    }

    /// Cancels what is in flight and stops the thread.
    pub(crate) fn shutdown(&self) {
        if let Some(stop) = self.stop.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
    }
}

impl Drop for Io {
    fn drop(&mut self) {
        self.shutdown();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_after_shutdown_is_an_error_not_a_hang_or_a_panic() {
        let io = Io::start("memory:///").unwrap();
        assert_eq!(io.call(async { 7 }).unwrap(), 7);
        io.shutdown();
        let e = io.call(async { 8 }).unwrap_err();
        assert!(e.to_string().contains("the log was closed"), "{e}");
    }

    #[test]
    fn shutdown_cancels_a_call_in_flight() {
        let io = std::sync::Arc::new(Io::start("memory:///").unwrap());
        let caller = {
            let io = io.clone();
            std::thread::spawn(move || io.call(async { tokio::time::sleep(std::time::Duration::from_secs(3600)).await }))
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        io.shutdown();
        assert!(caller.join().unwrap().is_err());
    }
}
