//! `kling batch`: many jobs from a manifest, crash-safe and resumable.
//!
//! Every line is checked first. Then the output directory is locked (one batch
//! per directory) and each job goes upload → (journal: intent, synced) →
//! createTask → (journal: task id, synced) → wait → download `DIR/ID.mp4` →
//! (journal: finished) → a line in `DIR/results.jsonl`. Run the same command
//! again after a crash or Ctrl-C: finished jobs are skipped, running ones are
//! waited for, jobs the service certainly did not take are submitted, and jobs
//! whose submit outcome is unknown are listed and left alone unless
//! `--resubmit-ambiguous`. A job whose manifest line changed since it was
//! submitted is reported, not silently taken for the old one.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use kling_api_ext::{CancellationToken, WaitOptions};
use kling_api_ext::{
    Error, Field, PrepareEvent, PrepareOptions, State, SubmitOptions, SubmitWaitReason, TaskId,
};
use serde_json::{Value, json};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::cli::BatchArgs;
use crate::context::Context;
use crate::dirlock::{DirLock, LockError};
use crate::error::CliError;
use crate::error::code;
use crate::journal::{Event, JobState, Journal, Results, now_ms, rewrite_results_with};
use crate::manifest::{self, Job};
use crate::output::{Failure, shell_quote};

/// Counts shown on the progress bar and in the summary.
#[derive(Default)]
struct Counts {
    pending: AtomicUsize,
    running: AtomicUsize,
    done: AtomicUsize,
    failed: AtomicUsize,
    rejected: AtomicUsize,
    not_taken: AtomicUsize,
    ambiguous: AtomicUsize,
    timed_out: AtomicUsize,
    errors: AtomicUsize,
    changed: AtomicUsize,
    /// Tasks whose wait a signal stopped: they keep running on the service.
    left_running: AtomicUsize,
}

fn get(n: &AtomicUsize) -> usize {
    n.load(Ordering::SeqCst)
}

fn add(n: &AtomicUsize) {
    n.fetch_add(1, Ordering::SeqCst);
}

fn sub(n: &AtomicUsize) {
    let _ = n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1));
}

impl Counts {
    fn line(&self) -> String {
        format!(
            "to do {} · running {} · done {} · failed {}",
            get(&self.pending),
            get(&self.running),
            get(&self.done),
            get(&self.failed) + get(&self.rejected) + get(&self.errors)
        )
    }
}

fn io_error(path: &Path, source: std::io::Error) -> CliError {
    CliError::local(path, source)
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
    /// An account-level refusal: submit nothing more.
    halted: AtomicBool,
    /// What the submits wait for now, shown on the bar.
    waiting: Mutex<Option<(Instant, String)>>,
    /// When a pause the service asked for was last said.
    said_pause: Mutex<Option<Instant>>,
    /// Tasks created but not journaled (the disk refused): id, task.
    unjournaled: Mutex<Vec<(String, String)>>,
    /// Jobs that did not end this run, with why.
    unfinished: Mutex<Vec<Value>>,
    /// Jobs that ended badly this run (failed, rejected, errors), for the
    /// closing list: "id (line N): why".
    failures: Mutex<Vec<String>>,
    /// The command that resumes this batch.
    resume: String,
}

