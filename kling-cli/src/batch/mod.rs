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

#[cfg(feature = "postgres")]
mod fleet;
mod job;
mod journal;
mod listen;
mod manifest;
mod mode;
mod plan;
mod report;
#[cfg(feature = "postgres")]
mod resolve;
mod result;
mod spend;
mod start;
#[cfg(feature = "postgres")]
mod status;
mod store;
mod submit;

use report::{Counts, add, sub};

pub use result::ResultLine;
use spend::guard;
use start::{Parts, start, stop_bar};
#[cfg(feature = "postgres")]
pub use status::status;

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use kling_api_ext::CancellationToken;
use kling_api_ext::{Error, Field, TaskId};
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::cli::BatchArgs;
use crate::context::Context;
use crate::dirlock::{DirLock, LockError};
use crate::error::CliError;
use crate::output::Failure;
use journal::{Journal, Results, rewrite_results_with};
use listen::Listeners;
use manifest::Job;
use plan::Decision;

fn io_error(path: &Path, source: std::io::Error) -> CliError {
    CliError::local(path, source)
}

/// Takes `dir`'s lock (one batch process per directory, journal or fleet).
fn lock_dir(dir: &Path) -> Result<DirLock, CliError> {
    DirLock::acquire(dir).map_err(|e| match e {
        LockError::Held { .. } => CliError::Invalid {
            field: Field::File,
            subject: Some(dir.display().to_string()),
            reason: e.to_string(),
        },
        LockError::Io(path, source) => io_error(&path, source),
    })
}

/// What to do with a job on this run.
enum Plan {
    Submit(Job),
    /// A task that exists; `true` when its `callBackUrl` carries a nonce
    /// (its intent was made in webhook mode), so a receiver may hear it.
    Wait(Job, TaskId, bool),
    /// An unknown outcome from an earlier run: listen for its nonce's
    /// callback until `stop` (the rest of the run is done).
    Listen(Job, String, CancellationToken),
    /// An earlier intent of a job that went on without it (submitted again,
    /// or a later intent is the one listened for): listen for its nonce's
    /// callback until `stop`, and record the task it names as found.
    Found(Job, String, CancellationToken),
}

struct Run {
    ctx: Arc<Context>,
    store: store::Store,
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
    /// The callback receiver (`--listen`).
    hooks: Option<crate::webhook::Webhooks>,
    /// Jobs whose unknown outcome a callback resolved this run.
    recovered: Mutex<Vec<String>>,
    /// Tasks of earlier intents that callbacks named this run: job, task,
    /// whether the service confirmed it.
    found: Mutex<Vec<(String, String, bool)>>,
}

/// Reads and checks the manifest: its jobs and its invalid lines (said);
/// with `--strict`, any invalid line stops the run here.
fn load_manifest(
    out: crate::output::Out,
    args: &BatchArgs,
) -> Result<(Vec<Job>, Vec<manifest::BadLine>), CliError> {
    let text = std::fs::read_to_string(&args.manifest).map_err(|e| CliError::Invalid {
        field: Field::File,
        subject: Some(args.manifest.display().to_string()),
        reason: format!("the manifest cannot be read: {e}"),
    })?;
    let (jobs, bad) = manifest::parse(&args.manifest, &text, args.model.clone());
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
        });
    }
    Ok((jobs, bad))
}

