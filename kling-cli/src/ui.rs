//! Progress bars and status lines on stderr (drawn only on a terminal).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressState, ProgressStyle};
use kling_api_ext::MediaKind;
use kling_api_ext::submit::{PrepareEvent, PrepareOptions};
use kling_api_ext::upload::ProgressFn;
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

/// A spinner saying what the CLI waits for, on a steady clock; hidden unless
/// stderr is a terminal. Clear it with `finish_and_clear`.
pub fn spinner(out: &Out, prefix: &str, message: &str) -> ProgressBar {
    if !out.interactive() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(Countdown::default().style(SPINNER));
    bar.set_prefix(prefix.to_owned());
    bar.set_message(message.to_owned());
    bar.enable_steady_tick(Duration::from_millis(120));
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

/// When a wait shown on a status line ends; read on every redraw, so the
/// seconds left count down on the steady tick, not only when the SDK reports.
#[derive(Clone, Default)]
struct Countdown(Arc<Mutex<Option<Instant>>>);

impl Countdown {
    fn until(&self, wait: Duration) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now() + wait);
    }

    fn clear(&self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// `{left}` in a template: " (N s left)" while a wait runs, else nothing.
    fn style(&self, template: &str) -> ProgressStyle {
        let deadline = self.0.clone();
        ProgressStyle::with_template(template)
            .expect("valid template")
            .with_key(
                "left",
                move |_: &ProgressState, w: &mut dyn std::fmt::Write| {
                    let until = *deadline.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some(until) = until {
                        let left = until.saturating_duration_since(Instant::now());
                        let _ = write!(w, " ({:.0} s left)", left.as_secs_f64().ceil());
                    }
                },
            )
    }
}

const SPINNER: &str = "{spinner} {prefix} {msg}{left} [{elapsed}]";
const BYTES: &str = "{prefix:>9} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {msg}";

/// The status line of the uploads and URL checks before a createTask: a
/// spinner while URLs are checked, a byte bar per file, and, while a failed
/// request waits to be made again, what failed and the seconds left (never a
/// finished bar sitting still). Without a terminal, waits of a second or more
/// are printed as lines.
pub struct PrepareLine {
    bar: ProgressBar,
    out: Out,
    countdown: Countdown,
}

impl PrepareLine {
    pub fn new(out: &Out) -> PrepareLine {
        let bar = if out.interactive() {
            ProgressBar::new(0)
        } else {
            ProgressBar::hidden()
        };
        PrepareLine {
            bar,
            out: *out,
            countdown: Countdown::default(),
        }
    }

    /// The SDK's reports, drawn on this line.
    pub fn options(&self) -> PrepareOptions {
        let bar = self.bar.clone();
        let out = self.out;
        let countdown = self.countdown.clone();
        let spinner = countdown.style(SPINNER);
        let bytes = countdown.style(BYTES).progress_chars("=> ");
        let visible = !bar.is_hidden();
        PrepareOptions::new()
            .progress(feed(&self.bar))
            .on_event(move |event| match event {
                PrepareEvent::CheckingUrls { urls } => {
                    countdown.clear();
                    bar.set_style(spinner.clone());
                    bar.set_prefix("check");
                    bar.set_message(if *urls == 1 {
                        "what the URL input serves".to_owned()
                    } else {
                        format!("what the {urls} URL inputs serve")
                    });
                    bar.enable_steady_tick(Duration::from_millis(120));
                }
                PrepareEvent::Uploading {
                    kind,
                    path,
                    bytes: size,
                } => {
                    countdown.clear();
                    bar.disable_steady_tick();
                    bar.set_style(bytes.clone());
                    bar.set_prefix("upload");
                    bar.set_length(*size);
                    bar.set_position(0);
                    bar.reset_elapsed();
                    let name = path.file_name().map_or_else(
                        || path.display().to_string(),
                        |n| n.to_string_lossy().into_owned(),
                    );
                    bar.set_message(format!("{} {name}", kind_word(*kind)));
                }
                PrepareEvent::Retrying(r) => {
                    let text = format!(
                        "{} failed: {}; attempt {} of {} next",
                        r.operation, r.error, r.attempt, r.max_attempts
                    );
                    if visible {
                        countdown.until(r.wait);
                        bar.set_style(spinner.clone());
                        bar.set_prefix("retry");
                        bar.set_message(text);
                        bar.enable_steady_tick(Duration::from_millis(120));
                    } else if r.wait >= Duration::from_secs(1) {
                        out.say(&format!(
                            "  wait  {text}, in {:.0} s",
                            r.wait.as_secs_f64().ceil()
                        ));
                    }
                }
                _ => {}
            })
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

fn kind_word(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Image => "image",
        MediaKind::Audio => "audio",
    }
}

/// A status line for the createTask step: says what it waits for (the rate
/// limit's window, a pause the service asked for, a retry) and for how long.
/// Without a terminal, waits of a second or more are printed as lines.
pub struct SubmitLine {
    bar: ProgressBar,
    out: Out,
    countdown: Countdown,
}

impl SubmitLine {
    pub fn new(out: &Out) -> SubmitLine {
        let countdown = Countdown::default();
        let bar = if out.interactive() {
            let bar = ProgressBar::new_spinner();
            bar.set_style(countdown.style(SPINNER));
            bar.set_prefix("submit");
            bar.set_message("creating the task");
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        } else {
            ProgressBar::hidden()
        };
        SubmitLine {
            bar,
            out: *out,
            countdown,
        }
    }

    pub fn callback(&self) -> impl Fn(&kling_api_ext::submit::SubmitWait) + Send + Sync + 'static {
        let bar = self.bar.clone();
        let out = self.out;
        let countdown = self.countdown.clone();
        move |w: &kling_api_ext::submit::SubmitWait| {
            if !bar.is_hidden() {
                countdown.until(w.wait);
                bar.set_message(format!("waiting before creating the task: {}", w.reason));
            } else if w.wait >= Duration::from_secs(1) {
                out.say(&format!(
                    "  wait  waiting {:.0} s before creating the task: {}",
                    w.wait.as_secs_f64().ceil(),
                    w.reason
                ));
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
            let note = if event.via_callback {
                format!(" (called back){note}")
            } else {
                note
            };
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

    /// Webhook mode: nothing is polled until the callback (or the safety poll).
    pub fn waiting_for_callback(&self) {
        self.bar
            .set_message("submitted; waiting for its callback (a status request confirms it)");
    }

    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
