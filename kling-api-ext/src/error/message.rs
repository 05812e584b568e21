//! The words of each [`Error`](super::Error) message: every suffix says one
//! detail, and a detail that is absent adds nothing.

use std::time::Duration;

use super::{ApiErrorKind, Operation, redact};
use crate::lifecycle::TaskId;

/// The message of an [`Error::Api`]: each kind says what it means and, where
/// there is one, what to do.
pub(super) fn api_message(
    operation: Operation,
    task_id: &Option<TaskId>,
    code: i64,
    kind: ApiErrorKind,
    msg: &str,
    retry_after: &Option<Duration>,
) -> String {
    let task = task_suffix(task_id);
    match kind {
        ApiErrorKind::Unauthorized => {
            format!("{operation}: unauthorized (code {code}): {msg}; check APIKLEY_API_KEY")
        }
        ApiErrorKind::InsufficientCredits => {
            format!("{operation}: insufficient credits (code {code}): {msg}")
        }
        ApiErrorKind::NotFound => format!("{operation}: not found (code {code}){task}: {msg}"),
        ApiErrorKind::Rejected => {
            format!("{operation}: rejected by the service (code {code}){task}: {msg}")
        }
        ApiErrorKind::RateLimited => format!(
            "{operation}: rate limited (code {code}){}: {msg}",
            retry_suffix(retry_after)
        ),
        ApiErrorKind::UsageLimited => format!(
            "{operation}: usage limit of this key reached (code {code}): {msg}; raise the key's limit or wait for it to reset"
        ),
        ApiErrorKind::Maintenance => {
            format!("{operation}: service under maintenance (code {code}): {msg}")
        }
        ApiErrorKind::ServerError => {
            format!("{operation}: server error (code {code}){task}: {msg}")
        }
        ApiErrorKind::FeatureDisabled => {
            format!("{operation}: feature disabled (code {code}): {msg}")
        }
        ApiErrorKind::Unknown => {
            format!("{operation}: unknown response code {code}{task}: {msg}")
        }
    }
}

pub(super) fn subject_suffix(subject: &Option<String>) -> String {
    subject
        .as_ref()
        .map(|s| format!(" `{}`", redact(s)))
        .unwrap_or_default()
}

pub(super) fn task_suffix(task_id: &Option<TaskId>) -> String {
    task_id
        .as_ref()
        .map(|t| format!(" for task {t}"))
        .unwrap_or_default()
}

pub(super) fn retry_suffix(retry_after: &Option<Duration>) -> String {
    retry_after
        .map(|d| format!(", retry after {:.1} s", d.as_secs_f64()))
        .unwrap_or_default()
}

pub(super) fn problem_suffix(problem: &Option<String>) -> String {
    problem
        .as_ref()
        .map(|p| format!("; {}", redact(p)))
        .unwrap_or_default()
}

pub(super) fn fail_code_suffix(code: &Option<String>) -> String {
    code.as_ref()
        .map(|c| format!(" (failCode {c})"))
        .unwrap_or_default()
}

pub(super) fn fail_msg_suffix(msg: &Option<String>) -> String {
    msg.as_ref()
        .map(|m| format!(": {}", redact(m)))
        .unwrap_or_default()
}

pub(super) fn reached_suffix(may_have_reached: bool) -> &'static str {
    if may_have_reached {
        "; the request may have reached the service"
    } else {
        "; the request was not sent"
    }
}

pub(super) fn about_suffix(subject: &Option<String>) -> String {
    subject
        .as_ref()
        .map(|s| format!(" of the {}", redact(s)))
        .unwrap_or_default()
}
