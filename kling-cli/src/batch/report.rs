//! What a run tells: the counts, the journal and result lines as jobs end,
//! the status line, and the summary with its exit code.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kling_api_ext::Error;
use kling_api_ext::submit::SubmitWaitReason;
use serde_json::{Value, json};

use super::store::StoreError;
use crate::error::code;
use journal::{Event, now_ms};
use manifest::Job;

use super::*;

/// Counts shown on the progress bar and in the summary.
#[derive(Default)]
pub(super) struct Counts {
    pub(super) pending: AtomicUsize,
    pub(super) running: AtomicUsize,
    pub(super) done: AtomicUsize,
    pub(super) failed: AtomicUsize,
    pub(super) rejected: AtomicUsize,
    pub(super) not_taken: AtomicUsize,
    pub(super) ambiguous: AtomicUsize,
    /// Unknown outcomes whose task a callback named (webhook mode).
    pub(super) recovered: AtomicUsize,
    pub(super) timed_out: AtomicUsize,
    pub(super) errors: AtomicUsize,
    pub(super) changed: AtomicUsize,
    /// Tasks whose wait a signal stopped: they keep running on the service.
    pub(super) left_running: AtomicUsize,
}

pub(super) fn get(n: &AtomicUsize) -> usize {
    n.load(Ordering::SeqCst)
}

pub(super) fn add(n: &AtomicUsize) {
    n.fetch_add(1, Ordering::SeqCst);
}

pub(super) fn sub(n: &AtomicUsize) {
    let _ = n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1));
}

impl Counts {
    /// Counts a job that ended in an earlier run.
    pub(super) fn ended(&self, ended: super::plan::Ended) {
        use super::plan::Ended;
        add(match ended {
            Ended::Done => &self.done,
            Ended::Failed => &self.failed,
            Ended::Rejected => &self.rejected,
        });
    }

    pub(super) fn line(&self) -> String {
        format!(
            "to do {} · running {} · done {} · failed {}",
            get(&self.pending),
            get(&self.running),
            get(&self.done),
            get(&self.failed) + get(&self.rejected) + get(&self.errors)
        )
    }
}

impl Run {
    /// Records an event in the store, saying why when it cannot.
    pub(super) async fn record(&self, event: &Event) -> Result<(), StoreError> {
        let recorded = self.store.record(event).await;
        match &recorded {
            Ok(()) => {}
            Err(e @ StoreError::LeaseLost { .. }) => self.say(&e.to_string()),
            Err(e) => self.notice(&format!(
                "warning: cannot write {}: {e}",
                self.store.describe()
            )),
        }
        recorded
    }

    pub(super) fn say(&self, text: &str) {
        self.bar.suspend(|| self.ctx.out.say(text));
    }

    /// [`crate::output::Out::notice`] above the bar: shown even with `-q`.
    pub(super) fn notice(&self, text: &str) {
        self.bar.suspend(|| self.ctx.out.notice(text));
    }

    pub(super) fn tick(&self) {
        let waiting = self
            .waiting
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .and_then(|(until, why)| {
                let left = until.saturating_duration_since(Instant::now());
                (!left.is_zero())
                    .then(|| format!(" · waiting {:.0} s: {why}", left.as_secs_f64().ceil()))
            })
            .unwrap_or_default();
        self.bar
            .set_message(format!("{}{waiting}", self.counts.line()));
    }

    /// A submit waits (rate limit, a pause the service asked for, a retry).
    /// Something waits `wait` (shown on the bar with its countdown).
    pub(super) fn waits(&self, wait: Duration, why: String) {
        *self.waiting.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((Instant::now() + wait, why));
        self.tick();
    }

