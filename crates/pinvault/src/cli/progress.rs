//! The progress display of long operator commands (`cards import`, `keys
//! rotate`, `keys migrate`), on stderr: on a terminal a line redrawn ten
//! times a second (a bar when the share done is known, the rate, the time
//! left); otherwise (a log, CI) a plain line every five seconds and one at
//! the end.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::app::keys::{OnProgress, Step};

pub(super) struct Progress {
    /// The command, at the start of each plain line (`keys rotate`).
    label: &'static str,
    /// What the rate counts (`cards`, `keys`).
    unit: &'static str,
    tty: bool,
    started: Instant,
    last: Instant,
    drawn: bool,
}

impl Progress {
    pub(super) fn new(label: &'static str, unit: &'static str) -> Self {
        let now = Instant::now();
        Progress {
            label,
            unit,
            tty: std::io::stderr().is_terminal(),
            started: now,
            last: now,
            drawn: false,
        }
    }

    /// Shows `text` (what is done so far), with the rate of `done` and, when
    /// `share` (0 to 1) is known, a bar and the time left; at most ten times
    /// a second on a terminal, every five seconds otherwise, and always at
    /// the `end`.
    pub(super) fn tick(&mut self, share: Option<f64>, done: u64, text: &str, end: bool) {
        let every = if self.tty {
            Duration::from_millis(100)
        } else {
            Duration::from_secs(5)
        };
        if !end && self.last.elapsed() < every {
            return;
        }
        self.last = Instant::now();
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = done as f64 / secs;
        let share = share.map(|f| f.clamp(0.0, 1.0));
        let left = share
            .filter(|&f| f > 0.0 && f < 1.0 && !end)
            .map(|f| format!(", {} left", duration(secs * (1.0 - f) / f)))
            .unwrap_or_default();
        let counts = format!("{text} · {rate:.0} {}/s{left}", self.unit);
        let mut err = std::io::stderr().lock();
        if self.tty {
            let bar = match share {
                Some(f) => {
                    let filled = (f * 30.0).round() as usize;
                    format!(
                        "[{}{}] {:>3.0}% ",
                        "#".repeat(filled),
                        "-".repeat(30 - filled.min(30)),
                        f * 100.0
                    )
                }
                None => String::new(),
            };
            let _ = write!(err, "\r\x1b[2K{bar}{counts}");
            if end {
                let _ = writeln!(err);
            }
            self.drawn = !end;
        } else {
            let pct = share
                .map(|f| format!(" ({:.0}%)", f * 100.0))
                .unwrap_or_default();
            let _ = writeln!(err, "{}{pct}: {counts}", self.label);
        }
    }

    /// A message of its own line (the bar is drawn again after it).
    pub(super) fn say(&mut self, text: &str) {
        let mut err = std::io::stderr().lock();
        if self.drawn {
            let _ = write!(err, "\r\x1b[2K");
            self.drawn = false;
        }
        let _ = writeln!(err, "{text}");
    }
}

/// The display fed by a use case's [`Step`]s, and the callback to give it.
pub(super) fn reporter(label: &'static str, unit: &'static str) -> (OnProgress, Reporter) {
    let shared = Arc::new(Mutex::new((Progress::new(label, unit), None::<Step>)));
    let feed = shared.clone();
    let on: OnProgress = Arc::new(move |step: Step| {
        if let Ok(mut guard) = feed.lock() {
            let (progress, last) = &mut *guard;
            progress.tick(step.share(), step.done, &step.to_string(), false);
            *last = Some(step);
        }
    });
    (on, Reporter(shared))
}

/// Ends a [`reporter`]'s display with its last step.
pub(super) struct Reporter(Arc<Mutex<(Progress, Option<Step>)>>);

impl Reporter {
    pub(super) fn end(self) {
        if let Ok(mut guard) = self.0.lock() {
            let (progress, last) = &mut *guard;
            if let Some(step) = last.take() {
                progress.tick(step.share(), step.done, &step.to_string(), true);
            }
        }
    }
}

fn duration(secs: f64) -> String {
    let s = secs.round() as u64;
    if s >= 3600 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    }
}
