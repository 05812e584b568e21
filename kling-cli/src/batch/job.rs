//! One job's steps: submit (see `submit.rs`), wait, download; each ending
//! recorded once.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use kling_api_ext::WaitOptions;
use kling_api_ext::{Error, TaskId};

use serde_json::json;

use manifest::Job;
use submit::Created;

use super::*;

impl Run {
    pub(super) async fn job(self: Arc<Self>, plan: Plan) {
        // A recovered task was just read: when it has ended, no wait. A task
        // from an earlier run may have been called back while nobody listened.
        let resumed = matches!(plan, Plan::Wait(..));
        let (job, task_id, known, called_back) = match plan {
            Plan::Wait(job, task_id, called_back) => (job, task_id, None, called_back),
            Plan::Submit(job) => match self.submit(&job).await {
                Some(Created::Answered(task_id)) => (job, task_id, None, true),
                Some(Created::Recovered(task)) => (job, task.task_id.clone(), Some(*task), true),
                None => return,
            },
            Plan::Listen(job, nonce, stop) => match self.recover(&job, &nonce, stop, None).await {
                Some(task) => (job, task.task_id.clone(), Some(task), true),
                None => return,
            },
            Plan::Found(job, nonce, stop) => return self.find(&job, &nonce, stop).await,
        };
        add(&self.counts.running);
        self.tick();
        // Every id here came from a createTask answer (this run's, or one
        // journaled or stored): "not visible yet" for a while, never a typo.
        let options = WaitOptions::new()
            .deadline(Some(self.args.timeout))
            .cancel_token(self.cancel.clone())
            .not_visible_grace(kling_api_ext::wait::DEFAULT_NOT_VISIBLE_GRACE);
        let options = match job.request.audio_duration() {
            Some(audio) => options.audio_duration(audio),
            None => options,
        };
        // A line with its own callbackUrl is called back elsewhere, and a task
        // submitted without --listen is called back nowhere: both are polled.
        let hooks = self
            .hooks
            .as_ref()
            .filter(|_| job.request.callback_url().is_none() && called_back);
        let options = match hooks {
            Some(hooks) if resumed => hooks.wait_options(options).first_look_now(),
            Some(hooks) => hooks.wait_options(options),
            None => options,
        };
        let waited = match known {
            Some(task) if task.state.is_terminal() => task.into_result(),
            _ => self.ctx.client.wait(&task_id, options).await,
        };
        self.ctx.budget.ended(task_id.as_str(), &waited);
        if let (Some(hooks), Ok(_) | Err(Error::GenerationFailed { .. })) = (&self.hooks, &waited) {
            // Ended: its callbacks (and its nonce's) are no longer waited on.
            hooks.hub.forget_task(&task_id);
        }
        sub(&self.counts.running);
        match waited {
            Ok(task) => {
                // In a fleet, a worker whose lease ran out while it waited
                // leaves the download to the one that has the job now.
                #[cfg(feature = "postgres")]
                if let super::store::Store::Postgres(pg) = &self.store
                    && !pg.holds(&job.id).await.unwrap_or(true)
                {
                    self.say(&format!(
                        "job {}: another worker has it now; not downloaded here",
                        job.id
                    ));
                    return;
                }
                let target = self.args.out_dir().join(format!("{}.mp4", job.id));
                // A download is free and restartable: a signal stops it.
                let saved = tokio::select! {
                    saved = self.ctx.client.download(&task, &target) => saved,
                    _ = self.cancel.cancelled() => return,
                };
                match saved {
                    Ok(saved) => {
                        add(&self.counts.done);
                        self.finished(&job.id, ResultLine::done(&job.id, &task, &saved))
                            .await;
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
                    ResultLine::failed(&job.id, &task_id, fail_code, fail_msg),
                )
                .await;
            }
            Err(Error::Cancelled { .. }) => add(&self.counts.left_running),
            Err(e @ Error::WaitTimedOut { .. }) => {
                add(&self.counts.timed_out);
                self.not_ended(&job, Some(&task_id), &e, "wait");
            }
            Err(e) => self.not_ended(&job, Some(&task_id), &e, "wait"),
        }
    }

    pub(super) fn not_ended(&self, job: &Job, task_id: Option<&TaskId>, error: &Error, step: &str) {
        if !matches!(error, Error::WaitTimedOut { .. }) {
            add(&self.counts.errors);
        }
        let task = task_id
            .map(|t| format!(" (task {t}; resume with: {})", self.resume))
            .unwrap_or_default();
        let line = format!("job {} (line {}): {step}: {error}{task}", job.id, job.line);
        // A task that exists is named even with -q: it is paid for.
        if task_id.is_some() {
            self.notice(&line);
        } else {
            self.say(&line);
        }
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
    pub(super) fn may_submit(&self) -> bool {
        !self.cancel.is_cancelled() && !self.halted.load(Ordering::SeqCst)
    }
}