    pub(super) fn submit_waits(&self, wait: Duration, reason: &SubmitWaitReason) {
        self.waits(wait, reason.to_string());
        if !self.ctx.out.interactive() && matches!(reason, SubmitWaitReason::ServicePause) {
            // Said once per pause: there is no bar to show it on.
            let mut said = self.said_pause.lock().unwrap_or_else(|p| p.into_inner());
            if said.is_none_or(|at| at.elapsed() >= wait.max(Duration::from_secs(5))) {
                *said = Some(Instant::now());
                self.ctx.out.say(&format!(
                    "waiting {:.0} s before creating more tasks: {reason}",
                    wait.as_secs_f64().ceil()
                ));
            }
        }
    }

    /// Journals that the job ended, then appends its result line.
    pub(super) async fn end(&self, event: Event, result: ResultLine) {
        let result = result.to_value();
        if self.record(&event).await.is_ok()
            && let Err(e) = self.results.append(&result)
        {
            self.say(&format!("warning: cannot write results.jsonl: {e}"));
        }
        self.bar.inc(1);
        self.tick();
    }

    pub(super) async fn finished(&self, id: &str, result: ResultLine) {
        self.end(
            Event::Finished {
                id: id.to_owned(),
                result: result.to_value(),
                at: now_ms(),
            },
            result,
        )
        .await;
    }

    pub(super) async fn ambiguous(&self, job: &Job, error: &Error) {
        add(&self.counts.ambiguous);
        let _ = self
            .record(&Event::Unknown {
                id: job.id.clone(),
                error: error.to_string(),
                at: now_ms(),
            })
            .await;
        let next = if self.hooks.is_some() {
            "listening for its task's callback (without one, it is left alone on rerun unless --resubmit-ambiguous)"
        } else {
            "left alone on rerun unless --resubmit-ambiguous"
        };
        self.notice(&format!(
            "job {} (line {}): {error}; {next}",
            job.id, job.line
        ));
        self.tick();
    }

    /// No task was created, and the job is to do again on the next run.
    pub(super) async fn not_taken(&self, job: &Job, error: &Error) {
        add(&self.counts.not_taken);
        let _ = self
            .record(&Event::NotTaken {
                id: job.id.clone(),
                kind: error.kind().into(),
                message: error.to_string(),
                retrying: false,
                at: now_ms(),
            })
            .await;
        if matches!(error, Error::NotSent { .. }) {
            // Interrupted while waiting to send: said once by the summary.
            return;
        }
        // About the account, not the job: no later job can succeed either,
        // so no more are submitted in this run.
        if error.is_account() {
            // Said once: the jobs sent at the same time got the same answer.
            if !self.halted.swap(true, Ordering::SeqCst) {
                self.say(&format!(
                    "job {} (line {}): {error}; no more jobs are submitted in this run (no task was created for it); the rest are to do on the next run",
                    job.id, job.line
                ));
            }
        } else {
            self.say(&format!(
                "job {} (line {}): not taken: {error}; no task was created; it is submitted on the next run",
                job.id, job.line
            ));
        }
        self.tick();
    }

    /// A refusal that would be the same next time: final, with its result line.
    pub(super) async fn reject(&self, job: &Job, error: &Error) {
        add(&self.counts.rejected);
        let event = Event::Rejected {
            id: job.id.clone(),
            kind: error.kind().into(),
            message: error.to_string(),
            input: Some(job.input.clone()),
            at: now_ms(),
        };
        let result = ResultLine::rejected(&job.id, error.kind(), &error.to_string());
        self.end(event, result).await;
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(format!("{} (line {}): rejected: {error}", job.id, job.line));
        self.say(&format!("job {} (line {}): {error}", job.id, job.line));
    }

