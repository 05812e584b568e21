//! What each tool does, in plain types (`schema`); the paid ones go
//! through the spend guard (`guard`).

use std::time::Duration;

use kling_api_ext::{State, Task, TaskId, WaitOptions};
use serde_json::Value;

pub use super::schema::*;
use super::{Server, ToolError};

/// What the tools need from the connected client: progress notifications
/// and, where it can, asking its user.
pub trait Agent: Sync {
    /// Reports progress (`progress` only grows).
    fn progress(&self, progress: f64, total: Option<f64>, message: String);
    /// Asks the user to approve; `None` when the client cannot ask.
    fn ask(&self, message: String) -> impl std::future::Future<Output = Option<bool>> + Send;
}

fn timeout(seconds: Option<u64>) -> Duration {
    Duration::from_secs(seconds.unwrap_or(1800).clamp(1, 24 * 3600))
}

fn task_id(text: &str) -> Result<TaskId, ToolError> {
    TaskId::new(text.trim()).map_err(|e| {
        ToolError::refused("invalid_input", format!("task_id: {}", e.reason()))
            .with("field", "task_id")
    })
}

impl StatusOut {
    fn of(task: &Task) -> StatusOut {
        StatusOut {
            task_id: task.task_id.to_string(),
            state: task.state.to_string(),
            ended: task.state.is_terminal(),
            video_url: task.video_url().map(kling_api_ext::error::safe_url),
            fail_code: task.fail_code.clone(),
            fail_msg: task.fail_msg.as_deref().map(kling_api_ext::redact),
            credits_consumed: task.credits_consumed,
        }
    }
}

impl Server {
    /// An idempotency key as the ledger keeps it. A simulator's tasks die
    /// with its process: under `--sim` a key holds for this run's simulator
    /// only (its address changes every run), so a call repeated after a
    /// restart pays the simulator again instead of returning a task it does
    /// not know.
    fn scoped(&self, key: String) -> String {
        if self.ctx.simulated {
            format!("{key}@{}", self.ctx.client.base_url())
        } else {
            key
        }
    }

    pub async fn estimate(&self, args: VideoArgs) -> Result<EstimateOut, ToolError> {
        let (request, _, _staged) = self.request(&args)?;
        let model = self.ctx.client.model_for(&request);
        let facts = |m: &kling_api_ext::request::Media| {
            m.facts()
                .and_then(|f| serde_json::to_value(f).ok())
                .unwrap_or(Value::Null)
        };
        let left = match self.ctx.budget.daily {
            Some(budget) => {
                let ledger = self.ctx.budget.ledger.as_ref();
                let spent = match ledger {
                    Some(l) => l.spent_today(&self.ctx.budget.service)?,
                    None => 0.0,
                };
                Some(((budget - spent) * 100.0).round() / 100.0)
            }
            None => None,
        };
        Ok(EstimateOut {
            estimated_credits: self.ctx.client.estimate_credits(&request),
            model: model.to_string(),
            credits_per_second: self.ctx.client.credits_per_second(model),
            image: facts(request.image()),
            audio: facts(request.audio()),
            warnings: request.warnings().to_vec(),
            server_cap: self.max_credits_per_task,
            approval_above: self.approve_above,
            daily_budget_left: left,
        })
    }

    pub async fn generate(
        &self,
        args: GenerateArgs,
        agent: &impl Agent,
    ) -> Result<GenerateOut, ToolError> {
        let (request, key, _staged) = self.request(&args.paid.video)?;
        // Checked before anything is paid for (the task id names the
        // default file, so it is checked again below).
        if args.file_name.is_some() {
            self.out_path(
                args.file_name.as_deref(),
                &TaskId::new("check").expect("a valid id"),
            )?;
        }
        let key = self.scoped(args.paid.idempotency_key.clone().unwrap_or(key));
        // Held to the end: an identical call waits, then finds the video.
        let lock = self.key_lock(&key);
        let _held = lock.lock().await;
        let paid = self
            .pay(
                &args.paid,
                request,
                &key,
                "mcp generate",
                agent,
                Some(args.file_name.as_deref()),
            )
            .await?;
        let id = paid.task_id.clone();
        let path = self.out_path(args.file_name.as_deref(), &id)?;
        let failed = |e: kling_api_ext::Error| {
            ToolError::sdk(&e, true)
                .with("taskId", id.as_str())
                .with("deduplicated", paid.deduplicated)
        };
        let task = match paid.recovered.clone() {
            Some(task) if task.state.is_terminal() => {
                let ended = task.into_result();
                self.ctx.budget.ended(id.as_str(), &ended);
                ended.map_err(failed)?
            }
            _ => self
                .wait_task(
                    &id,
                    paid.request.audio_duration(),
                    timeout(args.timeout_seconds),
                    agent,
                )
                .await
                .map_err(failed)?,
        };
        agent.progress(0.0, None, "downloading the video".into());
        let saved = self
            .ctx
            .client
            .download(&task, &path)
            .await
            .map_err(failed)?;
        Ok(GenerateOut {
            path: saved.path.display().to_string(),
            task_id: id.to_string(),
            state: task.state.to_string(),
            credits: task.credits_consumed.or(paid.estimate),
            estimated_credits: paid.estimate,
            bytes: saved.bytes,
            sha256: saved.sha256,
            deduplicated: paid.deduplicated,
        })
    }

