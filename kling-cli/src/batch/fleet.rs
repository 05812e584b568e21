//! `kling batch --store postgres://…`: the same manifest run by several
//! workers (processes, hosts) sharing the jobs through PostgreSQL. Each
//! worker loads the manifest (idempotently), then claims jobs one at a time
//! until every job has ended or is left alone; every job is submitted once
//! and downloaded once, to the `--out-dir` of the worker that finished it.
//! See docs/design/shared-store.md.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use kling_api_ext::TaskId;
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::manifest::{BadLine, Job};
use super::mode::{self, StoreMark};
use super::plan::{Decision, decide};
use super::report::{Counts, add};
use super::resolve::resolve_batch;
use super::store::postgres::{self, identity};
use super::store::store_error;
use super::store::{Claimed, PgJobs, Store};
use super::{Plan, Run, announce, guard, invalid_lines, start, stop_bar};
use crate::cli::BatchArgs;
use crate::context::Context;
use crate::error::CliError;
use crate::output::Failure;

/// This worker's name in the store: host, process and a random suffix.
pub(super) fn worker_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "host".into());
    // 64 random bits: containers on one host network share the host name
    // and often pid 1, and two workers with one name would share leases.
    format!("{host}:{}:{:016x}", std::process::id(), fastrand::u64(..))
}

/// The store's URL as it may be shown: without its password, in either form
/// (`user:pw@` or `?password=`).
pub fn shown_url(url: &str) -> String {
    kling_api_ext::redact(url)
}