pub async fn run(ctx: Context, args: BatchArgs) -> Result<u8, Failure> {
    let out = ctx.out;
    let (jobs, bad) = load_manifest(out, &args)?;
    std::fs::create_dir_all(args.out_dir()).map_err(|e| io_error(args.out_dir(), e))?;
    if args.store.is_some() {
        if ctx.simulated {
            return Err(CliError::Invalid {
                field: Field::Config,
                subject: Some("--store".into()),
                reason: "--sim keeps its tasks in this process's simulator: a shared job store would mix them with real tasks (and mark real jobs done with simulated videos); nothing was sent. Run a fleet against `kling sim` (its --base-url), or without --store".into(),
            }
            .into());
        }
        #[cfg(feature = "postgres")]
        return fleet::run(ctx, args, jobs, bad).await;
        // main refuses --store before this in a build without it.
        #[cfg(not(feature = "postgres"))]
        return Err(CliError::missing_feature("--store", "postgres").into());
    }
    // Before the journal is read: a second process on this directory would
    // replay it too and submit every pending job again.
    let _lock = lock_dir(args.out_dir())?;
    // A fleet's directory: its jobs are in the store, not in a journal.
    if let Some(mark) = mode::read_mark(args.out_dir())? {
        return Err(mode::refuse_journal_in_fleet_dir(&args, &mark).into());
    }
    // A journal run journals a task before its result line names it.
    if !mode::journal_holds(args.out_dir()) && mode::results_name_tasks(args.out_dir()) {
        return Err(mode::refuse_journal_in_unmarked_fleet_dir(&args).into());
    }
    let (journal, states, damage) =
        Journal::open(args.out_dir()).map_err(|e| io_error(args.out_dir(), e))?;
    if !damage.is_empty() {
        let lines: Vec<String> = damage.lines.iter().map(ToString::to_string).collect();
        out.warn(&format!(
            "{} damaged line(s) in {} were skipped (line {}: torn by a crash or a full disk, or not UTF-8); everything else resumes",
            damage.torn + damage.not_utf8,
            journal.path().display(),
            lines.join(", ")
        ));
    }
    mode::check_service(&args, &ctx.service(), &states)?;
    let results = Results::open(args.out_dir()).map_err(|e| io_error(args.out_dir(), e))?;

    out.say(&format!(
        "journal batch: its records are in {} (one process per directory)",
        journal.path().display()
    ));
    let resume = mode::resume_command(&args);
    let counts = Counts::default();
    let mut waits = Vec::new();
    let mut submits = Vec::new();
    let mut sent_last = None;
    let mut tally = plan::Tally::new(&counts);
    let mut ambiguous = Vec::new();
    let mut found = Vec::new();
    let now = crate::batch::journal::now_ms();
    for job in jobs {
        let decision = plan::decide(&job, states.get(&job.id), &args);
        let left_alone = decision == Decision::Ambiguous;
        // Earlier intents whose tasks may exist, while their tasks may still
        // be called back: listened for whatever this run does with the job.
        if let Some(record) = states.get(&job.id)
            && record
                .intent_at
                .is_some_and(|at| at.saturating_add(args.timeout.as_millis() as u64) > now)
        {
            for nonce in &record.open_nonces {
                if !(left_alone && record.nonce.as_ref() == Some(nonce)) {
                    found.push((job.clone(), nonce.clone()));
                    sent_last = sent_last.max(record.intent_at);
                }
            }
        }
        match tally.take(&job, decision, out) {
            Some(Decision::Submit { note }) => {
                if let Some(note) = note {
                    out.say(&note);
                }
                add(&counts.pending);
                submits.push(Plan::Submit(job));
            }
            Some(Decision::Wait(task_id)) => {
                let task_id = TaskId::new(task_id).map_err(Error::from)?;
                // Its callback comes to a receiver only if its intent had a nonce.
                let called_back = states.get(&job.id).is_some_and(|r| r.nonce.is_some());
                waits.push(Plan::Wait(job, task_id, called_back));
            }
            _ if left_alone => ambiguous.push(job),
            _ => {}
        }
    }
    let (ambiguous_jobs, skipped) = (std::mem::take(&mut tally.ambiguous), tally.skipped);
    announce(out, &ambiguous_jobs, skipped);
    let to_submit: Vec<&Job> = submits
        .iter()
        .map(|plan| match plan {
            Plan::Submit(job)
            | Plan::Wait(job, ..)
            | Plan::Listen(job, ..)
            | Plan::Found(job, ..) => job,
        })
        .collect();
    // Before the guard reads the balance: bad webhook flags send nothing.
    let hooks = crate::webhook::start(&out, &args.webhook, None, ctx.client.base_url()).await?;
    if let Some(code) = guard(&ctx, &args, &to_submit, waits.len(), bad.len()).await? {
        return Ok(code);
    }
    // Tasks that exist first: their videos come soonest and they need no slot
    // of the rate limit.
    let plans: Vec<Plan> = waits.into_iter().chain(submits).collect();

    let unknown: Vec<(Job, String)> = ambiguous
        .into_iter()
        .filter_map(|job| {
            let record = states.get(&job.id)?;
            let nonce = record.nonce.clone()?;
            sent_last = sent_last.max(record.intent_at);
            Some((job, nonce))
        })
        .collect();
    // A rerun listens while the rest of the run goes on and, once it is
    // done, as long as those tasks may still run: until the last one's intent
    // plus --timeout (a kill leaves tasks that end after the rest is done).
    let until = sent_last.map_or(0, |at| at.saturating_add(args.timeout.as_millis() as u64));
    let left = Duration::from_millis(until.saturating_sub(now));
    let listens = Listeners::plans(out, hooks.is_some(), unknown, found, Some(left));
    let parts = Parts {
        store: store::Store::Journal(journal),
        results,
        counts,
        resume,
        hooks,
    };
    let (run, ticker) = start(ctx, args, parts, plans.len() + listens.plans.len());
    let cancel = run.cancel.clone();
    let listeners = Listeners::spawn(&run, listens);
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
    listeners.finish(&cancel).await;
    let interrupted = cancel.is_cancelled();
    stop_bar(&run, ticker);
    // One line per ended job, whatever crashes or retries happened.
    if let Err(e) = rewrite_results_with(run.args.out_dir(), &invalid_lines(&bad)) {
        out.warn(&format!("cannot rewrite results.jsonl: {e}"));
    }
    Ok(run.summary(interrupted, bad.len(), &ambiguous_jobs))
}

/// The result lines of the manifest's invalid lines.
fn invalid_lines(bad: &[manifest::BadLine]) -> Vec<ResultLine> {
    bad.iter()
        .map(|b| ResultLine::invalid(b.line, &b.reason))
        .collect()
}

/// Says which jobs are left alone and how many ended before.
fn announce(out: crate::output::Out, ambiguous_jobs: &[String], skipped: usize) {
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
}
