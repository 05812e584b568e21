//! The envelope's codes: which [`ApiErrorKind`] each one is.

use std::time::Duration;

use crate::error::{ApiErrorKind, Error, Operation};
use crate::lifecycle::TaskId;

/// Messages the service sends with code 500 for what is really a validation
/// failure (`docs/service-notes.md` §2, §3): for an upload or a read, reported
/// as [`ApiErrorKind::Rejected`], never retried. Never for createTask: a
/// message is no proof that no task was stored, and "rejected" lets a caller
/// submit again (see [`from_code`]).
const VALIDATION_HINTS: &[&str] = &[
    "is required",
    "required field",
    "not supported",
    "invalid",
    "must be",
    "too long",
    "exceeds",
    "type not supported",
];

fn looks_like_validation(msg: &str) -> bool {
    let lower = msg.to_ascii_lowercase();
    VALIDATION_HINTS.iter().any(|hint| lower.contains(hint))
}

/// Maps an envelope `code` other than 200 to an error.
pub(crate) fn from_code(
    operation: Operation,
    task_id: Option<TaskId>,
    code: i64,
    msg: String,
    retry_after: Option<Duration>,
) -> Error {
    // createTask: a 5xx-class code is a failure somewhere in the service,
    // maybe after the task was stored, whatever its message says ("invalid",
    // "exceeds"...): outcome unknown, never "rejected" (which would let a
    // rerun pay again). 505 is the documented "feature disabled" refusal.
    if operation == Operation::CreateTask && (500..600).contains(&code) && code != 505 {
        return Error::Api {
            operation,
            task_id,
            code,
            kind: ApiErrorKind::ServerError,
            msg,
            retry_after,
        };
    }
    let kind = match code {
        401 => ApiErrorKind::Unauthorized,
        402 => ApiErrorKind::InsufficientCredits,
        404 => ApiErrorKind::NotFound,
        422 if msg.to_ascii_lowercase().contains("recordinfo is null") => ApiErrorKind::NotFound,
        400 | 405 | 413 | 422 => ApiErrorKind::Rejected,
        433 => ApiErrorKind::UsageLimited,
        429 => ApiErrorKind::RateLimited,
        455 => ApiErrorKind::Maintenance,
        500 if looks_like_validation(&msg) => ApiErrorKind::Rejected,
        500 => ApiErrorKind::ServerError,
        501 => {
            return Error::GenerationFailed {
                operation: Some(operation),
                task_id,
                fail_code: Some("501".into()),
                fail_msg: Some(msg),
            };
        }
        505 => ApiErrorKind::FeatureDisabled,
        _ => ApiErrorKind::Unknown,
    };
    Error::Api {
        operation,
        task_id,
        code,
        kind,
        msg,
        retry_after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_variants() {
        let op = Operation::GetTask;
        let map = |code, msg: &str| from_code(op, None, code, msg.into(), None).kind();
        assert_eq!(map(401, "Unauthorized"), "unauthorized");
        assert_eq!(map(402, "no money"), "insufficient_credits");
        assert_eq!(map(404, "Task not found"), "not_found");
        assert_eq!(map(422, "recordInfo is null"), "not_found");
        assert_eq!(map(422, "url is wrong"), "rejected");
        assert_eq!(map(400, "taskId parameter is required"), "rejected");
        assert_eq!(map(413, "The request body is too large"), "rejected");
        assert_eq!(map(429, "Rate limit exceeded"), "rate_limited");
        assert_eq!(map(433, "sub-key limit"), "usage_limited");
        assert_eq!(map(455, "maintenance"), "maintenance");
        assert_eq!(
            map(500, "Server exception, please try again later"),
            "server_error"
        );
        assert_eq!(map(500, "This field is required"), "rejected");
        assert_eq!(map(500, "audio_url file type not supported"), "rejected");
        assert_eq!(map(501, "Playground task failed."), "generation_failed");
        assert_eq!(map(505, "disabled"), "feature_disabled");
        assert_eq!(map(418, "teapot"), "unknown_code");
    }

    #[test]
    fn a_create_task_5xx_is_never_a_rejection_whatever_its_message() {
        let create =
            |code, msg: &str| from_code(Operation::CreateTask, None, code, msg.into(), None);
        for msg in [
            "prompt is invalid",
            "duration exceeds the limit",
            "audio must be shorter",
            "This field is required",
            "audio_url file type not supported",
        ] {
            for code in [500, 501, 503, 599] {
                let error = create(code, msg);
                assert_eq!(error.kind(), "server_error", "{code} {msg}");
                assert!(!error.is_not_taken(), "{code} {msg}");
                assert!(!error.is_final(), "{code} {msg}");
            }
        }
        // The documented refusal by code stays one.
        assert_eq!(create(505, "disabled").kind(), "feature_disabled");
        assert_eq!(create(422, "url is wrong").kind(), "rejected");
        // An upload's validation 500 creates nothing: still a rejection.
        let upload = from_code(
            Operation::UploadStream,
            None,
            500,
            "file type not supported".into(),
            None,
        );
        assert_eq!(upload.kind(), "rejected");
    }

    #[test]
    fn retryable_kinds() {
        let op = Operation::GetTask;
        assert!(from_code(op, None, 429, String::new(), None).is_retryable());
        assert!(from_code(op, None, 455, String::new(), None).is_retryable());
        assert!(!from_code(op, None, 433, "hourly cap".into(), None).is_retryable());
        assert!(from_code(op, None, 500, "Server exception".into(), None).is_retryable());
        assert!(!from_code(op, None, 500, "This field is required".into(), None).is_retryable());
        assert!(!from_code(op, None, 401, String::new(), None).is_retryable());
        assert!(!from_code(op, None, 422, "recordInfo is null".into(), None).is_retryable());
        let unexpected = |status| Error::UnexpectedResponse {
            operation: op,
            task_id: None,
            status,
            detail: String::new(),
            body: String::new(),
            retry_after: None,
        };
        assert!(unexpected(502).is_retryable());
        assert!(unexpected(520).is_retryable());
        assert!(unexpected(429).is_retryable());
        assert!(!unexpected(403).is_retryable());
        let unknown = Error::SubmitOutcomeUnknown {
            cause: Box::new(unexpected(502)),
        };
        assert!(!unknown.is_retryable());
    }

    #[test]
    fn messages_name_operation_task_and_code() {
        let error = from_code(
            Operation::GetTask,
            Some(TaskId::new("t-1").unwrap()),
            422,
            "recordInfo is null".into(),
            None,
        );
        assert_eq!(
            error.to_string(),
            "recordInfo: not found (code 422) for task t-1: recordInfo is null"
        );
        assert_eq!(error.task_id().map(TaskId::as_str), Some("t-1"));
        assert_eq!(error.operation(), Some(Operation::GetTask));
        assert_eq!(error.code(), Some(422));
        let limited = from_code(
            Operation::CreateTask,
            None,
            429,
            "slow down".into(),
            Some(Duration::from_secs(3)),
        );
        assert_eq!(
            limited.to_string(),
            "createTask: rate limited (code 429), retry after 3.0 s: slow down"
        );
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(3)));
    }
}
