//! Starting a run: its shared state and the progress bar that ticks on a
//! steady clock.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use super::journal::Results;
use super::report::Counts;
use super::{Run, store};
use crate::cli::BatchArgs;
use crate::context::Context;

/// What a run is made of, besides the context and the arguments.
pub(super) struct Parts {
    pub(super) store: store::Store,
    pub(super) results: Results,
    pub(super) counts: Counts,
    pub(super) resume: String,
    pub(super) hooks: Option<crate::webhook::Webhooks>,
}

/// Builds the run and its progress bar (of `total` jobs), ticking on a
/// steady clock on a terminal.
pub(super) fn start(
    ctx: Context,
    args: BatchArgs,
    parts: Parts,
    total: usize,
) -> (Arc<Run>, Option<tokio::task::JoinHandle<()>>) {
    let Parts {
        store,
        results,
        counts,
        resume,
        hooks,
    } = parts;
    let out = ctx.out;
    let bar = if out.interactive() {
        let bar = ProgressBar::new(total as u64);
        bar.set_style(
            ProgressStyle::with_template("[{bar:30}] {pos}/{len} {msg} [{elapsed}]")
                .expect("valid")
                .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(500));
        bar
    } else {
        ProgressBar::hidden()
    };
    let cancel = ctx.interrupt.token();
    let ctx = Arc::new(ctx);
    let run = Arc::new(Run {
        ctx: ctx.clone(),
        store,
        results,
        counts,
        bar,
        cancel: cancel.clone(),
        args,
        halted: AtomicBool::new(false),
        waiting: Mutex::new(None),
        said_pause: Mutex::new(None),
        unjournaled: Mutex::new(Vec::new()),
        unfinished: Mutex::new(Vec::new()),
        failures: Mutex::new(Vec::new()),
        resume,
        hooks,
        recovered: Mutex::new(Vec::new()),
        found: Mutex::new(Vec::new()),
    });
    run.tick();
    // The bar's message carries countdowns ("waiting 6 s: ..."): refreshed on
    // a steady clock, not only when a job changes state.
    let ticker = out.interactive().then(|| {
        let run = Arc::downgrade(&run);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(500));
            loop {
                every.tick().await;
                match run.upgrade() {
                    Some(run) => run.tick(),
                    None => return,
                }
            }
        })
    });

    (run, ticker)
}

pub(super) fn stop_bar(run: &Run, ticker: Option<tokio::task::JoinHandle<()>>) {
    if let Some(ticker) = ticker {
        ticker.abort();
    }
    run.bar.finish_and_clear();
}
