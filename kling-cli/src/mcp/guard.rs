//! The spend guard every paid call goes through, in order (a refused call
//! has sent nothing): the idempotency key, the cap, approval, the daily
//! budget, the balance; then the upload and one createTask, the intent
//! recorded first.

use std::time::Duration;

use kling_api_ext::{AvatarRequest, Task, TaskId};

use super::tools::{Agent, PaidArgs};
use super::{Server, ToolError};
use crate::cmd::steps;

/// A paid call that got through the guard and was sent (or found).
pub(super) struct Paid {
    pub(super) task_id: TaskId,
    pub(super) estimate: Option<f64>,
    pub(super) deduplicated: bool,
    pub(super) request: AvatarRequest,
    pub(super) recovered: Option<Task>,
}

impl Server {
    /// The guard, then the upload and createTask (the intent recorded
    /// first), or the task of an identical earlier call.
    pub(super) async fn pay(
        &self,
        args: &PaidArgs,
        request: AvatarRequest,
        key: &str,
        by: &str,
        agent: &impl Agent,
        output: Option<Option<&str>>,
    ) -> Result<Paid, ToolError> {
        let estimate = self.ctx.client.estimate_credits(&request);
        let service = self.ctx.budget.service.clone();
        let existing = |first: crate::ledger::Entry, request: AvatarRequest| {
            match first
            .task_id
            .as_deref()
            .map(TaskId::new)
        {
            Some(Ok(task_id)) => Ok(Paid {
                task_id,
                estimate,
                deduplicated: true,
                request,
                recovered: None,
            }),
            _ => Err(ToolError::refused(
                "duplicate_unknown",
                "an identical call was made earlier and its outcome is unknown (createTask's answer was lost, or it is being sent by another process): its task may exist and be paid for. Check `history`; only a human should decide to pay again, with a new idempotency_key",
            )
            .with("idempotencyKey", key)),
        }
        };
        // A quick look first (the locked one is below): a repeated call needs
        // no cap, approval or balance.
        if let Some(ledger) = &self.ctx.budget.ledger
            && let Some(first) = ledger.find_key(&service, key, self.idempotency_window)?
        {
            return existing(first, request);
        }
        // The server's cap is a ceiling: an agent's max_credits only lowers it.
        let cap = match (args.max_credits, self.max_credits_per_task) {
            (Some(asked), Some(server)) => Some(asked.min(server)),
            (asked, server) => asked.or(server),
        };
        let Some(cap) = cap else {
            return Err(ToolError::refused(
                "cap_required",
                "every paid call needs a cap: give max_credits (ask the user how much this video may cost; `estimate` gives the price), or start the server with --max-credits-per-task",
            )
            .with("estimatedCredits", estimate));
        };
        if !cap.is_finite() || cap < 0.0 {
            return Err(ToolError::refused(
                "invalid_input",
                "max_credits: give a number of credits, 0 or more",
            )
            .with("field", "max_credits"));
        }
        // Counted at its estimate; an audio of unknown length (a URL whose
        // length cannot be read) at the longest audio upstream Kling takes,
        // never at the agent's own cap.
        let counted = match estimate {
            Some(estimate) => estimate,
            None => {
                let rate = self
                    .ctx
                    .client
                    .credits_per_second(self.ctx.client.model_for(&request));
                let longest = kling_api_ext::media::soft_limits::MAX_AUDIO.as_secs_f64();
                (longest * rate * 100.0).round() / 100.0
            }
        };
        if counted > cap {
            let why = match estimate {
                Some(_) => {
                    format!("this video is estimated at {counted} credits, above its cap of {cap}")
                }
                None => format!(
                    "the audio's length is not known (a URL), so this video is counted at its longest ({counted} credits), above its cap of {cap}; give the audio as a file inside a root to price it exactly"
                ),
            };
            return Err(ToolError::refused(
                if estimate.is_some() {
                    "over_cap"
                } else {
                    "cost_unknown"
                },
                format!("{why}; nothing was sent. Do not raise the cap on your own: ask the user"),
            )
            .with("countedCredits", counted)
            .with("maxCredits", cap));
        }
        let plan = match self.approve_above {
            Some(threshold) if counted > threshold => {
                self.approval(args, &request, counted, threshold, agent)
                    .await?
            }
            _ => None,
        };
        self.ctx.budget.check(Some(counted))?;
        match self.ctx.client.credits().await {
            Ok(balance) if balance < counted => {
                return Err(ToolError::refused(
                    "insufficient_credits",
                    format!("the balance is {balance} credits, below the {counted} this video is counted at; nothing was sent"),
                )
                .with("balance", balance));
            }
            Ok(_) => {}
            Err(
                e @ kling_api_ext::Error::Api {
                    kind: kling_api_ext::ApiErrorKind::Unauthorized,
                    ..
                },
            ) => {
                return Err(ToolError::sdk(&e, false));
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the balance; going on"),
        }
        // The key is recorded with the reservation, in one locked step: two
        // servers given the same call pay once.
        let reservation =
            match self
                .ctx
                .budget
                .reserve_once(counted, key, self.idempotency_window, by)?
            {
                Ok(reservation) => reservation,
                Err(first) => return existing(first, request),
            };
        // The plan is used up only now that the call goes ahead.
        if let Some((plan, hash)) = plan
            && let Err(e) = self.plans.consume(&plan, &hash, counted, &service)
        {
            reservation.not_sent();
            return Err(ToolError::refused(e.code(), e.to_string()).with("planId", plan));
        }
        let reservation = Some(reservation);
        let out = output.map(|name| {
            name.map_or_else(
                || self.out_dir.join("TASK_ID.mp4"),
                |n| self.out_dir.join(n),
            )
        });
        agent.progress(0.0, None, "uploading and submitting".into());
        let submitted = steps::submit(
            &self.ctx,
            &request,
            out.as_deref(),
            by,
            self.hooks.as_ref(),
            Duration::from_secs(600),
            reservation.as_ref(),
        )
        .await
        .map_err(|e| {
            let mut error = ToolError::sdk(&e, true);
            if matches!(e, kling_api_ext::Error::SubmitOutcomeUnknown { .. }) {
                error = error.with(
                    "history",
                    "the intent is in the history (`kling history --state \"outcome unknown\"`); the task may exist and be paid for: do not call again with a new idempotency_key without the user",
                );
            }
            error
        })?;
        Ok(Paid {
            task_id: submitted.id,
            estimate,
            deduplicated: false,
            request,
            recovered: submitted.recovered,
        })
    }

    /// A call above the approval threshold: an approved plan, or the
    /// user's yes through the client; else refused with a new plan.
    async fn approval(
        &self,
        args: &PaidArgs,
        request: &AvatarRequest,
        counted: f64,
        threshold: f64,
        agent: &impl Agent,
    ) -> Result<Option<(String, String)>, ToolError> {
        let (_, hash, _staged) = self.request(&args.video)?;
        if let Some(plan) = &args.plan_id {
            return self
                .plans
                .check(plan, &hash, counted, &self.ctx.budget.service)
                .map(|_| Some((plan.clone(), hash)))
                .map_err(|e| {
                    ToolError::refused(e.code(), e.to_string()).with("planId", plan.as_str())
                });
        }
        // As the agent gave it (the upload is of a staged copy).
        let prompt: String = request.prompt().chars().take(80).collect();
        let summary = format!(
            "one avatar video, {}, image {}, audio {}, prompt {prompt:?}, counted at {counted} credits",
            self.ctx.client.model_for(request),
            kling_api_ext::redact(args.video.image.trim()),
            kling_api_ext::redact(args.video.audio.trim()),
        );
        match agent
            .ask(format!("Spend up to {counted} credits on {summary}? (above the approval threshold of {threshold})"))
            .await
        {
            Some(true) => Ok(None),
            Some(false) => Err(ToolError::refused("declined", "the user declined this spending; nothing was sent")),
            None => {
                let plan = self
                    .plans
                    .create(&hash, &self.ctx.budget.service, counted, &summary)
                    .map_err(|e| ToolError::refused(e.code(), e.to_string()))?;
                Err(ToolError::refused(
                    "approval_required",
                    format!(
                        "this call is counted at {counted} credits, above the approval threshold of {threshold}, and this client cannot ask its user. A human approves it by running `kling mcp approve {}`; then call again with plan_id {:?} (the plan is for this exact request, single use, and expires in 15 minutes)",
                        plan.id, plan.id
                    ),
                )
                .with("planId", plan.id.as_str())
                .with("approveCommand", format!("kling mcp approve {}", plan.id))
                .with("expiresAt", plan.expires)
                .with("credits", counted))
            }
        }
    }
}
