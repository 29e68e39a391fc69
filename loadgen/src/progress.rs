//! The live progress line on stderr (only when it is a terminal): elapsed time,
//! answers, rate, errors, open connections. Read from the counters each thread
//! publishes ([`Live`]), never from the hot path.

use std::sync::atomic::Ordering;
use std::time::Instant;

use indicatif::{ProgressBar, ProgressStyle};

use crate::config::Config;
use crate::plan::Live;

/// The live line: elapsed time, answers, rate, errors, open connections.
pub struct Progress {
    bar: ProgressBar,
    start: Instant,
    /// The bar shows time (duration-bound run) rather than answers.
    by_time: bool,
    conns: u64,
    last: std::cell::Cell<(Instant, u64)>,
}

impl Progress {
    pub fn new(config: &Config) -> Self {
        let total = config.settings.duration.map(|d| d + config.settings.warmup);
        let bar = match total {
            Some(t) => ProgressBar::new(t.as_millis() as u64),
            None => ProgressBar::new(config.settings.requests.unwrap_or(0)),
        };
        let style = ProgressStyle::with_template("{elapsed:>4} [{bar:20}] {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        let now = Instant::now();
        Progress {
            bar,
            start: now,
            by_time: total.is_some(),
            conns: config.settings.conns,
            last: std::cell::Cell::new((now, 0)),
        }
    }

    /// Redraw from the threads' published counters.
    pub fn update(&self, lives: &[Live]) {
        let sum = |f: fn(&Live) -> u64| lives.iter().map(f).sum::<u64>();
        let answers = sum(|l| l.answers.load(Ordering::Relaxed));
        self.show(answers, sum(|l| l.errors.load(Ordering::Relaxed)), sum(|l| l.open.load(Ordering::Relaxed)));
    }

    /// Redraw with these totals.
    pub fn show(&self, answers: u64, errors: u64, open: u64) {
        let now = Instant::now();
        let (then, before) = self.last.replace((now, answers));
        let dt = now.duration_since(then).as_secs_f64();
        let rate = if dt > 0.0 { answers.saturating_sub(before) as f64 / dt } else { 0.0 };
        self.bar.set_position(if self.by_time { self.start.elapsed().as_millis() as u64 } else { answers });
        self.bar.set_message(format!("{answers} answers, {rate:.0}/s, {errors} errors, {open}/{} open", self.conns));
    }

    /// Redraw the time only (the counts live in child processes).
    pub fn show_elapsed(&self, procs: u32) {
        if self.by_time {
            self.bar.set_position(self.start.elapsed().as_millis() as u64);
        }
        self.bar.set_message(format!("{procs} load generator processes, {} connections", self.conns));
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
