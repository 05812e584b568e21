//! A callback body, parsed: the task record the service POSTs when a task
//! ends (its tests are with the verification, which shares their bodies).

use crate::lifecycle::{State, TaskId};
use crate::task::{Task, parse_result_urls};
use serde::Serialize;
use serde_json::Value;

use super::*;

/// A parsed callback.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Callback {
    /// The envelope code: 200 on success, 501 on failure.
    pub code: i64,
    /// The envelope message.
    pub msg: Option<String>,
    /// The task, as the body describes it (unsigned: see [`Client::confirm`]).
    pub task: Task,
    /// Credits charged (`creditsConsumed`, or the older `consumeCredits`).
    pub credits_consumed: Option<f64>,
    /// Credits left (`remainedCredits`, older bodies only).
    pub remaining_credits: Option<f64>,
}

impl Callback {
    /// Whether the task succeeded.
    pub fn succeeded(&self) -> bool {
        self.task.state == State::Success
    }

    /// Parses a callback body (success or failure). Does not check any signature.
    pub fn parse(body: &[u8]) -> std::result::Result<Callback, WebhookError> {
        let value: Value = serde_json::from_slice(body)
            .map_err(|e| WebhookError::UnparseableBody(e.to_string()))?;
        let task_id = task_id_of(&value).ok_or(WebhookError::MissingTaskId)?;
        let task_id = TaskId::new(task_id).map_err(|_| WebhookError::MissingTaskId)?;
        let code = value
            .get("code")
            .and_then(Value::as_i64)
            .ok_or_else(|| WebhookError::UnparseableBody("no integer code".into()))?;
        let msg = value
            .get("msg")
            .or_else(|| value.get("message"))
            .and_then(Value::as_str)
            .map(str::to_owned);
        let data = value
            .get("data")
            .filter(|d| d.is_object())
            .ok_or_else(|| WebhookError::UnparseableBody("no data object".into()))?;
        let text = |key: &str| data.get(key).and_then(Value::as_str).map(str::to_owned);
        let number = |key: &str| data.get(key).and_then(Value::as_f64);
        let state = match text("state") {
            Some(state) => State::parse(&state),
            // Some bodies omit it: the code says.
            None if code == 200 => State::Success,
            None => State::Fail,
        };
        let result_urls = if state == State::Success {
            parse_result_urls(&text("resultJson").unwrap_or_default())
                .map_err(WebhookError::UnparseableBody)?
        } else {
            Vec::new()
        };
        let fail_code = match data.get("failCode") {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        };
        let millis = |key: &str| {
            data.get(key)
                .and_then(Value::as_i64)
                .and_then(crate::task::from_millis)
        };
        let task = Task {
            task_id,
            model: text("model"),
            state,
            result_urls,
            fail_code,
            fail_msg: text("failMsg").filter(|m| !m.is_empty()),
            cost_time: number("costTime").and_then(crate::task::seconds),
            create_time: millis("createTime"),
            complete_time: millis("completeTime"),
            credits_consumed: number("creditsConsumed").or_else(|| number("consumeCredits")),
            progress: data.get("progress").and_then(Value::as_i64),
            callback_url: data
                .get("param")
                .and_then(Value::as_str)
                .and_then(crate::task::callback_url_in_param),
        };
        Ok(Callback {
            code,
            msg,
            credits_consumed: task.credits_consumed,
            remaining_credits: number("remainedCredits"),
            task,
        })
    }
}

/// The task id of a callback body: `data.taskId`, else `data.task_id` (the
/// documentation's sample reads that), else a top-level `taskId`.
pub(super) fn task_id_of(value: &Value) -> Option<String> {
    let data = value.get("data");
    data.and_then(|d| d.get("taskId"))
        .or_else(|| data.and_then(|d| d.get("task_id")))
        .or_else(|| value.get("taskId"))
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}
