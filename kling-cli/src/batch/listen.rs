//! Webhook mode in a rerun: listening for the callbacks of the jobs an
//! earlier run left "outcome unknown".

use std::sync::Arc;
use std::time::Duration;

use kling_api_ext::{CancellationToken, WaitOptions};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::journal::{Event, now_ms};
use super::manifest::Job;
use super::{Plan, Run};

/// Webhook mode: the jobs an earlier run left unknown whose intent carried a
/// nonce, listened for while the rest of the run goes on (the journal's run
/// and the fleet's alike).
pub(super) struct Listeners {
    stop: CancellationToken,
    set: JoinSet<()>,
    until: Option<Instant>,
}

/// What [`Listeners::plans`] decided: the plans, the token that ends them,
/// and until when to listen once the rest is done.
pub(super) struct Listens {
    stop: CancellationToken,
    pub(super) plans: Vec<Plan>,
    until: Option<Instant>,
}

impl Listeners {
    /// The listening plans (none without `--listen`), said when there are
    /// any, with the token that ends them. `left`: how long the tasks may
    /// still end (their last intent plus --timeout, from now); they are
    /// listened for while the rest of the run goes on and, after it, until
    /// then. `None` (a fleet, whose intent times are the database's): while
    /// the rest of the run goes on.
    pub(super) fn plans(
        out: crate::output::Out,
        listening: bool,
        unknown: Vec<(Job, String)>,
        found: Vec<(Job, String)>,
        left: Option<Duration>,
    ) -> Listens {
        let stop = CancellationToken::new();
        let none = |stop| Listens {
            stop,
            plans: Vec::new(),
            until: None,
        };
        if !listening || (unknown.is_empty() && found.is_empty()) {
            return none(stop);
        }
        if !found.is_empty() {
            out.say(&format!(
                "listening also on {} earlier submit(s) whose outcome stayed unknown (their tasks may exist): a task their callbacks name is recorded",
                found.len()
            ));
        }
        match left {
            Some(left) if left.is_zero() => {
                out.say(&format!(
                    "{} earlier submit(s) whose outcome is unknown were sent more than --timeout ago: their callbacks, if any, have come and gone; not listened for",
                    unknown.len() + found.len()
                ));
                return none(stop);
            }
            Some(_) if unknown.is_empty() => {}
            Some(left) => out.say(&format!(
                "listening for the callbacks of {} job(s) whose outcome is unknown, while the run goes on and up to {} (as long as their tasks may run; Ctrl-C stops, leaving them unknown)",
                unknown.len(),
                humantime::format_duration(Duration::from_secs(left.as_secs().max(1)))
            )),
            None if unknown.is_empty() => {}
            None => out.say(&format!(
                "listening for the callbacks of {} job(s) whose outcome is unknown, while the run goes on",
                unknown.len()
            )),
        }
        let plans = unknown
            .into_iter()
            .map(|(job, nonce)| Plan::Listen(job, nonce, stop.clone()))
            .chain(
                found
                    .into_iter()
                    .map(|(job, nonce)| Plan::Found(job, nonce, stop.clone())),
            )
            .collect();
        Listens {
            stop,
            plans,
            until: left.map(|left| Instant::now() + left),
        }
    }

    pub(super) fn spawn(run: &Arc<Run>, listens: Listens) -> Self {
        let mut set = JoinSet::new();
        for plan in listens.plans {
            let run = run.clone();
            set.spawn(async move { run.job(plan).await });
        }
        Listeners {
            stop: listens.stop,
            set,
            until: listens.until,
        }
    }

    /// The rest is done: stop listening, at once or when every job was heard
    /// or at `until` (or at Ctrl-C); a job recovered meanwhile goes on to its
    /// video first.
    pub(super) async fn finish(mut self, cancel: &CancellationToken) {
        if let Some(until) = self.until {
            let all_heard = async { while self.set.join_next().await.is_some() {} };
            tokio::select! {
                () = all_heard => {}
                () = tokio::time::sleep_until(until) => {}
                () = cancel.cancelled() => {}
            }
        }
        self.stop.cancel();
        while self.set.join_next().await.is_some() {}
    }
}

impl Run {
    /// Listens on an earlier intent's nonce while the job goes on without
    /// it: a task its callback names (and the service confirms) exists and
    /// is paid for, so it is recorded (journal or store, history) and said,
    /// even though the job has, or will have, another task.
    pub(super) async fn find(&self, job: &Job, nonce: &str, stop: CancellationToken) {
        let Some(hooks) = self.hooks.as_ref() else {
            return;
        };
        let options = WaitOptions::new()
            .deadline(Some(self.args.timeout))
            .cancel_token(stop);
        match hooks.hub.recover(&self.ctx.client, nonce, &options).await {
            Ok(Some(task)) => {
                let task_id = task.task_id.to_string();
                let _ = self
                    .record(&Event::Found {
                        id: job.id.clone(),
                        task_id: task_id.clone(),
                        nonce: nonce.to_owned(),
                        at: now_ms(),
                    })
                    .await;
                self.ctx.history.found(
                    self.ctx.client.base_url().as_str(),
                    &format!("batch {}", job.id),
                    &task_id,
                    nonce,
                    None,
                );
                self.found.lock().unwrap_or_else(|p| p.into_inner()).push((
                    job.id.clone(),
                    task_id.clone(),
                    true,
                ));
                self.notice(&format!(
                    "job {} (line {}): an earlier submit's task {task_id} exists after all (its createTask answer was lost; its callback named it; state {}): it is paid for, and recorded with the job; the job went on without it, so its video is fetched only by `kling download {task_id} --out FILE`",
                    job.id, job.line, task.state
                ));
            }
            Ok(None) => {}
            Err(e) => {
                // Named but not confirmed (an outage): it may be a paid
                // task, so it is kept (history, summary) and said.
                let (named, said) = hooks.unconfirmed(nonce, &e);
                for task_id in &named {
                    self.ctx.history.found(
                        self.ctx.client.base_url().as_str(),
                        &format!("batch {}", job.id),
                        task_id,
                        nonce,
                        Some(&e.to_string()),
                    );
                    self.found.lock().unwrap_or_else(|p| p.into_inner()).push((
                        job.id.clone(),
                        task_id.clone(),
                        false,
                    ));
                }
                if !named.is_empty() {
                    self.notice(&format!(
                        "job {} (line {}): an earlier submit: {said}",
                        job.id, job.line
                    ));
                }
            }
        }
    }
}
