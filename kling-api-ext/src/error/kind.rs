//! What an error is about: the input, the transport failure, the service's
//! code.

use std::fmt;

#[cfg(doc)]
use super::Error;

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
    /// The createTask `input` as a whole, or one of its other fields (the
    /// error's subject names it).
    Input,
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
            Field::Input => "input field",
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

/// What an envelope `code` (other than 200) says, as [`Error::Api`] carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ApiErrorKind {
    /// The API key is missing, wrong or revoked (code 401).
    Unauthorized,
    /// The account has too few credits (code 402). Nothing was created.
    InsufficientCredits,
    /// The task (or resource) does not exist: code 404, or code 422 with
    /// `recordInfo is null`. Right after createTask this can mean "not visible
    /// yet".
    NotFound,
    /// The service's validation rejected the request (codes 400, 405, 413,
    /// 422, or, except for createTask, 500 with a validation message such as
    /// `This field is required`). A createTask answered with a 5xx-class code
    /// is never this, whatever its message: the task may exist
    /// ([`Error::SubmitOutcomeUnknown`]).
    Rejected,
    /// Too many requests: code 429 (or HTTP 429). Worth trying again after
    /// `retry_after` (or the rest of the rate-limit window).
    RateLimited,
    /// A usage cap of the key was reached (code 433: a sub-key's hourly or
    /// daily limit). Not retried: the cap lasts far longer than any retry
    /// budget. Nothing was created.
    UsageLimited,
    /// The service is under maintenance (code 455).
    Maintenance,
    /// The service failed (code 500 that is not a validation message).
    ServerError,
    /// The feature is disabled (code 505).
    FeatureDisabled,
    /// A code this SDK does not know.
    Unknown,
}

impl ApiErrorKind {
    /// The stable name [`Error::kind`] gives it: `unauthorized`, `not_found`,
    /// ..., `unknown_code`.
    pub fn as_str(self) -> &'static str {
        match self {
            ApiErrorKind::Unauthorized => "unauthorized",
            ApiErrorKind::InsufficientCredits => "insufficient_credits",
            ApiErrorKind::NotFound => "not_found",
            ApiErrorKind::Rejected => "rejected",
            ApiErrorKind::RateLimited => "rate_limited",
            ApiErrorKind::UsageLimited => "usage_limited",
            ApiErrorKind::Maintenance => "maintenance",
            ApiErrorKind::ServerError => "server_error",
            ApiErrorKind::FeatureDisabled => "feature_disabled",
            ApiErrorKind::Unknown => "unknown_code",
        }
    }
}

impl fmt::Display for ApiErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
