//! The one error type of the SDK, with a variant per thing a caller acts on
//! differently.
//!
//! The service answers most errors with HTTP 200 and the real status in the
//! body's `code` (`docs/service-notes.md` §2); every such code becomes one
//! [`Error::Api`] with its [`ApiErrorKind`]; every HTTP status and every body
//! that is not the envelope becomes a typed value that keeps the details
//! (reading them is `crate::interpret`'s work). Nothing here ever holds the API
//! key.

use std::path::PathBuf;
use std::time::Duration;

use crate::lifecycle::{InvalidTaskId, State, TaskId};
pub use crate::operation::Operation;

mod classify;
mod kind;
mod message;
mod redact;

pub use kind::{ApiErrorKind, Field, TransportKind};
use message::*;

pub(crate) use redact::{hide_url_queries, safe_url_text, written_host};
pub use redact::{redact, register_secret, safe_url};

/// Everything that can go wrong, one variant per thing a caller acts on
/// differently. [`Error::is_retryable`], [`Error::is_final`] and
/// [`Error::is_not_taken`] are the classification to act on.
///
/// Every variant that comes from a call carries the [`Operation`] and, where
/// known, the [`TaskId`] ([`Error::operation`], [`Error::task_id`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input is not acceptable; nothing was sent.
    #[error("invalid {field}{}: {}", subject_suffix(.subject), redact(.reason))]
    InvalidInput {
        /// Which input.
        field: Field,
        /// The file path or URL concerned, if any.
        subject: Option<String>,
        /// What is wrong and what is allowed.
        reason: String,
    },

    /// The service answered with an envelope `code` other than 200 (or with
    /// HTTP 429): it refused the call, or failed it.
    ///
    /// ```
    /// use kling_api_ext::{ApiErrorKind, Error};
    /// use kling_api_ext::error::Operation;
    ///
    /// let error = Error::Api {
    ///     operation: Operation::Credits,
    ///     task_id: None,
    ///     code: 401,
    ///     kind: ApiErrorKind::Unauthorized,
    ///     msg: "You do not have access permissions".into(),
    ///     retry_after: None,
    /// };
    /// assert_eq!(error.kind(), "unauthorized");
    /// assert!(error.to_string().contains("check APIKLEY_API_KEY"));
    /// ```
    #[error("{}", api_message(*.operation, .task_id, *.code, *.kind, &redact(.msg), .retry_after))]
    Api {
        /// The call.
        operation: Operation,
        /// The task, if the call was about one.
        task_id: Option<TaskId>,
        /// The body code (or 429 for an HTTP 429).
        code: i64,
        /// What the code says.
        kind: ApiErrorKind,
        /// The service's message.
        msg: String,
        /// How long the service asked to wait (`Retry-After`), if it said.
        retry_after: Option<Duration>,
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

    /// The request failed below HTTP: no connection, a timeout, a reset.
    #[error("{operation}{}: {kind}{}{}", about_suffix(.subject), task_suffix(.task_id), reached_suffix(*.may_have_reached_server))]
    Transport {
        /// The call.
        operation: Operation,
        /// What it was about, when the operation alone does not say (a
        /// preflight's input and host: "image URL `https://…` (host
        /// `example.com`)").
        subject: Option<String>,
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
    #[error("{operation}: unexpected response (HTTP {status}){}: {}; body starts: {:?}", task_suffix(.task_id), redact(.detail), redact(.body))]
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
    #[error("task {task_id}: {} (last state: {}, {polls} polls); the task exists: check it with its id", redact(.detail), last_state.as_ref().map_or("not seen", State::as_str))]
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

    /// The creation limiter could not be asked (its file cannot be written,
    /// its database is unreachable), so the request was not sent: nothing
    /// was created. Sending without it could go over the account's limit.
    #[error("{operation}: the rate limiter failed: {}; nothing was sent", redact(&.source.to_string()))]
    Limiter {
        /// The call.
        operation: Operation,
        /// What went wrong.
        #[source]
        source: crate::limit::LimiterError,
    },

    /// The task did not end before the deadline. It may still finish: call
    /// `wait` again with the same task id.
    #[error(
        "task {task_id} did not end within {:.0} s (last state: {last_state}, {polls} polls{}); it may still finish: wait for it again", elapsed.as_secs_f64(), problem_suffix(.last_problem)
    )]
    WaitTimedOut {
        /// The task.
        task_id: TaskId,
        /// How long the wait lasted.
        elapsed: Duration,
        /// The last state seen (`not visible` when no answer named the
        /// task, `never read` when answers came but none could be read).
        last_state: State,
        /// Status requests made.
        polls: u32,
        /// Why the last look told nothing, when it did not (an answer that
        /// could not be read, an outage), as the message shows it: so a task
        /// whose every answer was unreadable is not called "not visible".
        last_problem: Option<String>,
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

    /// [`crate::Task::into_result`] on a task that has not ended yet.
    #[error("task {task_id} has not ended (state {state})")]
    NotEnded {
        /// The task.
        task_id: TaskId,
        /// Its state.
        state: State,
    },
}

impl From<InvalidTaskId> for Error {
    fn from(bad: InvalidTaskId) -> Error {
        Error::InvalidInput {
            field: Field::TaskId,
            subject: Some(bad.id),
            reason: bad.reason.to_owned(),
        }
    }
}

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