    pub async fn submit(&self, args: PaidArgs, agent: &impl Agent) -> Result<SubmitOut, ToolError> {
        let (request, key, _staged) = self.request(&args.video)?;
        let key = self.scoped(args.idempotency_key.clone().unwrap_or(key));
        let lock = self.key_lock(&key);
        let _held = lock.lock().await;
        let paid = self
            .pay(&args, request, &key, "mcp submit", agent, None)
            .await?;
        Ok(SubmitOut {
            task_id: paid.task_id.to_string(),
            estimated_credits: paid.estimate,
            deduplicated: paid.deduplicated,
        })
    }

    pub async fn status(&self, args: TaskArgs) -> Result<StatusOut, ToolError> {
        let id = task_id(&args.task_id)?;
        let task = self
            .ctx
            .client
            .get(&id)
            .await
            .map_err(|e| ToolError::sdk(&e, false))?;
        if task.state.is_terminal() {
            self.ctx.budget.ended(id.as_str(), &Ok(task.clone()));
        }
        Ok(StatusOut::of(&task))
    }

    pub async fn wait(&self, args: WaitArgs, agent: &impl Agent) -> Result<StatusOut, ToolError> {
        let id = task_id(&args.task_id)?;
        match self
            .wait_task(&id, None, timeout(args.timeout_seconds), agent)
            .await
        {
            Ok(task) => Ok(StatusOut::of(&task)),
            Err(kling_api_ext::Error::GenerationFailed { .. }) => {
                let task = self
                    .ctx
                    .client
                    .get(&id)
                    .await
                    .map_err(|e| ToolError::sdk(&e, false))?;
                Ok(StatusOut::of(&task))
            }
            Err(e) => Err(ToolError::sdk(&e, false)),
        }
    }

    pub async fn download(&self, args: DownloadArgs) -> Result<DownloadOut, ToolError> {
        let id = task_id(&args.task_id)?;
        let path = self.out_path(args.file_name.as_deref(), &id)?;
        let task = self
            .ctx
            .client
            .get(&id)
            .await
            .map_err(|e| ToolError::sdk(&e, false))?;
        if task.state != State::Success {
            return Err(ToolError::refused(
                "not_ended",
                format!(
                    "task {id} is {}: only a task that succeeded has a video",
                    task.state
                ),
            )
            .with("taskId", id.as_str())
            .with("state", task.state.to_string()));
        }
        let saved = self
            .ctx
            .client
            .download(&task, &path)
            .await
            .map_err(|e| ToolError::sdk(&e, false))?;
        Ok(DownloadOut {
            path: saved.path.display().to_string(),
            bytes: saved.bytes,
            sha256: saved.sha256,
        })
    }

    pub async fn credits(&self) -> Result<CreditsOut, ToolError> {
        let balance = self
            .ctx
            .client
            .credits()
            .await
            .map_err(|e| ToolError::sdk(&e, false))?;
        let spent = match &self.ctx.budget.ledger {
            Some(ledger) => ledger.spent_today(&self.ctx.budget.service)?,
            None => 0.0,
        };
        Ok(CreditsOut {
            balance,
            daily_budget: self.ctx.budget.daily,
            spent_today: spent,
            daily_budget_left: self
                .ctx
                .budget
                .daily
                .map(|b| ((b - spent) * 100.0).round() / 100.0),
        })
    }

    pub async fn history(&self, args: HistoryArgs) -> Result<HistoryOut, ToolError> {
        let entries = match &self.ctx.budget.ledger {
            Some(ledger) => ledger.entries()?,
            None => Vec::new(),
        };
        Ok(HistoryOut {
            entries: entries
                .into_iter()
                .rev()
                .filter(|e| e.service == self.ctx.budget.service)
                .take(args.limit.unwrap_or(20))
                .map(|e| HistoryEntry {
                    at: e.at,
                    task_id: e.task_id,
                    credits: e.credits,
                    settled: e.settled,
                    by: e.by,
                })
                .collect(),
        })
    }

    /// Waits for a task, with progress notifications; settles its ledger
    /// entry when it ends.
    async fn wait_task(
        &self,
        id: &TaskId,
        audio: Option<Duration>,
        timeout: Duration,
        agent: &impl Agent,
    ) -> Result<Task, kling_api_ext::Error> {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut options = WaitOptions::new()
            .deadline(Some(timeout))
            .cancel_token(self.ctx.interrupt.token())
            .on_progress(move |e| {
                let state = e
                    .state
                    .as_ref()
                    .map_or("not visible yet".to_owned(), |s| s.to_string());
                let _ = tx.send((
                    e.elapsed.as_secs_f64(),
                    format!("{} after {:.0} s", state, e.elapsed.as_secs_f64()),
                ));
            });
        if let Some(audio) = audio {
            options = options.audio_duration(audio);
        }
        if id.created_ago().is_some() || crate::history::created_recently(id.as_str()) {
            options = options.not_visible_grace(kling_api_ext::wait::DEFAULT_NOT_VISIBLE_GRACE);
        }
        let options = match &self.hooks {
            Some(hooks) => hooks.wait_options(options),
            None => options,
        };
        let waiting = self.ctx.client.wait(id, options);
        tokio::pin!(waiting);
        let result = loop {
            tokio::select! {
                result = &mut waiting => break result,
                Some((elapsed, message)) = rx.recv() => agent.progress(elapsed, None, message),
            }
        };
        self.ctx.budget.ended(id.as_str(), &result);
        result
    }
}
