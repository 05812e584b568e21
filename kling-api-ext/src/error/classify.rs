//! What an [`Error`] means for the caller: the one classification (retry it,
//! give up on the input, submit again), and its parts (call, task, code).

use std::time::Duration;

use super::{ApiErrorKind, Error, Field, Operation, safe_url_text};
use crate::lifecycle::TaskId;

impl Error {
    /// Whether repeating the same *read* may succeed: transport failures, rate
    /// limits, maintenance, server errors, and proxy answers (HTTP 408, 429,
    /// 5xx, or a 200 whose body is not the envelope).
    ///
    /// This says nothing about createTask: [`crate::Client::submit`] never repeats
    /// a request that may have reached the service, and reports it as
    /// [`Error::SubmitOutcomeUnknown`], which is not retryable.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport { .. } | Error::Limiter { .. } => true,
            Error::Api { kind, .. } => matches!(
                kind,
                ApiErrorKind::RateLimited | ApiErrorKind::Maintenance | ApiErrorKind::ServerError
            ),
            Error::UnexpectedResponse { status, .. } => {
                matches!(*status, 200 | 408 | 429) || *status >= 500
            }
            _ => false,
        }
    }

    /// Whether the request itself is refused, so that sending the same request
    /// again (now, later, with more credits) is refused the same way: invalid
    /// input, the service's validation ([`ApiErrorKind::Rejected`]), a
    /// disabled feature. Change the request before trying again.
    ///
    /// ```
    /// use kling_api_ext::{Error, Field};
    ///
    /// let error = Error::InvalidInput { field: Field::Prompt, subject: None, reason: "too long".into() };
    /// assert!(error.is_final());
    /// ```
    pub fn is_final(&self) -> bool {
        match self {
            Error::InvalidInput { .. } => true,
            Error::Api { kind, .. } => {
                matches!(kind, ApiErrorKind::Rejected | ApiErrorKind::FeatureDisabled)
            }
            _ => false,
        }
    }

    /// Whether the error is about the account rather than the request: the
    /// key is refused, the credits are too few, or the key's usage cap is
    /// reached. No call with this key succeeds until that changes.
    pub fn is_account(&self) -> bool {
        matches!(
            self.api_kind(),
            Some(
                ApiErrorKind::Unauthorized
                    | ApiErrorKind::InsufficientCredits
                    | ApiErrorKind::UsageLimited
            )
        )
    }

    /// For an error from [`crate::Client::submit`] or
    /// [`crate::Client::create_task`]: whether the service certainly created no
    /// task, so the same request may be submitted again later without paying
    /// twice. True for refusals (invalid input, rejected, no credits, not
    /// authorized, a usage cap, the feature disabled), rate limits, maintenance,
    /// a request that was never sent (no connection, cancelled before sending).
    /// False for [`Error::SubmitOutcomeUnknown`] and for anything else this SDK
    /// cannot vouch for (an unknown code).
    ///
    /// ```
    /// use kling_api_ext::Error;
    /// use kling_api_ext::error::Operation;
    /// assert!(Error::NotSent { operation: Operation::CreateTask }.is_not_taken());
    /// ```
    pub fn is_not_taken(&self) -> bool {
        match self {
            Error::InvalidInput { .. } | Error::NotSent { .. } | Error::Limiter { .. } => true,
            Error::Api {
                kind, operation, ..
            } => match kind {
                ApiErrorKind::Unauthorized
                | ApiErrorKind::InsufficientCredits
                | ApiErrorKind::Rejected
                | ApiErrorKind::RateLimited
                | ApiErrorKind::UsageLimited
                | ApiErrorKind::Maintenance
                | ApiErrorKind::FeatureDisabled => true,
                // Uploads and checks before createTask fail with this too:
                // nothing was created by them.
                ApiErrorKind::ServerError => *operation != Operation::CreateTask,
                ApiErrorKind::NotFound | ApiErrorKind::Unknown => false,
            },
            Error::Transport {
                may_have_reached_server,
                ..
            } => !may_have_reached_server,
            Error::Io { operation, .. } | Error::UnexpectedResponse { operation, .. } => {
                *operation != Operation::CreateTask
            }
            _ => false,
        }
    }

    /// What the envelope code said, for an [`Error::Api`].
    pub fn api_kind(&self) -> Option<ApiErrorKind> {
        match self {
            Error::Api { kind, .. } => Some(*kind),
            _ => None,
        }
    }

    /// The call the error came from (`None` for a [`Error::GenerationFailed`]
    /// read from a task the caller held, and for [`Error::NotEnded`]).
    pub fn operation(&self) -> Option<Operation> {
        match self {
            Error::InvalidInput { .. } => Some(Operation::Validate),
            Error::Api { operation, .. }
            | Error::Transport { operation, .. }
            | Error::UnexpectedResponse { operation, .. }
            | Error::NotSent { operation }
            | Error::Limiter { operation, .. }
            | Error::Io { operation, .. } => Some(*operation),
            Error::SubmitOutcomeUnknown { .. } => Some(Operation::CreateTask),
            Error::WaitTimedOut { .. } | Error::Cancelled { .. } | Error::ResultMissing { .. } => {
                Some(Operation::Wait)
            }
            Error::LinkExpired { .. } => Some(Operation::Download),
            Error::GenerationFailed { operation, .. } => *operation,
            Error::NotEnded { .. } => None,
        }
    }

    /// The task the error is about, where known.
    pub fn task_id(&self) -> Option<&TaskId> {
        match self {
            Error::Api { task_id, .. }
            | Error::GenerationFailed { task_id, .. }
            | Error::Transport { task_id, .. }
            | Error::UnexpectedResponse { task_id, .. }
            | Error::LinkExpired { task_id, .. }
            | Error::Io { task_id, .. } => task_id.as_ref(),
            Error::WaitTimedOut { task_id, .. }
            | Error::Cancelled { task_id }
            | Error::ResultMissing { task_id, .. }
            | Error::NotEnded { task_id, .. } => Some(task_id),
            Error::SubmitOutcomeUnknown { cause } => cause.task_id(),
            Error::InvalidInput { .. } | Error::NotSent { .. } | Error::Limiter { .. } => None,
        }
    }

    /// The body `code` the service answered with, where there was one.
    pub fn code(&self) -> Option<i64> {
        match self {
            Error::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The error in one short line, for the retry reports
    /// ([`Retrying::error`](crate::retry::Retrying::error)): the message
    /// without the operation's name or a response body, at most 100
    /// characters.
    pub(crate) fn brief(&self) -> String {
        let text = match self {
            Error::UnexpectedResponse { detail, .. } => detail.clone(),
            other => {
                let text = other.to_string();
                let operation = self.operation().map(|o| format!("{o}: "));
                match operation {
                    Some(prefix) if text.starts_with(&prefix) => text[prefix.len()..].to_owned(),
                    _ => text,
                }
            }
        };
        let line = text.lines().next().unwrap_or_default();
        match line.char_indices().nth(99) {
            Some((cut, _)) => format!("{}…", &line[..cut]),
            None => line.to_owned(),
        }
    }

    /// How long the service asked to wait before trying again, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Api { retry_after, .. } | Error::UnexpectedResponse { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    /// A short, stable name for the kind of error (for logs, metrics and
    /// machine-readable output): `invalid_input`, `unauthorized`, `rate_limited`, ...
    /// (an [`Error::Api`] gives its [`ApiErrorKind::as_str`]).
    pub fn kind(&self) -> &'static str {
        match self {
            Error::InvalidInput { .. } => "invalid_input",
            Error::Api { kind, .. } => kind.as_str(),
            Error::GenerationFailed { .. } => "generation_failed",
            Error::Transport { .. } => "transport",
            Error::UnexpectedResponse { .. } => "unexpected_response",
            Error::SubmitOutcomeUnknown { .. } => "submit_outcome_unknown",
            Error::WaitTimedOut { .. } => "wait_timed_out",
            Error::Cancelled { .. } => "cancelled",
            Error::ResultMissing { .. } => "result_missing",
            Error::NotSent { .. } => "not_sent",
            Error::Limiter { .. } => "limiter",
            Error::LinkExpired { .. } => "link_expired",
            Error::Io { .. } => "io",
            Error::NotEnded { .. } => "not_ended",
        }
    }

    /// Replaces every occurrence of `secret` in the texts this error carries (a
    /// service may echo the key back in a message or an error page).
    pub(crate) fn redact(mut self, secret: &str) -> Self {
        if secret.is_empty() {
            return self;
        }
        let scrub = |text: &mut String| {
            if text.contains(secret) {
                *text = text.replace(secret, "[redacted]");
            }
        };
        match &mut self {
            Error::InvalidInput {
                subject, reason, ..
            } => {
                if let Some(subject) = subject {
                    scrub(subject);
                }
                scrub(reason);
            }
            Error::Api { msg, .. } => scrub(msg),
            Error::GenerationFailed { fail_msg, .. } => {
                if let Some(msg) = fail_msg {
                    scrub(msg);
                }
            }
            Error::UnexpectedResponse { detail, body, .. } => {
                scrub(detail);
                scrub(body);
            }
            Error::SubmitOutcomeUnknown { cause } => {
                let inner = std::mem::replace(
                    cause.as_mut(),
                    Error::NotSent {
                        operation: Operation::CreateTask,
                    },
                );
                **cause = inner.redact(secret);
            }
            Error::LinkExpired { url, .. } => scrub(url),
            Error::ResultMissing { detail, .. } => scrub(detail),
            Error::Transport { .. }
            | Error::NotSent { .. }
            | Error::Limiter { .. }
            | Error::WaitTimedOut { .. }
            | Error::Cancelled { .. }
            | Error::Io { .. }
            | Error::NotEnded { .. } => {}
        }
        self
    }

    /// The same error, about `task_id` where it names no task yet (a download
    /// or file error met while handling a task's result, say). Variants that
    /// cannot name a task are returned as they are.
    ///
    /// ```
    /// use kling_api_ext::{Error, TaskId};
    /// use kling_api_ext::error::Operation;
    /// let error = Error::Io {
    ///     operation: Operation::Download,
    ///     task_id: None,
    ///     path: "avatar.mp4".into(),
    ///     source: std::io::Error::other("disk full"),
    /// };
    /// let error = error.with_task_id(&TaskId::new("t-1")?);
    /// assert_eq!(error.task_id().map(TaskId::as_str), Some("t-1"));
    /// # Ok::<(), Error>(())
    /// ```
    pub fn with_task_id(mut self, id: &TaskId) -> Self {
        match &mut self {
            Error::Api { task_id, .. }
            | Error::GenerationFailed { task_id, .. }
            | Error::Transport { task_id, .. }
            | Error::UnexpectedResponse { task_id, .. }
            | Error::LinkExpired { task_id, .. }
            | Error::Io { task_id, .. }
                if task_id.is_none() =>
            {
                *task_id = Some(id.clone());
            }
            _ => {}
        }
        self
    }

    pub(crate) fn invalid(
        field: Field,
        subject: Option<String>,
        reason: impl Into<String>,
    ) -> Self {
        Error::InvalidInput {
            field,
            subject: subject.map(|s| safe_url_text(&s)),
            reason: reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(kind: ApiErrorKind, operation: Operation) -> Error {
        Error::Api {
            operation,
            task_id: None,
            code: 0,
            kind,
            msg: String::new(),
            retry_after: None,
        }
    }

    #[test]
    fn brief_is_one_short_line_without_the_operation_or_the_body() {
        let error = Error::UnexpectedResponse {
            operation: Operation::UploadStream,
            task_id: None,
            status: 502,
            detail: "HTTP 502 instead of the envelope".into(),
            body: "<!DOCTYPE html>...".into(),
            retry_after: None,
        };
        assert_eq!(error.brief(), "HTTP 502 instead of the envelope");
        let long = Error::invalid(Field::Prompt, None, "x".repeat(300));
        assert_eq!(long.brief().chars().count(), 100, "{}", long.brief());
    }

    /// The one classification: what to do with each kind.
    #[test]
    fn each_api_kind_is_classified_once() {
        use ApiErrorKind::*;
        let create = Operation::CreateTask;
        // (kind, retryable read, final, about the account, not taken by createTask)
        let table = [
            (Unauthorized, false, false, true, true),
            (InsufficientCredits, false, false, true, true),
            (NotFound, false, false, false, false),
            (Rejected, false, true, false, true),
            (RateLimited, true, false, false, true),
            (UsageLimited, false, false, true, true),
            (Maintenance, true, false, false, true),
            (ServerError, true, false, false, false),
            (FeatureDisabled, false, true, false, true),
            (Unknown, false, false, false, false),
        ];
        for (kind, retryable, last, account, not_taken) in table {
            let error = api(kind, create);
            assert_eq!(error.is_retryable(), retryable, "{kind}");
            assert_eq!(error.is_final(), last, "{kind}");
            assert_eq!(error.is_account(), account, "{kind}");
            assert_eq!(error.is_not_taken(), not_taken, "{kind}");
            assert_eq!(error.kind(), kind.as_str());
            assert_eq!(error.api_kind(), Some(kind));
        }
        // An upload's server error created nothing.
        assert!(api(ServerError, Operation::UploadStream).is_not_taken());
    }
}
