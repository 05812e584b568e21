//! `kling batch`: many jobs from a manifest, crash-safe and resumable.
//!
//! Every line is checked first. Then each job goes upload → (journal: intent,
//! synced) → createTask → (journal: task id, synced) → wait → download
//! `DIR/ID.mp4` → (journal: finished) → a line in `DIR/results.jsonl`. Run the
//! same command again after a crash or Ctrl-C: finished jobs are skipped,
//! running ones are waited for, and jobs whose submit outcome is unknown are
//! listed and left alone unless `--resubmit-ambiguous`.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use indicatif::{ProgressBar, ProgressStyle};
use kling_api_ext::wait::{CancellationToken, WaitOptions};
use kling_api_ext::{Error, Field, State, TaskId};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::cli::BatchArgs;
use crate::context::Context;
use crate::journal::{Event, JobState, Journal, Results, now_ms, rewrite_results};
use crate::manifest::{self, Job};
use crate::output::code;

/// Counts shown on the progress bar and in the summary.
#[derive(Default)]
struct Counts {
    pending: AtomicUsize,
    submitted: AtomicUsize,
    running: AtomicUsize,
    done: AtomicUsize,
    failed: AtomicUsize,
    rejected: AtomicUsize,
    ambiguous: AtomicUsize,
    timed_out: AtomicUsize,
    errors: AtomicUsize,
}

impl Counts {
    fn get(n: &AtomicUsize) -> usize {
        n.load(Ordering::SeqCst)
    }
    fn line(&self) -> String {
        format!(
            "pending {} · submitted {} · running {} · done {} · failed {}",
            Self::get(&self.pending),
            Self::get(&self.submitted),
            Self::get(&self.running),
            Self::get(&self.done),
            Self::get(&self.failed) + Self::get(&self.rejected) + Self::get(&self.errors)
        )
    }
}

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        operation: kling_api_ext::Operation::Validate,
        path: path.to_owned(),
        source,
    }
}

/// What to do with a job on this run.
enum Plan {
    Submit(Job),
    Wait(Job, TaskId),
}

struct Run {
    ctx: Arc<Context>,
    journal: Journal,
    results: Results,
    counts: Counts,
    bar: ProgressBar,
    cancel: CancellationToken,
    args: BatchArgs,
}

