//! Progress bars on standard error, through `indicatif`: drawn on a
//! terminal, hidden when stderr is redirected (no `\r` lines in a log file)
//! unless a command's `--progress` asks for them anyway.

use std::io::{self, Write};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

/// What a bar counts.
#[derive(Clone, Copy, Debug)]
pub enum Unit {
    Bytes,
    Records,
}

/// One progress bar.
pub struct Progress {
    bar: ProgressBar,
    /// Drawn on a stderr that is not a terminal: ends its own line.
    forced: bool,
}

impl Progress {
    /// A bar labelled `what`: on a terminal, or on any stderr if `forced`;
    /// never if `hidden`.
    pub fn new(what: &str, unit: Unit, hidden: bool, forced: bool) -> Progress {
        let target = if hidden {
            ProgressDrawTarget::hidden()
        } else if forced {
            ProgressDrawTarget::term_like_with_hz(Box::new(Stderr), 10)
        } else {
            ProgressDrawTarget::stderr_with_hz(10)
        };
        let counts = match unit {
            Unit::Bytes => "{bytes} / {total_bytes} ({bytes_per_sec})",
            Unit::Records => "{human_pos} / {human_len} records ({per_sec})",
        };
        let template = format!("{{prefix}} [{{bar:30}}] {{percent:>3}}% {counts}");
        let style = ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("=> ");
        let bar = ProgressBar::with_draw_target(Some(0), target).with_style(style).with_prefix(what.to_string());
        Progress { bar, forced: forced && !hidden }
    }

    /// `done` of `total` so far.
    pub fn update(&self, done: u64, total: u64) {
        self.bar.set_length(total);
        self.bar.set_position(done.min(total));
    }

    /// Leaves the bar as it is (complete or not) and ends its line.
    pub fn finish(&self) {
        if !self.bar.is_finished() {
            self.bar.abandon();
            if self.forced {
                eprintln!();
            }
        }
    }
}

/// Standard error as a terminal of fixed width, for `--progress` when
/// stderr is not one: each redraw is a `\r`-started line.
#[derive(Debug)]
struct Stderr;

impl TermLike for Stderr {
    fn width(&self) -> u16 {
        100
    }
    fn move_cursor_up(&self, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn move_cursor_down(&self, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn move_cursor_right(&self, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn move_cursor_left(&self, _: usize) -> io::Result<()> {
        Ok(())
    }
    fn write_line(&self, s: &str) -> io::Result<()> {
        writeln!(io::stderr(), "{s}")
    }
    fn write_str(&self, s: &str) -> io::Result<()> {
        write!(io::stderr(), "{s}")
    }
    fn clear_line(&self) -> io::Result<()> {
        write!(io::stderr(), "\r")
    }
    fn flush(&self) -> io::Result<()> {
        io::stderr().flush()
    }
}
