//! A child run of this test binary, for the SIGKILL crash tests: the child
//! is one test of the same binary (`--exact NAME`), told by environment
//! variables to play the child's part. Its stdout lines come through a
//! channel as it prints them, its stderr is kept for failure messages, and
//! dropping a `Child` kills (SIGKILL) and reaps it, so a failing test leaves
//! no process behind. Every wait is bounded.

use std::io::{BufRead, Read};
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

/// How long the pipes may take to close after the kill (the child held
/// their only write ends, so they close at once unless something is wrong).
const PIPE_TIMEOUT: Duration = Duration::from_secs(10);

/// A running child.
pub struct Child {
    proc: std::process::Child,
    lines: Receiver<String>,
    stderr: Receiver<String>,
    /// Lines already taken from `lines` by [`Child::wait_until`].
    seen: Vec<String>,
}

/// What a child printed before it ended, and how it ended.
pub struct Ended {
    pub lines: Vec<String>,
    pub status: ExitStatus,
    pub stderr: String,
}

impl Child {
    /// Runs test `test` of this binary with `envs` set and the variables
    /// `unset` removed from what it inherits.
    pub fn spawn(test: &str, envs: &[(&str, String)], unset: &[&str]) -> Child {
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args(["--exact", test, "--nocapture", "--test-threads=1"]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        for name in unset {
            cmd.env_remove(name);
        }
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut proc = cmd.spawn().expect("spawn a child");
        let out = proc.stdout.take().unwrap();
        let mut err = proc.stderr.take().unwrap();
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let (etx, stderr) = channel();
        std::thread::spawn(move || {
            let mut s = String::new();
            let _ = err.read_to_string(&mut s);
            let _ = etx.send(s);
        });
        Child { proc, lines, stderr, seen: Vec::new() }
    }

    /// Waits up to `timeout` for a line that `found` accepts; `false` if the
    /// child stopped printing or the time ran out.
    pub fn wait_until(&mut self, timeout: Duration, found: impl Fn(&str) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        while let Ok(line) = self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            let hit = found(&line);
            self.seen.push(line);
            if hit {
                return true;
            }
        }
        false
    }

    /// Kills the child with SIGKILL, reaps it and returns everything it
    /// printed (whether it had ended by itself shows in `status`).
    pub fn kill(mut self) -> Ended {
        let _ = self.proc.kill();
        let status = self.proc.wait().expect("reap a child");
        let deadline = Instant::now() + PIPE_TIMEOUT;
        let mut lines = std::mem::take(&mut self.seen);
        while let Ok(line) = self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            lines.push(line);
        }
        let stderr = self.stderr.recv_timeout(deadline.saturating_duration_since(Instant::now())).unwrap_or_default();
        Ended { lines, status, stderr }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.proc.kill();
        let _ = self.proc.wait();
    }
}

impl Ended {
    /// Whether SIGKILL ended the child (rather than the child itself).
    pub fn killed(&self) -> bool {
        self.status.signal() == Some(9)
    }

    /// Panics, with what the child printed, unless SIGKILL ended it.
    #[track_caller]
    pub fn assert_killed(&self, context: &str) {
        assert!(
            self.killed(),
            "{context}: the child ended by itself ({}) before the kill; it printed {:?}, stderr:\n{}",
            self.status,
            self.lines,
            self.stderr
        );
    }

    /// The numbers of the child's `ACK n` lines, in order. The test harness
    /// prints `test NAME ... ` without a newline before the child's first
    /// line, so an `ACK` may follow it on the same line.
    pub fn acks(&self) -> Vec<u64> {
        self.lines.iter().filter_map(|l| ack(l)).collect()
    }
}

/// The number of an `ACK n` line.
pub fn ack(line: &str) -> Option<u64> {
    line.find("ACK ").and_then(|at| line[at + 4..].trim().parse().ok())
}
