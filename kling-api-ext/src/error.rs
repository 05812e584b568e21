//! The one error type of the SDK, with a variant per thing a caller acts on
//! differently.
//!
//! The service answers most errors with HTTP 200 and the real status in the
//! body's `code` (`docs/service-notes.md` §2); [`Error`] maps every such code, every HTTP
//! status and every body that is not the envelope to a typed value that keeps the
//! details. Nothing here ever holds the API key.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use crate::task::{State, TaskId};

/// The call an error came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Operation {
    /// Checking a request before anything is sent.
    Validate,
    /// Checking a media URL with `HEAD` or a ranged `GET` before submitting.
    Preflight,
    /// `POST /api/file-stream-upload` (multipart).
    UploadStream,
    /// `POST /api/file-base64-upload`.
    UploadBase64,
    /// `POST /api/file-url-upload`.
    UploadUrl,
    /// `POST /api/v1/jobs/createTask`.
    CreateTask,
    /// `GET /api/v1/jobs/recordInfo`.
    GetTask,
    /// `GET /api/v1/chat/credit`.
    Credits,
    /// `POST /api/v1/common/download-url`.
    DownloadUrl,
    /// Waiting for a task to end (polling recordInfo).
    Wait,
    /// Downloading a result file.
    Download,
    /// Checking a callback (webhook) request.
    Callback,
}

impl Operation {
    /// Whether the operation reads state and can be repeated without effect.
    pub fn is_read(self) -> bool {
        matches!(
            self,
            Operation::GetTask
                | Operation::Credits
                | Operation::DownloadUrl
                | Operation::Wait
                | Operation::Download
                | Operation::Preflight
        )
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::Validate => "validate",
            Operation::Preflight => "preflight",
            Operation::UploadStream => "upload (stream)",
            Operation::UploadBase64 => "upload (base64)",
            Operation::UploadUrl => "upload (url)",
            Operation::CreateTask => "createTask",
            Operation::GetTask => "recordInfo",
            Operation::Credits => "credit",
            Operation::DownloadUrl => "download-url",
            Operation::Wait => "wait",
            Operation::Download => "download",
            Operation::Callback => "callback",
        })
    }
}

/// The input an [`Error::InvalidInput`] is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Field {
    /// The portrait image (`input.image_url`).
    Image,
    /// The audio track (`input.audio_url`).
    Audio,
    /// The prompt (`input.prompt`).
    Prompt,
    /// The callback URL (`callBackUrl`).
    CallbackUrl,
    /// The model id (`model`).
    Model,
    /// A task id given by the caller.
    TaskId,
    /// A setting of the client (base URL, API key, timeouts).
    Config,
    /// A URL or path to download.
    Download,
    /// A local file given to an upload.
    File,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::Image => "image",
            Field::Audio => "audio",
            Field::Prompt => "prompt",
            Field::CallbackUrl => "callback URL",
            Field::Model => "model",
            Field::TaskId => "task id",
            Field::Config => "client setting",
            Field::Download => "download",
            Field::File => "file",
        })
    }
}

/// How a request failed below HTTP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TransportKind {
    /// No connection was made (refused, TLS): the request was not sent.
    Connect,
    /// The host name could not be resolved (a typo, no network, a DNS
    /// outage): the request was not sent.
    Dns,
    /// The request or the response took longer than the timeout.
    Timeout,
    /// The connection broke while sending or receiving (reset, EOF, body error).
    Reset,
    /// Anything else reqwest reports.
    Other,
}

impl fmt::Display for TransportKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransportKind::Connect => "could not connect",
            TransportKind::Dns => "could not resolve the host name",
            TransportKind::Timeout => "timed out",
            TransportKind::Reset => "connection broken",
            TransportKind::Other => "transport error",
        })
    }
}

