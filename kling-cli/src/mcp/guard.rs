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
        if let Some(ledger) = &self.ctx.budget.ledger
            && let Some(first) = ledger.find_key(key, self.idempotency_window)?
        {
            return match first.task_id.as_deref().map(TaskId::new) {
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
            };
        }
        let Some(cap) = args.max_credits.or(self.max_credits_per_task) else {
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
        if let Some(estimate) = estimate
            && estimate > cap
        {
            return Err(ToolError::refused(
                "over_cap",
                format!("this video is estimated at {estimate} credits, above its cap of {cap}; nothing was sent. Do not raise the cap on your own: ask the user"),
            )
            .with("estimatedCredits", estimate)
            .with("maxCredits", cap));
        }
        // Counted at its estimate, else at its cap.
        let counted = estimate.unwrap_or(cap);
        if let Some(threshold) = self.approve_above
            && counted > threshold
        {
            self.approval(args, &request, counted, threshold, agent)
                .await?;
        }
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
        let reservation = self.ctx.budget.reserve(Some(counted), Some(key), by)?;
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
    ) -> Result<(), ToolError> {
        let (_, hash) = self.request(&args.video)?;
        if let Some(plan) = &args.plan_id {
            return self.plans.consume(plan, &hash).map(|_| ()).map_err(|e| {
                ToolError::refused(e.code(), e.to_string()).with("planId", plan.as_str())
            });
        }
        let summary = format!(
            "one avatar video ({}, audio {}), counted at {counted} credits",
            self.ctx.client.model_for(request),
            request.audio().source()
        );
        match agent
            .ask(format!("Spend up to {counted} credits on {summary}? (above the approval threshold of {threshold})"))
            .await
        {
            Some(true) => Ok(()),
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