pub async fn run(ctx: Context, args: BatchArgs) -> Result<u8, Failure> {
    let out = ctx.out;
    let text = std::fs::read_to_string(&args.manifest).map_err(|e| CliError::Invalid {
        field: Field::File,
        subject: Some(args.manifest.display().to_string()),
        reason: format!("the manifest cannot be read: {e}"),
    })?;
    let (jobs, bad) = manifest::parse(&args.manifest, &text, args.model);
    for line in &bad {
        out.say(&format!(
            "{}:{}: {}",
            args.manifest.display(),
            line.line,
            line.reason
        ));
    }
    if args.strict && !bad.is_empty() {
        return Err(CliError::Invalid {
            field: Field::File,
            subject: Some(args.manifest.display().to_string()),
            reason: format!(
                "{} invalid line(s) and --strict: nothing was sent",
                bad.len()
            ),
        }
        .into());
    }
    std::fs::create_dir_all(&args.out_dir).map_err(|e| io_error(&args.out_dir, e))?;
    // Before the journal is read: a second process on this directory would
    // replay it too and submit every pending job again.
    let _lock = DirLock::acquire(&args.out_dir).map_err(|e| match e {
        LockError::Held { .. } => CliError::Invalid {
            field: Field::File,
            subject: Some(args.out_dir.display().to_string()),
            reason: e.to_string(),
        },
        LockError::Io(path, source) => io_error(&path, source),
    })?;
    let (journal, states, damage) =
        Journal::open(&args.out_dir).map_err(|e| io_error(&args.out_dir, e))?;
    if !damage.is_empty() {
        let lines: Vec<String> = damage.lines.iter().map(ToString::to_string).collect();
        out.warn(&format!(
            "{} damaged line(s) in {} were skipped (line {}: torn by a crash or a full disk, or not UTF-8); everything else resumes",
            damage.torn + damage.not_utf8,
            journal.path().display(),
            lines.join(", ")
        ));
    }
    let results = Results::open(&args.out_dir).map_err(|e| io_error(&args.out_dir, e))?;

    let resume = format!(
        "kling batch {} --out-dir {}",
        shell_quote(&args.manifest.display().to_string()),
        shell_quote(&args.out_dir.display().to_string())
    );
    let counts = Counts::default();
    let mut waits = Vec::new();
    let mut submits = Vec::new();
    let mut ambiguous_jobs = Vec::new();
    let mut skipped = 0usize;
    for job in jobs {
        let record = states.get(&job.id);
        let state = record.map_or(JobState::New, |r| r.state.clone());
        let changed = record
            .and_then(|r| r.input.as_deref())
            .is_some_and(|input| input != job.input);
        // Only where a task exists or may exist: a line fixed after a refusal
        // has nothing to protect and simply runs.
        let task_at_stake = matches!(
            state,
            JobState::Interrupted { .. }
                | JobState::Unknown { .. }
                | JobState::Submitted { .. }
                | JobState::Finished { .. }
        );
        if changed && matches!(state, JobState::Rejected { .. }) {
            out.say(&format!(
                "job {} (line {}): the line changed since it was refused: submitting it",
                job.id, job.line
            ));
            add(&counts.pending);
            submits.push(Plan::Submit(job));
            continue;
        }
        if changed && task_at_stake {
            let tasks = record.map(|r| r.task_ids.join(", ")).unwrap_or_default();
            let tasks = if tasks.is_empty() {
                String::new()
            } else {
                format!(" (task {tasks})")
            };
            if !args.rerun_changed {
                add(&counts.changed);
                out.say(&format!(
                    "job {} (line {}): the line changed since the job was submitted{tasks}: left as it was; rerun with --rerun-changed to submit the new version (a new, paid task)",
                    job.id, job.line
                ));
                continue;
            }
            out.say(&format!(
                "job {} (line {}): the line changed: submitting the new version as a new task; the earlier one{tasks} is not replaced on the service",
                job.id, job.line
            ));
            add(&counts.pending);
            submits.push(Plan::Submit(job));
            continue;
        }
        match state {
            JobState::Interrupted { .. } | JobState::Unknown { .. } if !args.resubmit_ambiguous => {
                ambiguous_jobs.push(job.id.clone());
                add(&counts.ambiguous);
            }
            JobState::Finished { result }
                if args.retry_failed
                    && result.get("status").and_then(Value::as_str) == Some("failed") =>
            {
                out.say(&format!(
                    "job {} (line {}): its task failed; submitting it again (a new task, paid if it succeeds)",
                    job.id, job.line
                ));
                add(&counts.pending);
                submits.push(Plan::Submit(job));
            }
            JobState::Finished { result } => {
                skipped += 1;
                match result.get("status").and_then(Value::as_str) {
                    Some("done") => add(&counts.done),
                    _ => add(&counts.failed),
                };
            }
            JobState::Rejected { .. } if !args.retry_rejected => {
                skipped += 1;
                add(&counts.rejected);
            }
            JobState::Submitted { task_id } => {
                let task_id = TaskId::new(task_id).map_err(Error::from)?;
                waits.push(Plan::Wait(job, task_id));
            }
            _ => {
                add(&counts.pending);
                submits.push(Plan::Submit(job));
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
    // The guard on spending: the jobs to submit, estimated one by one.
    let estimates: Vec<(String, Option<f64>)> = submits
        .iter()
        .map(|plan| match plan {
            Plan::Submit(job) | Plan::Wait(job, _) => {
                (job.id.clone(), ctx.client.estimate_credits(&job.request))
            }
        })
        .collect();
    let unknown = estimates.iter().filter(|(_, e)| e.is_none()).count();
    let total = estimates
        .iter()
        .filter_map(|(_, e)| *e)
        .reduce(|a, b| a + b)
        .map(|t| (t * 100.0).round() / 100.0);
    let what = format!("this batch ({} job(s) to submit)", submits.len());
    let (go, balance) = crate::guard::check(&ctx, &args.spend, total, &what).await?;
    if go == crate::guard::Go::DryRun {
        for (id, estimate) in &estimates {
            out.say(&format!(
                "job {id}: {}",
                estimate.map_or("cost unknown (no audio length)".to_owned(), |e| format!(
                    "about {e} credits"
                ))
            ));
        }
        let unknown_note = if unknown > 0 {
            format!(" ({unknown} job(s) of unknown cost not counted)")
        } else {
            String::new()
        };
        if out.json {
            out.document(&json!({
                "dryRun": true,
                "jobs": estimates.iter().map(|(id, e)| json!({"id": id, "estimatedCredits": e})).collect::<Vec<_>>(),
                "estimatedCredits": total,
                "unknownEstimates": unknown,
                "balance": balance,
                "toWait": waits.len(),
                "invalidLines": bad.len(),
            }));
        } else {
            out.text(&format!(
                "dry run: {} job(s) to submit, about {} credits in all{unknown_note}; {} to wait for; nothing was uploaded or submitted",
                submits.len(),
                total.unwrap_or(0.0),
                waits.len()
            ));
        }
        return Ok(if bad.is_empty() {
            code::OK
        } else {
            code::INVALID
        });
    }
    // Tasks that exist first: their videos come soonest and they need no slot
    // of the rate limit.
    let plans: Vec<Plan> = waits.into_iter().chain(submits).collect();

    let bar = if out.interactive() {
        let bar = ProgressBar::new(plans.len() as u64);
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
        journal,
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

    // The set is owned here, outside any select!: no job is dropped by a
    // cancellation. A signal cancels the token; each job then stops at its next
    // safe point (never with a createTask on the wire).
    let semaphore = Arc::new(Semaphore::new(run.args.concurrency as usize));
    let mut set = JoinSet::new();
    for plan in plans {
        let permit = tokio::select! {
            permit = semaphore.clone().acquire_owned() => permit.expect("never closed"),
            _ = cancel.cancelled() => break,
        };
        let run = run.clone();
        set.spawn(async move {
            let _permit = permit;
            run.job(plan).await;
        });
        while set.try_join_next().is_some() {}
    }
    while let Some(joined) = set.join_next().await {
        if let Err(e) = joined {
            run.ctx
                .out
                .warn(&format!("a job's task ended abnormally: {e}"));
        }
    }
    let interrupted = cancel.is_cancelled();
    if let Some(ticker) = ticker {
        ticker.abort();
    }
    run.bar.finish_and_clear();
    // One line per ended job, whatever crashes or retries happened.
    let invalid: Vec<Value> = bad
        .iter()
        .map(|b| json!({"line": b.line, "status": "invalid", "error": {"kind": "invalid_input", "message": b.reason}}))
        .collect();
    if let Err(e) = rewrite_results_with(&run.args.out_dir, &invalid) {
        out.warn(&format!("cannot rewrite results.jsonl: {e}"));
    }
    Ok(run.summary(interrupted, bad.len(), &ambiguous_jobs))
}

impl Run {
    fn record(&self, event: &Event) -> bool {
        match self.journal.record(event) {
            Ok(()) => true,
            Err(e) => {
                self.say(&format!(
                    "warning: cannot write the journal {}: {e}",
                    self.journal.path().display()
                ));
                false
            }
        }
    }

    fn say(&self, text: &str) {
        self.bar.suspend(|| self.ctx.out.say(text));
    }

    fn tick(&self) {
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
    fn waits(&self, wait: Duration, why: String) {
        *self.waiting.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((Instant::now() + wait, why));
        self.tick();
    }

    fn submit_waits(&self, wait: Duration, reason: &SubmitWaitReason) {
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
    fn end(&self, event: Event, result: Value) {
        if self.record(&event)
            && let Err(e) = self.results.append(&result)
        {
            self.say(&format!("warning: cannot write results.jsonl: {e}"));
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

    async fn job(self: Arc<Self>, plan: Plan) {
        let (job, task_id) = match plan {
            Plan::Wait(job, task_id) => (job, task_id),
            Plan::Submit(job) => match self.submit(&job).await {
                Some(task_id) => (job, task_id),
                None => return,
            },
        };
        add(&self.counts.running);
        self.tick();
        let options = WaitOptions::new()
            .deadline(Some(self.args.timeout))
            .cancel_token(self.cancel.clone());
        let waited = self.ctx.client.wait(&task_id, options).await;
        sub(&self.counts.running);
        match waited {
            Ok(task) => {
                let target = self.args.out_dir.join(format!("{}.mp4", job.id));
                // A download is free and restartable: a signal stops it.
                let saved = tokio::select! {
                    saved = self.ctx.client.download(&task, &target) => saved,
                    _ = self.cancel.cancelled() => return,
                };
                match saved {
                    Ok(saved) => {
                        add(&self.counts.done);
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
                add(&self.counts.failed);
                self.failures
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(format!(
                        "{} (line {}): the task {task_id} failed{}{}",
                        job.id,
                        job.line,
                        fail_code
                            .as_deref()
                            .map(|c| format!(" (failCode {c})"))
                            .unwrap_or_default(),
                        fail_msg
                            .as_deref()
                            .map(|m| format!(": {m}"))
                            .unwrap_or_default()
                    ));
                self.finished(
                    &job.id,
                    json!({"id": job.id, "status": "failed", "taskId": task_id.as_str(), "state": "fail",
                           "error": {"kind": "generation_failed", "failCode": fail_code, "message": fail_msg}}),
                );
            }
            Err(Error::Cancelled { .. }) => add(&self.counts.left_running),
            Err(e @ Error::WaitTimedOut { .. }) => {
                add(&self.counts.timed_out);
                self.not_ended(&job, Some(&task_id), &e, "wait");
            }
            Err(e) => self.not_ended(&job, Some(&task_id), &e, "wait"),
        }
    }

    fn not_ended(&self, job: &Job, task_id: Option<&TaskId>, error: &Error, step: &str) {
        if !matches!(error, Error::WaitTimedOut { .. }) {
            add(&self.counts.errors);
        }
        let task = task_id
            .map(|t| format!(" (task {t}; resume with: {})", self.resume))
            .unwrap_or_default();
        self.say(&format!(
            "job {} (line {}): {step}: {error}{task}",
            job.id, job.line
        ));
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(format!("{} (line {}): {step}: {error}", job.id, job.line));
        let mut entry =
            json!({"id": job.id, "step": step, "kind": error.kind(), "message": error.to_string()});
        if let Some(task_id) = task_id {
            entry["taskId"] = json!(task_id.as_str());
        }
        self.unfinished
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(entry);
        self.tick();
    }

    /// Whether a submit may start now.
    fn may_submit(&self) -> bool {
        !self.cancel.is_cancelled() && !self.halted.load(Ordering::SeqCst)
    }

    /// Upload and check, journal the intent, create the task, journal its id.
    async fn submit(self: &Arc<Self>, job: &Job) -> Option<TaskId> {
        if !self.may_submit() {
            return None;
        }
        let client = &self.ctx.client;
        // Uploads are free: a signal may drop one half-way.
        // A transient failure's pause shows on the bar like a rate-limit wait.
        let run = Arc::downgrade(self);
        let id = job.id.clone();
        let options = PrepareOptions::new().on_event(move |event| {
            if let (PrepareEvent::Retrying(r), Some(run)) = (event, run.upgrade()) {
                let why = format!("{id}: {} failed ({}), trying again", r.operation, r.error);
                if !run.ctx.out.interactive() && r.wait >= Duration::from_secs(1) {
                    run.say(&format!(
                        "waiting {:.0} s: {why}",
                        r.wait.as_secs_f64().ceil()
                    ));
                }
                run.waits(r.wait, why);
            }
        });
        let prepared = tokio::select! {
            prepared = client.prepare_with(&job.request, options) => prepared,
            _ = self.cancel.cancelled() => return None,
        };
        let prepared = match prepared {
            Ok(prepared) => prepared,
            Err(e) => {
                sub(&self.counts.pending);
                // A refusal that would be the same for the same input is
                // final (`--retry-rejected` submits it again); anything else
                // (a rate limit, no credits, no connection) leaves it to do.
                if e.is_final() {
                    self.reject(job, &e);
                } else {
                    self.not_ended(job, None, &e, "upload");
                }
                return None;
            }
        };
        if !self.may_submit() {
            return None;
        }
        if !self.record(&Event::Intent {
            id: job.id.clone(),
            input: job.input.clone(),
            at: now_ms(),
        }) {
            // Without the intent on disk, a crash could not be resumed safely.
            sub(&self.counts.pending);
            add(&self.counts.errors);
            return None;
        }
        let run = Arc::downgrade(self);
        let options = SubmitOptions::new()
            .cancel_token(self.cancel.clone())
            .on_wait(move |w| {
                if let Some(run) = run.upgrade() {
                    run.submit_waits(w.wait, &w.reason);
                }
            });
        let reference = self.ctx.history.intent(
            client.base_url().as_str(),
            &job.request,
            Some(
                self.args
                    .out_dir
                    .join(format!("{}.mp4", job.id))
                    .display()
                    .to_string(),
            ),
            format!("batch {}", job.id),
        );
        let created = {
            let _sending = self.ctx.interrupt.sending();
            client.create_task_with(&prepared, options).await
        };
        self.ctx.history.outcome(&reference, &created);
        *self.waiting.lock().unwrap_or_else(|p| p.into_inner()) = None;
        sub(&self.counts.pending);
        match created {
            Ok(task_id) => {
                self.journal_task(job, &task_id).await;
                Some(task_id)
            }
            Err(e @ Error::SubmitOutcomeUnknown { .. }) => {
                self.ambiguous(job, &e);
                None
            }
            Err(e) if e.is_not_taken() && e.is_final() => {
                self.reject(job, &e);
                None
            }
            Err(e) if e.is_not_taken() => {
                self.not_taken(job, &e);
                None
            }
            // Not vouched for either way (an unknown code): treated as maybe
            // taken, never resent blindly.
            Err(e) => {
                self.ambiguous(job, &e);
                None
            }
        }
    }

    /// Journals a created task's id; a refused write is retried, and the id is
    /// said on stderr either way, so it is never lost.
    async fn journal_task(&self, job: &Job, task_id: &TaskId) {
        let event = Event::Submitted {
            id: job.id.clone(),
            task_id: task_id.to_string(),
            at: now_ms(),
        };
        let mut delay = Duration::from_millis(200);
        for attempt in 1..=5 {
            match self.journal.record(&event) {
                Ok(()) => {
                    if attempt > 1 {
                        self.say(&format!(
                            "job {}: task {task_id} journaled after {attempt} attempts",
                            job.id
                        ));
                    }
                    return;
                }
                Err(e) => {
                    self.say(&format!(
                        "job {} (line {}): task {task_id} was created, but the journal {} cannot be written ({e}); retrying",
                        job.id,
                        job.line,
                        self.journal.path().display()
                    ));
                }
            }
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
        self.say(&format!(
            "job {} (line {}): task {task_id} is NOT in the journal; keep this id: `kling wait {task_id} --out {}` fetches its video",
            job.id,
            job.line,
            shell_quote(
                &self
                    .args
                    .out_dir
                    .join(format!("{}.mp4", job.id))
                    .display()
                    .to_string()
            )
        ));
        self.unjournaled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((job.id.clone(), task_id.to_string()));
    }

    fn ambiguous(&self, job: &Job, error: &Error) {
        add(&self.counts.ambiguous);
        self.record(&Event::Unknown {
            id: job.id.clone(),
            error: error.to_string(),
            at: now_ms(),
        });
        self.say(&format!(
            "job {} (line {}): {error}; left alone on rerun unless --resubmit-ambiguous",
            job.id, job.line
        ));
        self.tick();
    }

    /// No task was created, and the job is to do again on the next run.
    fn not_taken(&self, job: &Job, error: &Error) {
        add(&self.counts.not_taken);
        self.record(&Event::NotTaken {
            id: job.id.clone(),
            kind: error.kind().into(),
            message: error.to_string(),
            at: now_ms(),
        });
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
    fn reject(&self, job: &Job, error: &Error) {
        add(&self.counts.rejected);
        let event = Event::Rejected {
            id: job.id.clone(),
            kind: error.kind().into(),
            message: error.to_string(),
            input: Some(job.input.clone()),
            at: now_ms(),
        };
        let result = json!({"id": job.id, "status": "rejected", "error": {"kind": error.kind(), "message": error.to_string()}});
        self.end(event, result);
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(format!("{} (line {}): rejected: {error}", job.id, job.line));
        self.say(&format!("job {} (line {}): {error}", job.id, job.line));
    }

    fn summary(&self, interrupted: bool, invalid: usize, ambiguous: &[String]) -> u8 {
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
        let left = not_started + get(&c.not_taken) + unfinished.len() + get(&c.left_running);
        let document = json!({
            "done": get(&c.done),
            "failed": get(&c.failed),
            "rejected": get(&c.rejected),
            "notTaken": get(&c.not_taken),
            "notStarted": not_started,
            "ambiguous": get(&c.ambiguous),
            "timedOut": get(&c.timed_out),
            "errors": get(&c.errors),
            "changed": get(&c.changed),
            "stillRunning": get(&c.left_running),
            "invalidLines": invalid,
            "interrupted": interrupted,
            "leftAlone": ambiguous,
            "unfinished": unfinished,
            "unjournaled": unjournaled,
            "resume": (left > 0 || interrupted).then_some(&self.resume),
            "results": self.args.out_dir.join(crate::journal::RESULTS).display().to_string(),
        });
        let out = &self.ctx.out;
        if out.json {
            out.document(&document);
        } else {
            out.text(&format!(
                "done {} · failed {} · rejected {} · not taken {} · not started {} · outcome unknown {} · timed out {} · errors {} · changed {} · invalid lines {}\nresults: {}",
                get(&c.done),
                get(&c.failed),
                get(&c.rejected),
                get(&c.not_taken),
                not_started,
                get(&c.ambiguous),
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
            out.say(&format!(
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
        if interrupted {
            out.say(&format!(
                "interrupted: every createTask that was sent has its answer journaled; {} task(s) keep running on the service; resume with: {}",
                get(&c.left_running),
                self.resume
            ));
            return code::INTERRUPTED;
        }
        if left > 0 {
            out.say(&format!(
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