/// Everything that can go wrong, one variant per thing a caller acts on
/// differently. See [`Error::is_retryable`] for which are worth trying again.
///
/// Every variant that comes from a call carries the [`Operation`] and, where
/// known, the [`TaskId`] ([`Error::operation`], [`Error::task_id`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input is not acceptable; nothing was sent.
    #[error("invalid {field}{}: {reason}", subject_suffix(.subject))]
    InvalidInput {
        /// Which input.
        field: Field,
        /// The file path or URL concerned, if any.
        subject: Option<String>,
        /// What is wrong and what is allowed.
        reason: String,
    },

    /// The API key is missing, wrong or revoked (code 401).
    #[error("{operation}: unauthorized (code 401): {msg}; check APIKLEY_API_KEY")]
    Unauthorized {
        /// The call.
        operation: Operation,
        /// The task, if the call was about one.
        task_id: Option<TaskId>,
        /// The service's message.
        msg: String,
    },

    /// The account has too few credits (code 402). Nothing was created.
    #[error("{operation}: insufficient credits (code 402): {msg}")]
    InsufficientCredits {
        /// The call.
        operation: Operation,
        /// The task, if the call was about one.
        task_id: Option<TaskId>,
        /// The service's message.
        msg: String,
    },

    /// The task (or resource) does not exist: code 404, or code 422 with
    /// `recordInfo is null`. Right after createTask this can mean "not visible yet".
    #[error("{operation}: not found (code {code}){}: {msg}", task_suffix(.task_id))]
    NotFound {
        /// The call.
        operation: Operation,
        /// The task asked for.
        task_id: Option<TaskId>,
        /// The body code (404 or 422).
        code: i64,
        /// The service's message.
        msg: String,
    },

    /// The service's validation rejected the request (codes 400, 405, 413, 422, or 500
    /// with a validation message such as `This field is required`).
    #[error("{operation}: rejected by the service (code {code}){}: {msg}", task_suffix(.task_id))]
    Rejected {
        /// The call.
        operation: Operation,
        /// The task, if the call was about one.
        task_id: Option<TaskId>,
        /// The body code.
        code: i64,
        /// The service's message, which says what it did not accept.
        msg: String,
    },

    /// Too many requests: code 429 (or HTTP 429). Worth trying again after
    /// `retry_after` (or the rest of the rate-limit window).
    #[error("{operation}: rate limited (code {code}){}: {msg}", retry_suffix(.retry_after))]
    RateLimited {
        /// The call.
        operation: Operation,
        /// The task, if the call was about one.
        task_id: Option<TaskId>,
        /// 429.
        code: i64,
        /// How long the service asked to wait (`Retry-After`), if it said.
        retry_after: Option<Duration>,
        /// The service's message.
        msg: String,
    },

    /// A usage cap of the key was reached (code 433: a sub-key's hourly or daily
    /// limit). Not retried: the cap lasts far longer than any retry budget.
    /// Nothing was created.
    #[error(
        "{operation}: usage limit of this key reached (code 433): {msg}; raise the key's limit or wait for it to reset"
    )]
    UsageLimited {
        /// The call.
        operation: Operation,
        /// The task, if the call was about one.
        task_id: Option<TaskId>,
        /// The service's message.
        msg: String,
    },

    /// The service is under maintenance (code 455).
    #[error("{operation}: service under maintenance (code 455): {msg}")]
    Maintenance {
        /// The call.
        operation: Operation,
        /// The task, if the call was about one.
        task_id: Option<TaskId>,
        /// The service's message.
        msg: String,
    },

    /// The service failed (code 500 that is not a validation message).
    #[error("{operation}: server error (code 500){}: {msg}", task_suffix(.task_id))]
    ServerError {
        /// The call.
        operation: Operation,
        /// The task, if the call was about one.
        task_id: Option<TaskId>,
        /// The service's message.
        msg: String,
    },

    /// The generation failed: the task ended in state `fail`, or code 501.
    /// Failed tasks are not charged (`docs/service-notes.md` §5).
    #[error("generation failed{}{}{}", task_suffix(.task_id), fail_code_suffix(.fail_code), fail_msg_suffix(.fail_msg))]
    GenerationFailed {
        /// The call that reported it: recordInfo for a polled task, the call
        /// answered with code 501; `None` for a failure read from a [`crate::Task`]
        /// held by the caller ([`crate::Task::into_result`]) or from a callback.
        operation: Option<Operation>,
        /// The task.
        task_id: Option<TaskId>,
        /// The service's failure code (`failCode`), as text.
        fail_code: Option<String>,
        /// The service's failure message (`failMsg`, or the envelope's `msg`).
        fail_msg: Option<String>,
    },

    /// The feature is disabled (code 505).
    #[error("{operation}: feature disabled (code 505): {msg}")]
    FeatureDisabled {
        /// The call.
        operation: Operation,
        /// The task, if the call was about one.
        task_id: Option<TaskId>,
        /// The service's message.
        msg: String,
    },

    /// A body `code` this SDK does not know.
    #[error("{operation}: unknown response code {code}{}: {msg}", task_suffix(.task_id))]
    UnknownCode {
        /// The call.
        operation: Operation,
        /// The task, if the call was about one.
        task_id: Option<TaskId>,
        /// The code.
        code: i64,
        /// The service's message.
        msg: String,
    },

    /// The request failed below HTTP: no connection, a timeout, a reset.
    #[error("{operation}: {kind}{}{}", task_suffix(.task_id), reached_suffix(*.may_have_reached_server))]
    Transport {
        /// The call.
        operation: Operation,
        /// The task, if the call was about one.
        task_id: Option<TaskId>,
        /// What happened.
        kind: TransportKind,
        /// Whether the request may have reached the service (`false` only when no
        /// connection was made).
        may_have_reached_server: bool,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },

    /// An HTTP status the API does not use, or a body that is not the envelope
    /// (an HTML page from a proxy, a truncated body, an envelope missing a field
    /// it must have).
    #[error("{operation}: unexpected response (HTTP {status}){}: {detail}; body starts: {body:?}", task_suffix(.task_id))]
    UnexpectedResponse {
        /// The call.
        operation: Operation,
        /// The task, if the call was about one.
        task_id: Option<TaskId>,
        /// The HTTP status.
        status: u16,
        /// What was wrong with it.
        detail: String,
        /// The first KiB of the body.
        body: String,
        /// How long the server asked to wait (`Retry-After`), if it said.
        retry_after: Option<Duration>,
    },

    /// createTask may or may not have created a task: the request may have
    /// reached the service, but no answer says what happened. **Do not submit
    /// again blindly**: the task may exist and would be charged twice.
    #[error(
        "createTask outcome unknown: the task may exist; not retried, to avoid paying twice ({cause})"
    )]
    SubmitOutcomeUnknown {
        /// What happened.
        #[source]
        cause: Box<Error>,
    },

    /// The task says `success` but gives no usable result URL (or the service
    /// answered `code: 200` with no data), and a few more looks confirmed it.
    /// The task exists and may be charged: ask the service about it with its id.
    #[error("task {task_id}: {detail} (last state: {}, {polls} polls); the task exists: check it with its id", last_state.as_ref().map_or("not seen", State::as_str))]
    ResultMissing {
        /// The task.
        task_id: TaskId,
        /// The last state seen (`success` when the result URLs were missing).
        last_state: Option<State>,
        /// Status requests made.
        polls: u32,
        /// What was missing.
        detail: String,
    },

    /// The call was cancelled before its request was sent: nothing reached the
    /// service and nothing was created.
    #[error("{operation}: cancelled before the request was sent; nothing was created")]
    NotSent {
        /// The call.
        operation: Operation,
    },

    /// The task did not end before the deadline. It may still finish: call
    /// `wait` again with the same task id.
    #[error(
        "task {task_id} did not end within {:.0} s (last state: {last_state}, {polls} polls); it may still finish: wait for it again", elapsed.as_secs_f64()
    )]
    WaitTimedOut {
        /// The task.
        task_id: TaskId,
        /// How long the wait lasted.
        elapsed: Duration,
        /// The last state seen.
        last_state: State,
        /// Status requests made.
        polls: u32,
    },

    /// The wait was cancelled by its token. The task keeps running on the service.
    #[error("waiting for task {task_id} was cancelled; the task keeps running")]
    Cancelled {
        /// The task.
        task_id: TaskId,
    },

    /// A result URL answered 403, 404 or 410: result URLs expire after about 24
    /// hours. [`crate::Client::download_url`] gives a fresh 20-minute link for a
    /// file the service generated.
    #[error(
        "download{}: {url} answered HTTP {status}; result URLs expire after about 24 hours: ask download_url() for a fresh link", task_suffix(.task_id)
    )]
    LinkExpired {
        /// The task whose result it is, when the download was of a task.
        task_id: Option<TaskId>,
        /// The URL, without its query (a presigned URL's signature stays out
        /// of messages and logs).
        url: String,
        /// The HTTP status.
        status: u16,
    },

    /// A local file could not be read or written.
    #[error("{operation}{}: {}: {source}", task_suffix(.task_id), .path.display())]
    Io {
        /// The call.
        operation: Operation,
        /// The task, when the file was a task's result.
        task_id: Option<TaskId>,
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

fn subject_suffix(subject: &Option<String>) -> String {
    subject
        .as_ref()
        .map(|s| format!(" `{s}`"))
        .unwrap_or_default()
}

fn task_suffix(task_id: &Option<TaskId>) -> String {
    task_id
        .as_ref()
        .map(|t| format!(" for task {t}"))
        .unwrap_or_default()
}

fn retry_suffix(retry_after: &Option<Duration>) -> String {
    retry_after
        .map(|d| format!(", retry after {:.1} s", d.as_secs_f64()))
        .unwrap_or_default()
}

fn fail_code_suffix(code: &Option<String>) -> String {
    code.as_ref()
        .map(|c| format!(" (failCode {c})"))
        .unwrap_or_default()
}

fn fail_msg_suffix(msg: &Option<String>) -> String {
    msg.as_ref().map(|m| format!(": {m}")).unwrap_or_default()
}

fn reached_suffix(may_have_reached: bool) -> &'static str {
    if may_have_reached {
        "; the request may have reached the service"
    } else {
        "; the request was not sent"
    }
}

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

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
            Error::Transport { .. }
            | Error::RateLimited { .. }
            | Error::Maintenance { .. }
            | Error::ServerError { .. } => true,
            Error::UnexpectedResponse { status, .. } => {
                matches!(*status, 200 | 408 | 429) || *status >= 500
            }
            _ => false,
        }
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
    /// use kling_api_ext::{Error, Operation};
    /// assert!(Error::NotSent { operation: Operation::CreateTask }.is_not_taken());
    /// ```
    pub fn is_not_taken(&self) -> bool {
        match self {
            Error::InvalidInput { .. }
            | Error::Unauthorized { .. }
            | Error::InsufficientCredits { .. }
            | Error::Rejected { .. }
            | Error::RateLimited { .. }
            | Error::UsageLimited { .. }
            | Error::Maintenance { .. }
            | Error::FeatureDisabled { .. }
            | Error::NotSent { .. } => true,
            Error::Transport {
                may_have_reached_server,
                ..
            } => !may_have_reached_server,
            // Uploads and checks before createTask fail with these too: nothing
            // was created by them.
            Error::Io { operation, .. }
            | Error::UnexpectedResponse { operation, .. }
            | Error::ServerError { operation, .. } => *operation != Operation::CreateTask,
            _ => false,
        }
    }

    /// The call the error came from (`None` for the wait outcomes, which are
    /// about a task rather than a call, and for a [`Error::GenerationFailed`]
    /// read from a task the caller held).
    pub fn operation(&self) -> Option<Operation> {
        match self {
            Error::InvalidInput { .. } => Some(Operation::Validate),
            Error::Unauthorized { operation, .. }
            | Error::InsufficientCredits { operation, .. }
            | Error::NotFound { operation, .. }
            | Error::Rejected { operation, .. }
            | Error::RateLimited { operation, .. }
            | Error::UsageLimited { operation, .. }
            | Error::Maintenance { operation, .. }
            | Error::ServerError { operation, .. }
            | Error::FeatureDisabled { operation, .. }
            | Error::UnknownCode { operation, .. }
            | Error::Transport { operation, .. }
            | Error::UnexpectedResponse { operation, .. }
            | Error::NotSent { operation }
            | Error::Io { operation, .. } => Some(*operation),
            Error::SubmitOutcomeUnknown { .. } => Some(Operation::CreateTask),
            Error::WaitTimedOut { .. } | Error::Cancelled { .. } | Error::ResultMissing { .. } => {
                Some(Operation::Wait)
            }
            Error::LinkExpired { .. } => Some(Operation::Download),
            Error::GenerationFailed { operation, .. } => *operation,
        }
    }

    /// The task the error is about, where known.
    pub fn task_id(&self) -> Option<&TaskId> {
        match self {
            Error::Unauthorized { task_id, .. }
            | Error::InsufficientCredits { task_id, .. }
            | Error::FeatureDisabled { task_id, .. }
            | Error::NotFound { task_id, .. }
            | Error::Rejected { task_id, .. }
            | Error::RateLimited { task_id, .. }
            | Error::UsageLimited { task_id, .. }
            | Error::Maintenance { task_id, .. }
            | Error::ServerError { task_id, .. }
            | Error::GenerationFailed { task_id, .. }
            | Error::UnknownCode { task_id, .. }
            | Error::Transport { task_id, .. }
            | Error::UnexpectedResponse { task_id, .. }
            | Error::LinkExpired { task_id, .. }
            | Error::Io { task_id, .. } => task_id.as_ref(),
            Error::WaitTimedOut { task_id, .. }
            | Error::Cancelled { task_id }
            | Error::ResultMissing { task_id, .. } => Some(task_id),
            Error::SubmitOutcomeUnknown { cause } => cause.task_id(),
            _ => None,
        }
    }

    /// The body `code` the service answered with, where there was one.
    pub fn code(&self) -> Option<i64> {
        match self {
            Error::Unauthorized { .. } => Some(401),
            Error::InsufficientCredits { .. } => Some(402),
            Error::UsageLimited { .. } => Some(433),
            Error::Maintenance { .. } => Some(455),
            Error::ServerError { .. } => Some(500),
            Error::FeatureDisabled { .. } => Some(505),
            Error::NotFound { code, .. }
            | Error::Rejected { code, .. }
            | Error::RateLimited { code, .. }
            | Error::UnknownCode { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The error in one short line, for a status line: the message without
    /// the operation's name or a response body, at most 100 characters.
    ///
    /// ```
    /// use kling_api_ext::{Error, Operation};
    ///
    /// let error = Error::UnexpectedResponse {
    ///     operation: Operation::UploadStream,
    ///     task_id: None,
    ///     status: 502,
    ///     detail: "HTTP 502 instead of the envelope".into(),
    ///     body: "<!DOCTYPE html>...".into(),
    ///     retry_after: None,
    /// };
    /// assert_eq!(error.brief(), "HTTP 502 instead of the envelope");
    /// ```
    pub fn brief(&self) -> String {
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
            Error::RateLimited { retry_after, .. }
            | Error::UnexpectedResponse { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A short, stable name for the kind of error (for logs, metrics and the
    /// CLI's JSON output): `invalid_input`, `unauthorized`, `rate_limited`, ...
    pub fn kind(&self) -> &'static str {
        match self {
            Error::InvalidInput { .. } => "invalid_input",
            Error::Unauthorized { .. } => "unauthorized",
            Error::InsufficientCredits { .. } => "insufficient_credits",
            Error::NotFound { .. } => "not_found",
            Error::Rejected { .. } => "rejected",
            Error::RateLimited { .. } => "rate_limited",
            Error::UsageLimited { .. } => "usage_limited",
            Error::Maintenance { .. } => "maintenance",
            Error::ServerError { .. } => "server_error",
            Error::GenerationFailed { .. } => "generation_failed",
            Error::FeatureDisabled { .. } => "feature_disabled",
            Error::UnknownCode { .. } => "unknown_code",
            Error::Transport { .. } => "transport",
            Error::UnexpectedResponse { .. } => "unexpected_response",
            Error::SubmitOutcomeUnknown { .. } => "submit_outcome_unknown",
            Error::WaitTimedOut { .. } => "wait_timed_out",
            Error::Cancelled { .. } => "cancelled",
            Error::ResultMissing { .. } => "result_missing",
            Error::NotSent { .. } => "not_sent",
            Error::LinkExpired { .. } => "link_expired",
            Error::Io { .. } => "io",
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
            Error::Unauthorized { msg, .. }
            | Error::InsufficientCredits { msg, .. }
            | Error::NotFound { msg, .. }
            | Error::Rejected { msg, .. }
            | Error::RateLimited { msg, .. }
            | Error::UsageLimited { msg, .. }
            | Error::Maintenance { msg, .. }
            | Error::ServerError { msg, .. }
            | Error::FeatureDisabled { msg, .. }
            | Error::UnknownCode { msg, .. } => scrub(msg),
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
            | Error::WaitTimedOut { .. }
            | Error::Cancelled { .. }
            | Error::Io { .. } => {}
        }
        self
    }

    /// The same error, about `task_id` where it names no task yet (a download
    /// or file error met while handling a task's result, say). Variants that
    /// cannot name a task are returned as they are.
    ///
    /// ```
    /// use kling_api_ext::{Error, Operation, TaskId};
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
            Error::Unauthorized { task_id, .. }
            | Error::InsufficientCredits { task_id, .. }
            | Error::FeatureDisabled { task_id, .. }
            | Error::NotFound { task_id, .. }
            | Error::Rejected { task_id, .. }
            | Error::RateLimited { task_id, .. }
            | Error::UsageLimited { task_id, .. }
            | Error::Maintenance { task_id, .. }
            | Error::ServerError { task_id, .. }
            | Error::GenerationFailed { task_id, .. }
            | Error::UnknownCode { task_id, .. }
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

/// Messages the service sends with code 500 for what is really a validation
/// failure (`docs/service-notes.md` §2, §3): reported as [`Error::Rejected`], never retried.
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
    match code {
        401 => Error::Unauthorized {
            operation,
            task_id,
            msg,
        },
        402 => Error::InsufficientCredits {
            operation,
            task_id,
            msg,
        },
        404 => Error::NotFound {
            operation,
            task_id,
            code,
            msg,
        },
        422 if msg.to_ascii_lowercase().contains("recordinfo is null") => Error::NotFound {
            operation,
            task_id,
            code,
            msg,
        },
        400 | 405 | 413 | 422 => Error::Rejected {
            operation,
            task_id,
            code,
            msg,
        },
        433 => Error::UsageLimited {
            operation,
            task_id,
            msg,
        },
        429 => Error::RateLimited {
            operation,
            task_id,
            code,
            retry_after,
            msg,
        },
        455 => Error::Maintenance {
            operation,
            task_id,
            msg,
        },
        500 if looks_like_validation(&msg) => Error::Rejected {
            operation,
            task_id,
            code,
            msg,
        },
        500 => Error::ServerError {
            operation,
            task_id,
            msg,
        },
        501 => Error::GenerationFailed {
            operation: Some(operation),
            task_id,
            fail_code: Some("501".into()),
            fail_msg: Some(msg),
        },
        505 => Error::FeatureDisabled {
            operation,
            task_id,
            msg,
        },
        _ => Error::UnknownCode {
            operation,
            task_id,
            code,
            msg,
        },
    }
}

/// A URL as messages and logs show it: without its query, fragment and
/// password. A presigned URL's query is its credential (an S3 or OSS
/// signature); it never goes into an error or a log line.
///
/// ```
/// let url = url::Url::parse("https://b.example.com/v.mp3?X-Amz-Signature=abc").unwrap();
/// assert_eq!(kling_api_ext::safe_url(&url), "https://b.example.com/v.mp3?[query hidden]");
/// ```
pub fn safe_url(url: &url::Url) -> String {
    if url.query().is_none() && url.fragment().is_none() && url.password().is_none() {
        return url.to_string();
    }
    let mut shown = url.clone();
    let had_query = shown.query().is_some();
    shown.set_query(None);
    shown.set_fragment(None);
    let _ = shown.set_password(None);
    let mut text = shown.to_string();
    if had_query {
        text.push_str("?[query hidden]");
    }
    text
}

/// [`safe_url`] for a text that may be a URL (anything else is returned as is).
pub(crate) fn safe_url_text(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => safe_url(&url),
        _ => text.to_owned(),
    }
}

/// The first KiB of a body as text, cut at a character boundary. Bytes that are
/// not UTF-8 become U+FFFD, which takes three bytes: the cut is made on the
/// text, so the result stays within a KiB whatever the body holds.
pub(crate) fn body_prefix(bytes: &[u8]) -> String {
    const LIMIT: usize = 1024;
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(LIMIT)]);
    let mut cut = text.len().min(LIMIT);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    let mut prefix = text[..cut].to_owned();
    if bytes.len() > LIMIT || cut < text.len() {
        prefix.push('…');
    }
    prefix
}

/// Whether a connect error's causes say the name did not resolve (hyper-util's
/// resolver reports "dns error", the system's "failed to lookup address").
fn is_dns_failure(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = cause {
        let text = e.to_string().to_ascii_lowercase();
        if text.contains("dns error") || text.contains("failed to lookup address") {
            return true;
        }
        cause = e.source();
    }
    false
}

/// Classifies a reqwest error.
pub(crate) fn transport(
    operation: Operation,
    task_id: Option<TaskId>,
    error: reqwest::Error,
) -> Error {
    let kind = if error.is_connect() && is_dns_failure(&error) {
        TransportKind::Dns
    } else if error.is_connect() {
        TransportKind::Connect
    } else if error.is_timeout() {
        TransportKind::Timeout
    } else if error.is_body() || error.is_request() || error.is_decode() {
        TransportKind::Reset
    } else {
        TransportKind::Other
    };
    // Only a failed connection proves the request was not sent; a connect
    // timeout is reported by reqwest as both connect and timeout.
    let may_have_reached_server = !error.is_connect();
    // reqwest's message names the URL: keep its host and path for the reader,
    // never a presigned query.
    let mut error = error;
    if let Some(url) = error.url_mut() {
        url.set_query(None);
        url.set_fragment(None);
        let _ = url.set_password(None);
    }
    Error::Transport {
        operation,
        task_id,
        kind,
        may_have_reached_server,
        source: error,
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
    fn a_name_that_does_not_resolve_is_told_from_a_refused_connection() {
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl fmt::Display for Outer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("client error (Connect)")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        let dns = Outer(std::io::Error::other(
            "dns error: failed to lookup address information: Name or service not known",
        ));
        assert!(is_dns_failure(&dns));
        let refused = Outer(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(!is_dns_failure(&refused));
        assert_eq!(
            TransportKind::Dns.to_string(),
            "could not resolve the host name"
        );
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

    /// Found by `cargo fuzz run envelope` (artifacts/envelope/crash-1c3752ec…):
    /// 1,024 bytes that are not UTF-8 turned into a 3 KiB "prefix".
    #[test]
    fn body_prefix_of_invalid_utf8_stays_within_a_kib() {
        for body in [
            vec![0xFFu8; 1024],
            vec![0xFFu8; 5000],
            [b"ok".as_slice(), &[0xC3; 2000]].concat(),
        ] {
            let prefix = body_prefix(&body);
            assert!(
                prefix.len() <= 1024 + '…'.len_utf8(),
                "{} bytes",
                prefix.len()
            );
            assert!(prefix.ends_with('…'));
        }
    }

    #[test]
    fn body_prefix_is_at_most_a_kib_and_keeps_characters_whole() {
        let body = "é".repeat(2000);
        let prefix = body_prefix(body.as_bytes());
        assert!(prefix.len() <= 1024 + '…'.len_utf8() + 3);
        assert!(prefix.ends_with('…'));
        assert_eq!(body_prefix(b"short"), "short");
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