    pub(super) fn summary(&self, interrupted: bool, invalid: usize, ambiguous: &[String]) -> u8 {
        let c = &self.counts;
        let not_started = get(&c.pending);
        let unjournaled: Vec<Value> = self
            .unjournaled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(id, task)| json!({"id": id, "taskId": task}))
            .collect();
        let unfinished = self
            .unfinished
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let recovered = self
            .recovered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let found: Vec<Value> = self
            .found
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(id, task, confirmed)| json!({"id": id, "taskId": task, "confirmed": confirmed}))
            .collect();
        let left_alone: Vec<&String> = ambiguous
            .iter()
            .filter(|id| !recovered.contains(id))
            .collect();
        let left = not_started + get(&c.not_taken) + unfinished.len() + get(&c.left_running);
        let document = json!({
            "done": get(&c.done),
            "failed": get(&c.failed),
            "rejected": get(&c.rejected),
            "notTaken": get(&c.not_taken),
            "notStarted": not_started,
            "ambiguous": get(&c.ambiguous),
            "recovered": get(&c.recovered),
            "timedOut": get(&c.timed_out),
            "errors": get(&c.errors),
            "changed": get(&c.changed),
            "stillRunning": get(&c.left_running),
            "invalidLines": invalid,
            "interrupted": interrupted,
            "leftAlone": left_alone,
            "unfinished": unfinished,
            "unjournaled": unjournaled,
            "found": found,
            "resume": (left > 0 || interrupted).then_some(&self.resume),
            "results": self.args.out_dir().join(crate::batch::journal::RESULTS).display().to_string(),
        });
        let out = &self.ctx.out;
        if out.json {
            out.document(&document);
        } else {
            out.text(&format!(
                "done {} · failed {} · rejected {} · not taken {} · not started {} · outcome unknown {}{} · timed out {} · errors {} · changed {} · invalid lines {}\nresults: {}",
                get(&c.done),
                get(&c.failed),
                get(&c.rejected),
                get(&c.not_taken),
                not_started,
                get(&c.ambiguous),
                match get(&c.recovered) {
                    0 => String::new(),
                    n => format!(" · recovered {n}"),
                },
                get(&c.timed_out),
                get(&c.errors),
                get(&c.changed),
                invalid,
                document["results"].as_str().unwrap_or_default()
            ));
        }
        let failures = self
            .failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if !failures.is_empty() {
            out.say(&format!(
                "{} job(s) did not make a video in this run:",
                failures.len()
            ));
            for failure in &failures {
                out.say(&format!("  {failure}"));
            }
        }
        if !unjournaled.is_empty() {
            out.notice(&format!(
                "{} task(s) created but not journaled (the disk refused): {}",
                unjournaled.len(),
                unjournaled
                    .iter()
                    .map(|u| format!(
                        "{} = task {}",
                        u["id"].as_str().unwrap_or(""),
                        u["taskId"].as_str().unwrap_or("")
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if !found.is_empty() {
            out.notice(&format!(
                "{} task(s) of earlier submits found by their callbacks (paid for; recorded with their jobs): {}",
                found.len(),
                found
                    .iter()
                    .map(|f| format!(
                        "{} = task {}{}",
                        f["id"].as_str().unwrap_or(""),
                        f["taskId"].as_str().unwrap_or(""),
                        if f["confirmed"] == true { "" } else { " (not confirmed yet)" }
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        if interrupted {
            out.notice(&format!(
                "interrupted: every createTask that was sent has its answer journaled; {} task(s) keep running on the service; resume with: {}",
                get(&c.left_running),
                self.resume
            ));
            return code::INTERRUPTED;
        }
        if left > 0 {
            out.notice(&format!(
                "{left} job(s) still to do; resume with: {}",
                self.resume
            ));
        }
        let counts: BTreeMap<u8, usize> = [
            (code::OUTCOME_UNKNOWN, get(&c.ambiguous)),
            (code::TIMED_OUT, get(&c.timed_out)),
            (code::TASK_FAILED, get(&c.failed)),
            (
                code::SERVICE,
                get(&c.rejected) + get(&c.errors) + get(&c.not_taken) + not_started,
            ),
            (code::INVALID, invalid + get(&c.changed)),
        ]
        .into_iter()
        .collect();
        // The most serious problem decides: 6, then 5, 4, 3, 2.
        for status in [
            code::OUTCOME_UNKNOWN,
            code::TIMED_OUT,
            code::TASK_FAILED,
            code::SERVICE,
            code::INVALID,
        ] {
            if counts[&status] > 0 {
                return status;
            }
        }
        code::OK
    }
}