pub async fn run(ctx: Context, args: BatchArgs) -> Result<u8, Error> {
    let out = ctx.out;
    let text = std::fs::read_to_string(&args.manifest).map_err(|e| Error::InvalidInput {
        field: Field::File,
        subject: Some(args.manifest.display().to_string()),
        reason: format!("the manifest cannot be read: {e}"),
    })?;
    let (jobs, bad) = manifest::parse(&args.manifest, &text);
    for line in &bad {
        out.say(&format!(
            "{}:{}: {}",
            args.manifest.display(),
            line.line,
            line.reason
        ));
    }
    if args.strict && !bad.is_empty() {
        return Err(Error::InvalidInput {
            field: Field::File,
            subject: Some(args.manifest.display().to_string()),
            reason: format!(
                "{} invalid line(s) and --strict: nothing was sent",
                bad.len()
            ),
        });
    }
    std::fs::create_dir_all(&args.out_dir).map_err(|e| io_error(&args.out_dir, e))?;
    let (journal, states, torn) =
        Journal::open(&args.out_dir).map_err(|e| io_error(&args.out_dir, e))?;
    if torn > 0 {
        out.warn(&format!(
            "{torn} torn line(s) at the end of the journal were skipped (a crash mid-write)"
        ));
    }
    let results = Results::open(&args.out_dir).map_err(|e| io_error(&args.out_dir, e))?;

    let counts = Counts::default();
    let mut plans = Vec::new();
    let mut ambiguous_jobs = Vec::new();
    let mut skipped = 0usize;
    for job in jobs {
        let state = states.get(&job.id).cloned().unwrap_or(JobState::New);
        if matches!(
            state,
            JobState::Interrupted { .. } | JobState::Unknown { .. }
        ) && !args.resubmit_ambiguous
        {
            ambiguous_jobs.push(job.id.clone());
            counts.ambiguous.fetch_add(1, Ordering::SeqCst);
            continue;
        }
        match state {
            JobState::Finished { result } => {
                skipped += 1;
                match result.get("status").and_then(Value::as_str) {
                    Some("done") => counts.done.fetch_add(1, Ordering::SeqCst),
                    _ => counts.failed.fetch_add(1, Ordering::SeqCst),
                };
            }
            JobState::Rejected { .. } if !args.retry_rejected => {
                skipped += 1;
                counts.rejected.fetch_add(1, Ordering::SeqCst);
            }
            JobState::Submitted { task_id } => {
                let task_id = TaskId::new(task_id)?;
                counts.submitted.fetch_add(1, Ordering::SeqCst);
                plans.push(Plan::Wait(job, task_id));
            }
            _ => {
                counts.pending.fetch_add(1, Ordering::SeqCst);
                plans.push(Plan::Submit(job));
            }
        }
    }
    if !ambiguous_jobs.is_empty() {
        out.warn(&format!(
            "{} job(s) whose earlier submit outcome is unknown are left alone (their task may exist and be paid for): {}; \
             rerun with --resubmit-ambiguous to submit them again",
            ambiguous_jobs.len(),
            ambiguous_jobs.join(", ")
        ));
    }
    if skipped > 0 {
        out.say(&format!(
            "{skipped} job(s) already ended in an earlier run: skipped"
        ));
    }

    let bar = if out.interactive() {
        let bar = ProgressBar::new(plans.len() as u64);
        bar.set_style(
            ProgressStyle::with_template("[{bar:30}] {pos}/{len} {msg} [{elapsed}]")
                .expect("valid")
                .progress_chars("=> "),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let cancel = CancellationToken::new();
    let ctx = Arc::new(ctx);
    let run = Arc::new(Run {
        ctx: ctx.clone(),
        journal,
        results,
        counts,
        bar,
        cancel: cancel.clone(),
        args,
    });
    run.bar.set_message(run.counts.line());

    let semaphore = Arc::new(Semaphore::new(run.args.concurrency as usize));
    let mut handles = Vec::new();
    let interrupted = {
        let launch = async {
            for plan in plans {
                let permit = tokio::select! {
                    permit = semaphore.clone().acquire_owned() => permit.expect("open"),
                    _ = cancel.cancelled() => break,
                };
                let run = run.clone();
                handles.push(tokio::spawn(async move {
                    let _permit = permit;
                    run.job(plan).await;
                }));
            }
            for handle in handles.drain(..) {
                let _ = handle.await;
            }
        };
        tokio::select! {
            _ = launch => false,
            _ = tokio::signal::ctrl_c() => true,
        }
    };
    if interrupted {
        // Submits in flight finish and are journalled; waits stop.
        cancel.cancel();
        for handle in handles {
            let _ = handle.await;
        }
    }
    run.bar.finish_and_clear();
    // One line per ended job, whatever crashes or retries happened.
    if let Err(e) = rewrite_results(&run.args.out_dir) {
        out.warn(&format!("cannot rewrite results.jsonl: {e}"));
    }
    Ok(run.summary(interrupted, bad.len(), &ambiguous_jobs))
}

impl Run {
    fn record(&self, event: Event) -> bool {
        match self.journal.record(&event) {
            Ok(()) => true,
            Err(e) => {
                self.ctx.out.warn(&format!(
                    "cannot write the journal {}: {e}",
                    self.journal.path().display()
                ));
                false
            }
        }
    }

    fn tick(&self) {
        self.bar.set_message(self.counts.line());
    }

    /// Journals that the job ended, then appends its result line.
    fn end(&self, event: Event, result: Value) {
        if self.record(event)
            && let Err(e) = self.results.append(&result)
        {
            self.ctx
                .out
                .warn(&format!("cannot write results.jsonl: {e}"));
        }
        self.bar.inc(1);
        self.tick();
    }

    fn finished(&self, id: &str, result: Value) {
        self.end(
            Event::Finished {
                id: id.to_owned(),
                result: result.clone(),
                at: now_ms(),
            },
            result,
        );
    }

    async fn job(&self, plan: Plan) {
        let (job, task_id) = match plan {
            Plan::Wait(job, task_id) => {
                self.counts.submitted.fetch_sub(1, Ordering::SeqCst);
                (job, task_id)
            }
            Plan::Submit(job) => {
                if self.cancel.is_cancelled() {
                    return;
                }
                match self.submit(&job).await {
                    Some(task_id) => (job, task_id),
                    None => return,
                }
            }
        };
        self.counts.running.fetch_add(1, Ordering::SeqCst);
        self.tick();
        let options = WaitOptions::new()
            .deadline(Some(self.args.timeout))
            .cancel_token(self.cancel.clone());
        let waited = self.ctx.client.wait(&task_id, options).await;
        self.counts.running.fetch_sub(1, Ordering::SeqCst);
        match waited {
            Ok(task) => {
                let target = self.args.out_dir.join(format!("{}.mp4", job.id));
                match self.ctx.client.download(&task, &target).await {
                    Ok(saved) => {
                        self.counts.done.fetch_add(1, Ordering::SeqCst);
                        self.finished(
                            &job.id,
                            json!({"id": job.id, "status": "done", "taskId": task_id.as_str(), "state": State::Success.as_str(),
                                   "output": saved.path.display().to_string(), "bytes": saved.bytes, "sha256": saved.sha256,
                                   "costTime": task.cost_time.map(|d| d.as_secs_f64()),
                                   "resultUrls": task.result_urls.iter().map(|u| u.as_str()).collect::<Vec<_>>()}),
                        );
                    }
                    Err(e) => self.not_ended(&job, Some(&task_id), &e, "download"),
                }
            }
            Err(Error::GenerationFailed {
                fail_code,
                fail_msg,
                ..
            }) => {
                self.counts.failed.fetch_add(1, Ordering::SeqCst);
                self.finished(
                    &job.id,
                    json!({"id": job.id, "status": "failed", "taskId": task_id.as_str(), "state": "fail",
                           "error": {"kind": "generation_failed", "failCode": fail_code, "message": fail_msg}}),
                );
            }
            Err(Error::Cancelled { .. }) => {}
            Err(e @ Error::WaitTimedOut { .. }) => {
                self.counts.timed_out.fetch_add(1, Ordering::SeqCst);
                self.not_ended(&job, Some(&task_id), &e, "wait");
            }
            Err(e) => self.not_ended(&job, Some(&task_id), &e, "wait"),
        }
    }

    fn not_ended(&self, job: &Job, task_id: Option<&TaskId>, error: &Error, step: &str) {
        if !matches!(error, Error::WaitTimedOut { .. }) {
            self.counts.errors.fetch_add(1, Ordering::SeqCst);
        }
        let task = task_id
            .map(|t| format!(" (task {t}; rerun to resume)"))
            .unwrap_or_default();
        self.bar.suspend(|| {
            self.ctx.out.say(&format!(
                "job {} (line {}): {step}: {error}{task}",
                job.id, job.line
            ))
        });
        self.tick();
    }

    /// Upload and check, journal the intent, create the task, journal its id.
    async fn submit(&self, job: &Job) -> Option<TaskId> {
        let client = &self.ctx.client;
        let prepared = match client.prepare(&job.request, None).await {
            Ok(prepared) => prepared,
            Err(e) => {
                self.counts.pending.fetch_sub(1, Ordering::SeqCst);
                self.reject_or_error(job, e);
                return None;
            }
        };
        if !self.record(Event::Intent {
            id: job.id.clone(),
            input: job.input.clone(),
            at: now_ms(),
        }) {
            // Without the intent on disk, a crash could not be resumed safely.
            self.counts.pending.fetch_sub(1, Ordering::SeqCst);
            self.counts.errors.fetch_add(1, Ordering::SeqCst);
            return None;
        }
        let created = client.create_task(&prepared).await;
        self.counts.pending.fetch_sub(1, Ordering::SeqCst);
        match created {
            Ok(task_id) => {
                self.record(Event::Submitted {
                    id: job.id.clone(),
                    task_id: task_id.to_string(),
                    at: now_ms(),
                });
                Some(task_id)
            }
            Err(e @ Error::SubmitOutcomeUnknown { .. }) => {
                self.counts.ambiguous.fetch_add(1, Ordering::SeqCst);
                self.record(Event::Unknown {
                    id: job.id.clone(),
                    error: e.to_string(),
                    at: now_ms(),
                });
                self.bar.suspend(|| {
                    self.ctx.out.say(&format!(
                        "job {} (line {}): {e}; left alone on rerun unless --resubmit-ambiguous",
                        job.id, job.line
                    ))
                });
                self.tick();
                None
            }
            Err(e) => {
                self.reject_or_error(job, e);
                None
            }
        }
    }

    /// A submit that ended without a task: final (rejected) when the input or the
    /// account is at fault, otherwise retried on the next run.
    fn reject_or_error(&self, job: &Job, error: Error) {
        let final_answer = matches!(
            error,
            Error::InvalidInput { .. }
                | Error::Rejected { .. }
                | Error::Unauthorized { .. }
                | Error::InsufficientCredits { .. }
                | Error::FeatureDisabled { .. }
                | Error::ServerError { .. }
        );
        if final_answer {
            self.counts.rejected.fetch_add(1, Ordering::SeqCst);
            let event = Event::Rejected {
                id: job.id.clone(),
                kind: error.kind().into(),
                message: error.to_string(),
                at: now_ms(),
            };
            let result = json!({"id": job.id, "status": "rejected", "error": {"kind": error.kind(), "message": error.to_string()}});
            self.end(event, result);
            self.bar.suspend(|| {
                self.ctx
                    .out
                    .say(&format!("job {} (line {}): {error}", job.id, job.line))
            });
        } else {
            self.not_ended(job, None, &error, "submit");
        }
    }

    fn summary(&self, interrupted: bool, invalid: usize, ambiguous: &[String]) -> u8 {
        let get = Counts::get;
        let c = &self.counts;
        let document = json!({
            "done": get(&c.done),
            "failed": get(&c.failed),
            "rejected": get(&c.rejected),
            "ambiguous": get(&c.ambiguous),
            "timedOut": get(&c.timed_out),
            "errors": get(&c.errors),
            "invalidLines": invalid,
            "interrupted": interrupted,
            "leftAlone": ambiguous,
            "results": self.args.out_dir.join(crate::journal::RESULTS).display().to_string(),
        });
        let out = &self.ctx.out;
        if out.json {
            out.document(&document);
        } else {
            out.text(&format!(
                "done {} · failed {} · rejected {} · outcome unknown {} · timed out {} · errors {} · invalid lines {}\nresults: {}",
                get(&c.done),
                get(&c.failed),
                get(&c.rejected),
                get(&c.ambiguous),
                get(&c.timed_out),
                get(&c.errors),
                invalid,
                document["results"].as_str().unwrap_or_default()
            ));
        }
        if interrupted {
            out.say("interrupted: tasks already submitted keep running; run the same command again to resume");
            return code::INTERRUPTED;
        }
        let counts: BTreeMap<u8, usize> = [
            (code::OUTCOME_UNKNOWN, get(&c.ambiguous)),
            (code::TIMED_OUT, get(&c.timed_out)),
            (code::TASK_FAILED, get(&c.failed)),
            (code::SERVICE, get(&c.rejected) + get(&c.errors)),
            (code::INVALID, invalid),
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
