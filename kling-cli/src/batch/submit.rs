//! A job's submit, with the money guarantees: upload and check, the intent
//! journaled before createTask, the task id journaled after it, and an
//! unknown outcome recovered by its callback where one can come.

use std::sync::Arc;
use std::time::Duration;

use kling_api_ext::WaitOptions;
use kling_api_ext::submit::{PrepareEvent, PrepareOptions};
use kling_api_ext::{Error, SubmitOptions, Task, TaskId};

use super::store::StoreError;
use crate::output::shell_quote;
use journal::{Event, now_ms};
use manifest::Job;

use super::*;

/// What a submit left.
pub(super) enum Created {
    /// createTask answered with the task.
    Answered(TaskId),
    /// Its answer was lost; the task's callback named it, and it was read.
    Recovered(Box<Task>),
}
impl Run {
    /// Upload and check, journal the intent, create the task, journal its id.
    pub(super) async fn submit(self: &Arc<Self>, job: &Job) -> Option<Created> {
        if !self.may_submit() {
            return None;
        }
        // Counted against the daily budget before anything is uploaded.
        let reservation = match self.ctx.budget.reserve(
            self.ctx.client.estimate_credits(&job.request),
            None,
            &format!("batch {}", job.id),
        ) {
            Ok(reservation) => reservation,
            Err(e) => {
                sub(&self.counts.pending);
                self.over_budget(job, &e);
                return None;
            }
        };
        let created = self.submit_counted(job).await;
        if let Some(reservation) = &reservation {
            match &created {
                Ok(Created::Answered(task)) => reservation.found(task.as_str()),
                Ok(Created::Recovered(task)) => reservation.found(task.task_id.as_str()),
                // Maybe taken: its estimate stays counted.
                Err(true) => {}
                Err(false) => reservation.not_sent(),
            }
        }
        created.ok()
    }

    /// A job the daily budget refused: nothing was sent. A budget spent
    /// stops the run's submits (said once); a job of unknown cost is only
    /// left to do.
    fn over_budget(&self, job: &Job, error: &crate::ledger::LedgerError) {
        add(&self.counts.errors);
        let line = format!("job {} (line {}): {error}", job.id, job.line);
        if matches!(error, crate::ledger::LedgerError::UnknownCost { .. }) {
            self.say(&line);
        } else if !self.halted.swap(true, std::sync::atomic::Ordering::SeqCst) {
            self.say(&format!(
                "{line}; no more jobs are submitted in this run; the rest are to do on the next run"
            ));
        }
        self.unfinished
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(serde_json::json!({"id": job.id, "step": "budget", "kind": error.kind(), "message": error.to_string()}));
        self.tick();
    }

    /// [`Run::submit`], before the ledger hears its outcome: `Err(true)` when
    /// the service may have taken the request, `Err(false)` when it certainly
    /// did not (or nothing was sent).
    async fn submit_counted(self: &Arc<Self>, job: &Job) -> Result<Created, bool> {
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
        // Webhook mode: a fresh nonce in the callBackUrl, recorded with the
        // intent (a line with its own callbackUrl keeps it, and is polled).
        let (request, nonce) = match (&self.hooks, job.request.callback_url()) {
            (Some(hooks), None) => {
                let (nonce, url) = hooks.new_intent();
                match job.request.clone().with_callback_url(url) {
                    Ok(request) => (request, Some(nonce)),
                    Err(e) => {
                        sub(&self.counts.pending);
                        self.not_ended(job, None, &e, "submit");
                        return Err(false);
                    }
                }
            }
            _ => (job.request.clone(), None),
        };
        let prepared = tokio::select! {
            prepared = client.prepare(&request).options(options) => prepared,
            _ = self.cancel.cancelled() => return Err(false),
        };
        let prepared = match prepared {
            Ok(prepared) => prepared,
            Err(e) => {
                sub(&self.counts.pending);
                // A refusal that would be the same for the same input is
                // final (`--retry-rejected` submits it again); anything else
                // (a rate limit, no credits, no connection) leaves it to do.
                if e.is_final() {
                    self.reject(job, &e).await;
                } else {
                    self.not_ended(job, None, &e, "upload");
                }
                return Err(false);
            }
        };
        if !self.may_submit() {
            return Err(false);
        }
        // The intent is recorded once a rate-limit slot is granted, just
        // before createTask is sent: a crash while the submit waits for the
        // limiter leaves the job to do, not "outcome unknown".
        let intent = Event::Intent {
            id: job.id.clone(),
            input: job.input.clone(),
            nonce: nonce.clone(),
            service: Some(self.ctx.service()),
            at: now_ms(),
        };
        let refused: Arc<std::sync::Mutex<Option<StoreError>>> = Arc::default();
        let recorder = (self.clone(), intent, refused.clone());
        let run = Arc::downgrade(self);
        let options = SubmitOptions::new()
            .cancel_token(self.cancel.clone())
            .on_wait(move |w| {
                if let Some(run) = run.upgrade() {
                    run.submit_waits(w.wait, &w.reason);
                }
            })
            .before_send(move || {
                let (run, intent, refused) = recorder.clone();
                async move {
                    run.record(&intent).await.map_err(|e| {
                        let reason = e.to_string();
                        *refused.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
                        reason
                    })
                }
            })
            // Certainly not taken, and tried again after a wait: recorded, so a
            // crash during that wait leaves the job to do.
            .after_not_taken({
                let (run, id) = (self.clone(), job.id.clone());
                move |error| {
                    let event = Event::NotTaken {
                        id: id.clone(),
                        kind: error.kind().into(),
                        message: error.to_string(),
                        retrying: true,
                        at: now_ms(),
                    };
                    let run = run.clone();
                    async move { run.record(&event).await.map_err(|e| e.to_string()) }
                }
            });
        let reference = self.ctx.history.intent(
            client.base_url().as_str(),
            &job.request,
            Some(
                self.args
                    .out_dir()
                    .join(format!("{}.mp4", job.id))
                    .display()
                    .to_string(),
            ),
            format!("batch {}", job.id),
            nonce.as_deref(),
        );
        let created = {
            let _sending = self.ctx.interrupt.sending();
            client.create_task(&prepared).options(options).await
        };
        self.ctx.history.outcome(&reference, &created);
        *self.waiting.lock().unwrap_or_else(|p| p.into_inner()) = None;
        sub(&self.counts.pending);
        let refused = refused.lock().unwrap_or_else(|p| p.into_inner()).take();
        match created {
            Ok(task_id) => {
                self.journal_task(job, &task_id).await;
                Ok(Created::Answered(task_id))
            }
            // The intent could not be recorded: nothing was sent. Another
            // worker of the fleet has the job, or the store refused (said).
            Err(Error::NotSent { .. }) if refused.is_some() => {
                if !matches!(refused, Some(StoreError::LeaseLost { .. })) {
                    add(&self.counts.errors);
                }
                Err(false)
            }
            Err(e @ Error::SubmitOutcomeUnknown { .. }) => {
                self.ambiguous(job, &e).await;
                match &nonce {
                    Some(nonce) => self
                        .recover(job, nonce, self.cancel.clone(), Some(&reference))
                        .await
                        .map(|task| Created::Recovered(Box::new(task)))
                        .ok_or(true),
                    None => Err(true),
                }
            }
            Err(e) if e.is_not_taken() && e.is_final() => {
                self.reject(job, &e).await;
                Err(false)
            }
            Err(e) if e.is_not_taken() => {
                self.not_taken(job, &e).await;
                Err(false)
            }
            // Not vouched for either way (an unknown code): treated as maybe
            // taken, never resent blindly.
            Err(e) => {
                self.ambiguous(job, &e).await;
                Err(true)
            }
        }
    }

