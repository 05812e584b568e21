//! Progress bars and status lines on stderr (drawn only on a terminal).

use std::sync::Arc;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use kling_api_ext::ProgressFn;
use kling_api_ext::wait::WaitEvent;

use crate::output::Out;

/// A byte progress bar; hidden unless stderr is a terminal.
pub fn bytes_bar(out: &Out, label: &str) -> ProgressBar {
    if !out.interactive() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>9} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(label.to_owned());
    bar
}

/// Feeds a bar from the SDK's progress callback.
pub fn feed(bar: &ProgressBar) -> ProgressFn {
    let bar = bar.clone();
    Arc::new(move |done, total| {
        if let Some(total) = total {
            bar.set_length(total);
        }
        bar.set_position(done);
    })
}

/// A status line for the createTask step: says what it waits for (the rate
/// limit's window, a pause the service asked for, a retry) and for how long.
/// Without a terminal, waits of a second or more are printed as lines.
pub struct SubmitLine {
    bar: ProgressBar,
    out: Out,
}

impl SubmitLine {
    pub fn new(out: &Out) -> SubmitLine {
        let bar = if out.interactive() {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix} {msg} [{elapsed}]")
                    .expect("valid template"),
            );
            bar.set_prefix("submit");
            bar.set_message("creating the task");
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        } else {
            ProgressBar::hidden()
        };
        SubmitLine { bar, out: *out }
    }

    pub fn callback(&self) -> impl Fn(&kling_api_ext::SubmitWait) + Send + Sync + 'static {
        let bar = self.bar.clone();
        let out = self.out;
        move |w: &kling_api_ext::SubmitWait| {
            let text = format!(
                "waiting {:.0} s before creating the task: {}",
                w.wait.as_secs_f64().ceil(),
                w.reason
            );
            if !bar.is_hidden() {
                bar.set_message(text);
            } else if w.wait >= Duration::from_secs(1) {
                out.say(&format!("  wait  {text}"));
            }
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// A live status line for a wait: state, elapsed, polls. Without a terminal,
/// state changes are printed as lines instead.
pub struct StatusLine {
    bar: ProgressBar,
    out: Out,
}

impl StatusLine {
    pub fn new(out: &Out, task_id: &str) -> StatusLine {
        let bar = if out.interactive() {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix} {msg} [{elapsed}]")
                    .expect("valid template"),
            );
            bar.set_prefix(format!("task {task_id}"));
            bar.set_message("submitted");
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        } else {
            ProgressBar::hidden()
        };
        StatusLine { bar, out: *out }
    }

    pub fn callback(&self) -> impl Fn(&WaitEvent) + Send + Sync + 'static {
        let bar = self.bar.clone();
        let out = self.out;
        let visible = !bar.is_hidden();
        move |event: &WaitEvent| {
            let state = event
                .state
                .as_ref()
                .map_or("not visible yet".to_owned(), ToString::to_string);
            let note = event
                .transient_error
                .as_deref()
                .map(|e| format!(" (retrying: {e})"))
                .unwrap_or_default();
            if visible {
                bar.set_message(format!("{state}, {} polls{note}", event.polls));
            } else if event.state_changed {
                out.say(&format!(
                    "task {}: {state} after {:.0} s",
                    event.task_id,
                    event.elapsed.as_secs_f64()
                ));
            }
        }
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