pub(super) async fn run(
    ctx: Context,
    args: BatchArgs,
    jobs: Vec<Job>,
    bad: Vec<BadLine>,
) -> Result<u8, Failure> {
    let out = ctx.out;
    let url = args.store.clone().unwrap_or_default();
    if args.lease < Duration::from_secs(1) {
        return Err(CliError::Invalid {
            field: kling_api_ext::Field::Config,
            subject: Some("--lease".into()),
            reason: "a lease shorter than 1 s cannot be renewed in time: give 1s or more".into(),
        }
        .into());
    }
    // One fleet worker per directory, like one journal run: the lock is
    // held until the run ends.
    let _lock = super::lock_dir(args.out_dir())?;
    if mode::journal_holds(args.out_dir()) {
        return Err(mode::refuse_fleet_in_journal_dir(&args).into());
    }
    let mark = mode::read_mark(args.out_dir())?;
    let pool = postgres::connect(&url).await.map_err(store_error)?;
    let store_id = identity::store_id(&pool).await.map_err(store_error)?;
    // Deciding the batch and loading its jobs, one worker at a time.
    let resolving = identity::lock(&pool).await.map_err(store_error)?;
    let batch = match resolve_batch(&pool, &args, &jobs, &store_id, mark.as_ref()).await {
        Ok(batch) => batch,
        Err(refused) => {
            identity::unlock(resolving).await;
            return Err(refused);
        }
    };
    // Its tasks exist on one service: a worker pointed at another would
    // find none of them and pay for its jobs again.
    let service = ctx.service();
    match identity::service_of(&pool, &batch, &service).await {
        Ok(recorded) if recorded == service => {}
        Ok(recorded) => {
            identity::unlock(resolving).await;
            return Err(CliError::Invalid {
                field: kling_api_ext::Field::Config,
                subject: Some("--base-url".into()),
                reason: format!(
                    "batch {batch:?} creates its tasks on {recorded}, and this worker talks to {service}: it would find none of the batch's tasks and pay for its jobs again; nothing was sent. Point it at {recorded} (--base-url or --profile), or give --batch-name for a batch of its own"
                ),
            }
            .into());
        }
        Err(e) => {
            identity::unlock(resolving).await;
            return Err(store_error(e));
        }
    }
    let pg = PgJobs::with_pool(pool, &batch, &worker_name(), args.lease);
    let manifest: Vec<(String, usize, String)> = jobs
        .iter()
        .map(|j| (j.id.clone(), j.line, j.input.clone()))
        .collect();
    let added = pg.load(&manifest).await;
    identity::unlock(resolving).await;
    let added = added.map_err(store_error)?;
    pg.sweep().await.map_err(store_error)?;
    let rows = pg.rows().await.map_err(store_error)?;
    out.say(&format!(
        "fleet batch {batch:?} in the job store {}{}: {} job(s), {added} new; worker {}; videos and results.jsonl in {}",
        shown_url(&url),
        mode::store_origin(&args),
        rows.len(),
        pg.worker(),
        args.out_dir().display()
    ));

    let counts = Counts::default();
    let mut tally = super::plan::Tally::new(&counts);
    let mut to_submit = Vec::new();
    let mut again = Vec::new();
    let mut to_wait = 0usize;
    // Jobs left alone whose intent carried a nonce: listened for (webhook mode).
    let mut unknown_with_nonce = Vec::new();
    let mut found = Vec::new();
    for job in &jobs {
        let row = rows.get(&job.id);
        // A job another live worker holds right now is theirs.
        if row.is_some_and(|r| {
            r.leased && matches!(r.state.as_str(), "todo" | "submitting" | "running")
        }) {
            continue;
        }
        let decision = decide(job, row.map(postgres::record_of).as_ref(), &args);
        let left_alone = decision == Decision::Ambiguous;
        if left_alone && let Some(nonce) = row.and_then(|r| r.nonce.clone()) {
            unknown_with_nonce.push((job.clone(), nonce));
        }
        // Earlier intents whose tasks may exist: listened for whatever this
        // run does with the job.
        for nonce in row.map(|r| r.nonces.as_slice()).unwrap_or_default() {
            if !(left_alone && row.and_then(|r| r.nonce.as_ref()) == Some(nonce)) {
                found.push((job.clone(), nonce.clone()));
            }
        }
        match tally.take(job, decision, out) {
            Some(Decision::Submit { note }) => {
                let state = row.map_or("todo", |r| r.state.as_str());
                if state != "todo" || row.is_some_and(|r| r.input != job.input) {
                    // Set to do only after the guard: a dry run or a refusal
                    // changes nothing another worker would pay for.
                    again.push((job, state.to_owned(), note));
                    continue;
                }
                if let Some(note) = note {
                    out.say(&note);
                }
                to_submit.push(job);
            }
            Some(Decision::Wait(_)) => to_wait += 1,
            _ => {}
        }
    }
    let (ambiguous, skipped) = (std::mem::take(&mut tally.ambiguous), tally.skipped);
    announce(out, &ambiguous, skipped);
    // Each worker receives the callbacks of the tasks it submitted (its own
    // --public-url is in their callBackUrl).
    let hooks = crate::webhook::start(&ctx.out, &args.webhook, None, ctx.client.base_url()).await?;
    let guarded: Vec<&Job> = to_submit
        .iter()
        .copied()
        .chain(again.iter().map(|(job, ..)| *job))
        .collect();
    if let Some(code) = guard(&ctx, &args, &guarded, to_wait, bad.len()).await? {
        return Ok(code);
    }
    for (job, state, note) in again {
        // Conditional on the state read: of workers loading at once, one sets it.
        if pg
            .again(&job.id, &state, &job.input)
            .await
            .map_err(store_error)?
        {
            if let Some(note) = note {
                out.say(&note);
            }
            to_submit.push(job);
        }
    }
    // From here on the directory is this batch's: a journal run into it is
    // refused, and a rerun from a renamed manifest finds the batch.
    let marked = StoreMark {
        store: shown_url(&url),
        store_id,
        batch: batch.clone(),
        manifest: args.manifest.display().to_string(),
    };
    if mark.as_ref() != Some(&marked) {
        mode::write_mark(args.out_dir(), &marked)?;
    }
    let total = to_submit.len() + to_wait;
    let by_id: HashMap<String, Job> = jobs.into_iter().map(|j| (j.id.clone(), j)).collect();
    let results = super::journal::Results::open(args.out_dir())
        .map_err(|e| Failure::from(CliError::local(args.out_dir(), e)))?;
    // Printed as a command that runs as printed: a note beside it would not.
    let resume = mode::resume_command(&args);
    let note = mode::store_note(&args);
    if !note.is_empty() {
        out.notice(&format!(
            "the commands printed below refer to \"$KLING_STORE\"{note}"
        ));
    }
    let parts = super::Parts {
        store: Store::Postgres(pg),
        results,
        counts,
        resume,
        hooks,
    };
    let listens = super::listen::Listeners::plans(
        out,
        parts.hooks.is_some(),
        unknown_with_nonce,
        found,
        None,
    );
    let (run, ticker) = start(ctx, args, parts, total + listens.plans.len());
    let listeners = super::listen::Listeners::spawn(&run, listens);
    // What each worker's waits learn about generation speed, every worker
    // uses: the fleet's polls land near each task's end together.
    let sharer = {
        let run = run.clone();
        tokio::spawn(async move {
            let mut seen = 0;
            loop {
                share_speed(&run, &mut seen).await;
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        })
    };
    drive(&run, Arc::new(by_id)).await;
    listeners.finish(&run.cancel).await;
    sharer.abort();
    // The last samples go to the store; nothing more is taken.
    let mut taken_all = i64::MAX;
    share_speed(&run, &mut taken_all).await;
    let interrupted = run.cancel.is_cancelled();
    stop_bar(&run, ticker);
    let Store::Postgres(pg) = &run.store else {
        unreachable!("a fleet run keeps its jobs in the database")
    };
    // Its waits are anyone's at once, not after the lease.
    pg.release_all().await;
    // The fleet's results, not only this worker's: one line per ended job.
    match pg.rows().await {
        Ok(rows) => {
            // In the manifest's order, as the journal's results are.
            let mut ended: Vec<_> = rows
                .values()
                .filter(|r| matches!(r.state.as_str(), "finished" | "rejected"))
                .collect();
            ended.sort_by_key(|r| r.line);
            let mut lines: Vec<Value> = ended.iter().filter_map(|r| r.result.clone()).collect();
            lines.extend(invalid_lines(&bad).iter().map(super::ResultLine::to_value));
            let mut text = Vec::new();
            for line in &lines {
                text.extend(line.to_string().into_bytes());
                text.push(b'\n');
            }
            let path = run.args.out_dir().join(super::journal::RESULTS);
            if let Err(e) = crate::atomic::write(&path, &text, crate::atomic::Access::Shared) {
                out.warn(&format!("cannot rewrite results.jsonl: {e}"));
            }
        }
        Err(e) => out.warn(&format!("cannot read the fleet's results: {e}")),
    }
    Ok(run.summary(interrupted, bad.len(), &ambiguous))
}

/// One exchange of generation-speed samples with the store (trouble is
/// logged and otherwise ignored: polling works without it).
async fn share_speed(run: &Run, seen: &mut i64) {
    if let Store::Postgres(pg) = &run.store {
        let client = &run.ctx.client;
        let shared = pg
            .share_speed(client.base_url().as_str(), client.duration_model(), seen)
            .await;
        match shared {
            Ok(taken) if taken > 0 => tracing::debug!(taken, "generation speed from the fleet"),
            Ok(_) => {}
            Err(error) => tracing::debug!(%error, "generation speed not shared"),
        }
    }
}

/// Claims and runs jobs until none is left that this worker could still get:
/// every job has ended, is left alone, or was tried here in this run.
async fn drive(run: &Arc<Run>, by_id: Arc<HashMap<String, Job>>) {
    let Store::Postgres(pg) = &run.store else {
        return;
    };
    // Each job at most once per run and worker: a wait that did not end here
    // (timed out, a download error) is left to another worker or a rerun.
    let tried: Arc<Mutex<Vec<String>>> = Arc::default();
    let semaphore = Arc::new(Semaphore::new(run.args.concurrency as usize));
    let mut set = JoinSet::new();
    let mut idle = Duration::from_millis(100);
    loop {
        let permit = tokio::select! {
            permit = semaphore.clone().acquire_owned() => permit.expect("never closed"),
            _ = run.cancel.cancelled() => break,
        };
        let skip = tried.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let submit = run.may_submit();
        match pg.claim(&skip, submit).await {
            Ok(Some(claimed)) => {
                idle = Duration::from_millis(100);
                let (id, plan) = match claimed {
                    Claimed::Submit(id, input) => match by_id.get(&id) {
                        // Another worker's manifest has another version of
                        // this line (it set the store's): not this one's to pay.
                        Some(job) if job.input != input => {
                            run.say(&format!(
                                "job {id} (line {}): the store has another version of this line (another worker's manifest): left to the workers whose manifest matches",
                                job.line
                            ));
                            (id, None)
                        }
                        Some(job) => {
                            add(&run.counts.pending);
                            (id, Some(Plan::Submit(job.clone())))
                        }
                        None => (id, None),
                    },
                    Claimed::Wait(id, task_id) => match (by_id.get(&id), TaskId::new(task_id)) {
                        // The row's nonce is not read here: taken as called back, so
                        // a task whose callback goes elsewhere is found by the
                        // safety poll after its first look.
                        (Some(job), Ok(task_id)) => {
                            (id, Some(Plan::Wait(job.clone(), task_id, true)))
                        }
                        _ => (id, None),
                    },
                };
                tried
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(id.clone());
                let known = by_id.contains_key(&id);
                let run = run.clone();
                set.spawn(async move {
                    let _permit = permit;
                    match plan {
                        Some(plan) => run.clone().job(plan).await,
                        // Not in this worker's manifest, or in another
                        // version: left to a worker that has it (said above).
                        None if known => {}
                        None => run.say(&format!(
                            "job {id}: not in this manifest; left to the workers that have it"
                        )),
                    }
                    if let Store::Postgres(pg) = &run.store {
                        let _ = pg.release(&id).await;
                    }
                });
            }
            Ok(None) => {
                drop(permit);
                match pg.open_jobs(&skip, submit).await {
                    // Nothing more for this worker: its own jobs end, then it stops.
                    Ok(0) => break,
                    // Others hold what is left: one of them may stop before it ends.
                    Ok(_) => {}
                    Err(e) => run.say(&format!("warning: {e}")),
                }
                tokio::select! {
                    _ = tokio::time::sleep(idle) => {}
                    _ = run.cancel.cancelled() => break,
                }
                idle = (idle * 2).min(Duration::from_secs(2));
                if let Err(e) = pg.sweep().await {
                    run.say(&format!("warning: {e}"));
                }
            }
            Err(e) => {
                drop(permit);
                run.say(&format!("warning: {e}; trying again in 2 s"));
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    _ = run.cancel.cancelled() => break,
                }
            }
        }
        while set.try_join_next().is_some() {}
    }
    while let Some(joined) = set.join_next().await {
        if let Err(e) = joined {
            run.ctx
                .out
                .warn(&format!("a job's task ended abnormally: {e}"));
        }
    }
}