    /// After an unknown outcome: waits for the callback on the intent's
    /// nonce (until the job's timeout or `stop`), and journals the task it
    /// names as recovered.
    pub(super) async fn recover(
        &self,
        job: &Job,
        nonce: &str,
        stop: CancellationToken,
        reference: Option<&str>,
    ) -> Option<Task> {
        let hooks = self.hooks.as_ref()?;
        let options = WaitOptions::new()
            .deadline(Some(self.args.timeout))
            .cancel_token(stop);
        match hooks.hub.recover(&self.ctx.client, nonce, &options).await {
            Ok(Some(task)) => {
                let task_id = task.task_id.clone();
                self.journal_event(job, &task_id, true).await;
                if let Some(reference) = reference {
                    self.ctx.history.recovered(reference, task_id.as_str());
                }
                sub(&self.counts.ambiguous);
                add(&self.counts.recovered);
                self.recovered
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push(job.id.clone());
                self.notice(&format!(
                    "job {} (line {}): recovered task {task_id} (createTask's answer was lost; its callback named it)",
                    job.id, job.line
                ));
                self.tick();
                Some(task)
            }
            Ok(None) => None,
            Err(e) => {
                let (named, said) = hooks.unconfirmed(nonce, &e);
                if let Some(reference) = reference {
                    self.ctx.history.named(reference, &named, &e.to_string());
                }
                self.notice(&format!("job {} (line {}): {said}", job.id, job.line));
                None
            }
        }
    }

    /// Journals a created task's id; a refused write is retried, and the id is
    /// said on stderr either way, so it is never lost.
    pub(super) async fn journal_task(&self, job: &Job, task_id: &TaskId) {
        self.journal_event(job, task_id, false).await;
    }

    async fn journal_event(&self, job: &Job, task_id: &TaskId, recovered: bool) {
        let event = if recovered {
            Event::Recovered {
                id: job.id.clone(),
                task_id: task_id.to_string(),
                at: now_ms(),
            }
        } else {
            Event::Submitted {
                id: job.id.clone(),
                task_id: task_id.to_string(),
                at: now_ms(),
            }
        };
        let mut delay = Duration::from_millis(200);
        for attempt in 1..=5 {
            match self.store.record(&event).await {
                Ok(()) => {
                    if attempt > 1 {
                        self.notice(&format!(
                            "job {}: task {task_id} journaled after {attempt} attempts",
                            job.id
                        ));
                    }
                    return;
                }
                Err(e) => {
                    self.notice(&format!(
                        "job {} (line {}): task {task_id} was created, but {} cannot be written ({e}); retrying",
                        job.id,
                        job.line,
                        self.store.describe()
                    ));
                }
            }
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
        self.notice(&format!(
            "job {} (line {}): task {task_id} is NOT in the journal; keep this id: `kling wait {task_id} --out {}` fetches its video",
            job.id,
            job.line,
            shell_quote(
                &self
                    .args
                    .out_dir()
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
}
