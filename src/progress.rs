//! The progress bar on stderr: shown only where the contract says, never on stdout.

use std::io::{self, IsTerminal, Write};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle, TermLike};

use clap::ValueEnum;

/// When the progress bar is drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ProgressWhen {
    /// Only when stderr is a terminal
    Auto,
    /// Even when stderr is not a terminal
    Always,
    /// Never
    Never,
}

/// Width assumed when stderr is not a terminal and so has none.
const FALLBACK_WIDTH: u16 = 80;

/// How often the bar redraws: smooth to the eye, cheap at a million targets.
const REDRAW_PER_SECOND: u8 = 10;

/// A handle on the progress bar, or nothing when it is not shown; cheap to clone.
#[derive(Clone)]
pub(crate) struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A bar drawn on stderr according to `when`.
    pub(crate) fn new(when: ProgressWhen) -> Self {
        let target = match when {
            ProgressWhen::Never => return Progress { bar: None },
            ProgressWhen::Auto if !io::stderr().is_terminal() => return Progress { bar: None },
            ProgressWhen::Auto => ProgressDrawTarget::stderr_with_hz(REDRAW_PER_SECOND),
            ProgressWhen::Always => {
                ProgressDrawTarget::term_like_with_hz(Box::new(RawStderr), REDRAW_PER_SECOND)
            }
        };
        let style = ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} checked, {msg}{prefix}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        // The prefix slot, drawn last, names the target the run is waiting on (see waiting_on).
        let bar = ProgressBar::with_draw_target(Some(0), target).with_style(style);
        // Set from the start, so the waiting note never follows an empty count.
        bar.set_message("0 unhealthy");
        bar.enable_steady_tick(Duration::from_millis(250));
        Progress { bar: Some(bar) }
    }

    /// One more target has been read.
    pub(crate) fn target_read(&self) {
        if let Some(bar) = &self.bar {
            bar.inc_length(1);
        }
    }

    /// One more result is in; `failed` so far is shown beside the count.
    pub(crate) fn result_done(&self, failed: u64) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
            bar.set_message(format!("{failed} unhealthy"));
        }
    }

    /// Whether the bar is drawn at all.
    pub(crate) fn is_shown(&self) -> bool {
        self.bar.is_some()
    }

    /// Shows `waiting` (what the run waits on, as `, waiting 3s on TARGET`) after the
    /// counts, or nothing.
    pub(crate) fn waiting_on(&self, waiting: Option<String>) {
        if let Some(bar) = &self.bar {
            bar.set_prefix(waiting.unwrap_or_default());
        }
    }

    /// Runs `write` with the bar hidden, so lines printed on a shared terminal stay whole.
    pub(crate) fn suspend<R>(&self, write: impl FnOnce() -> R) -> R {
        match &self.bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }

    /// Removes the bar.
    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Stderr with ANSI cursor control, used for `--progress always` when stderr is no terminal
/// (indicatif's own stderr target hides itself there).
#[derive(Debug)]
struct RawStderr;

impl RawStderr {
    /// Writes `text` only if stderr takes it at once: a frame is dropped rather than wait,
    /// since a pipe nobody reads would otherwise stop the run with it.
    fn write(&self, text: &str) -> io::Result<()> {
        if !stderr_has_room(text.len()) {
            return Ok(());
        }
        io::stderr().write_all(text.as_bytes())
    }

    /// Moves the cursor `n` places; zero is skipped, as terminals read it as one.
    fn move_cursor(&self, n: usize, direction: char) -> io::Result<()> {
        if n == 0 {
            return Ok(());
        }
        self.write(&format!("\x1b[{n}{direction}"))
    }
}

impl TermLike for RawStderr {
    fn width(&self) -> u16 {
        FALLBACK_WIDTH
    }

    fn move_cursor_up(&self, n: usize) -> io::Result<()> {
        self.move_cursor(n, 'A')
    }

    fn move_cursor_down(&self, n: usize) -> io::Result<()> {
        self.move_cursor(n, 'B')
    }

    fn move_cursor_right(&self, n: usize) -> io::Result<()> {
        self.move_cursor(n, 'C')
    }

    fn move_cursor_left(&self, n: usize) -> io::Result<()> {
        self.move_cursor(n, 'D')
    }

    fn write_line(&self, line: &str) -> io::Result<()> {
        self.write(&format!("{line}\n"))
    }

    fn write_str(&self, text: &str) -> io::Result<()> {
        self.write(text)
    }

    fn clear_line(&self) -> io::Result<()> {
        self.write("\r\x1b[2K")
    }

    fn flush(&self) -> io::Result<()> {
        io::stderr().flush()
    }
}

/// Whether `len` bytes can go to stderr without waiting; on a pipe, only while it is less
/// than half full, so the bar never takes the room that upcheck's own messages need.
fn stderr_has_room(len: usize) -> bool {
    const STDERR: libc::c_int = 2;
    let mut ready = libc::pollfd {
        fd: STDERR,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call, and no wait.
    let polled = unsafe { libc::poll(&mut ready, 1, 0) };
    if polled != 1 || ready.revents & libc::POLLOUT == 0 {
        return false;
    }
    // SAFETY: fcntl with F_GETPIPE_SZ takes no argument; it fails on anything but a pipe.
    let capacity = unsafe { libc::fcntl(STDERR, libc::F_GETPIPE_SZ) };
    let Ok(capacity) = usize::try_from(capacity) else {
        return true;
    };
    let mut queued: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int, which `queued` is.
    if unsafe { libc::ioctl(STDERR, libc::FIONREAD, &mut queued) } != 0 {
        return false;
    }
    usize::try_from(queued).is_ok_and(|queued| queued + len <= capacity / 2)
}
