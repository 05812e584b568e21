//! Turning what the generated client returns into data or a typed [`Error`].
//!
//! The generated client returns an HTTP 200 carrying `code: 401` as `Ok`, a body
//! that is not JSON as `InvalidResponsePayload`, and any other HTTP status as
//! `UnexpectedResponse` (the contract tests document each case). This module is
//! where all of them become one answer.

use std::time::{Duration, Instant};

use kling_api::types as api;
use kling_api::upload::types as up;
use kling_api::{Error as RawError, ResponseValue};
use serde::Deserialize;
use tracing::Span;

use crate::error::{self, Error, Operation};
use crate::retry::retry_after_header;
use crate::task::TaskId;

/// The envelope fields of a generated response type.
pub(crate) trait Envelope {
    type Data;
    fn code(&self) -> Option<i64>;
    fn message(&self) -> Option<String>;
    fn success(&self) -> Option<bool> {
        None
    }
    fn into_data(self) -> Option<Self::Data>;
}

macro_rules! envelope {
    ($($t:ty => $d:ty),* $(,)?) => {$(
        impl Envelope for $t {
            type Data = $d;
            fn code(&self) -> Option<i64> { self.code }
            fn message(&self) -> Option<String> { self.msg.clone().or_else(|| self.message.clone()) }
            fn into_data(self) -> Option<$d> { self.data }
        }
    )*};
}

envelope! {
    api::KlingAiAvatarV1ProResponse => api::KlingAiAvatarV1ProResponseData,
    api::GetTaskDetailsResponse => api::TaskRecord,
    api::GetAccountCreditsResponse => f64,
    api::GetDownloadUrlResponse => String,
}

macro_rules! upload_envelope {
    ($($t:ty),*) => {$(
        impl Envelope for $t {
            type Data = up::UploadedFile;
            fn code(&self) -> Option<i64> { self.code }
            fn message(&self) -> Option<String> { self.msg.clone().or_else(|| self.message.clone()) }
            fn success(&self) -> Option<bool> { self.success }
            fn into_data(self) -> Option<up::UploadedFile> { self.data }
        }
    )*};
}

upload_envelope!(up::UploadFileBase64Response, up::UploadFileUrlResponse);

/// The envelope read loosely from any body, for error bodies the typed parse
/// refused (an HTTP 500 carrying the envelope, a 200 whose `data` has an
/// unexpected shape).
#[derive(Deserialize)]
struct LooseEnvelope {
    code: i64,
    #[serde(alias = "message")]
    msg: Option<String>,
}

/// The detail of an [`Error::UnexpectedResponse`] for `code: 200` with
/// `data: null` (a wait confirms it with a few more looks before giving up).
pub(crate) const NO_DATA: &str = "the envelope says success but has no data";

/// Bodies of error responses are read up to this size; more is of no use.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// One request in progress: what it is, its span, when it started, and the
/// key to scrub from whatever the service sends back.
#[derive(Clone, Copy)]
pub(crate) struct Call<'a> {
    pub(crate) operation: Operation,
    pub(crate) task_id: Option<&'a TaskId>,
    pub(crate) span: &'a Span,
    pub(crate) started: Instant,
    pub(crate) secret: &'a str,
}

/// The span every request runs in. The Authorization header and the key are
/// never recorded: only these fields exist.
pub(crate) fn request_span(
    operation: Operation,
    method: &'static str,
    path: &'static str,
    task_id: Option<&TaskId>,
) -> Span {
    tracing::debug_span!(
        "kling_request",
        operation = %operation,
        method,
        path,
        task_id = task_id.map(TaskId::as_str),
        http.status = tracing::field::Empty,
        code = tracing::field::Empty,
        duration_ms = tracing::field::Empty,
    )
}

/// Records the outcome on the span and logs it.
pub(crate) fn record(
    span: &Span,
    started: Instant,
    status: Option<u16>,
    code: Option<i64>,
    outcome: &Result<(), &Error>,
) {
    if let Some(status) = status {
        span.record("http.status", status);
    }
    if let Some(code) = code {
        span.record("code", code);
    }
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    span.record("duration_ms", ms);
    let _enter = span.enter();
    match outcome {
        Ok(()) => tracing::debug!(duration_ms = ms, "request done"),
        Err(e) => tracing::debug!(duration_ms = ms, error = %e, kind = e.kind(), "request failed"),
    }
}

/// Reads the body of an unexpected response (bounded) and maps it.
pub(crate) async fn unexpected_response(
    operation: Operation,
    task_id: Option<&TaskId>,
    response: reqwest::Response,
) -> Error {
    let status = response.status().as_u16();
    let retry_after = retry_after_header(response.headers());
    let body = read_bounded(response, ERROR_BODY_LIMIT).await;
    map_error_body(operation, task_id, status, retry_after, &body)
}

/// Maps a non-success HTTP answer (or a 200 whose body did not parse).
pub(crate) fn map_error_body(
    operation: Operation,
    task_id: Option<&TaskId>,
    status: u16,
    retry_after: Option<Duration>,
    body: &[u8],
) -> Error {
    let envelope = serde_json::from_slice::<LooseEnvelope>(body).ok();
    if status == 429 {
        let msg = envelope
            .and_then(|e| e.msg)
            .unwrap_or_else(|| "HTTP 429 Too Many Requests".into());
        return Error::RateLimited {
            operation,
            task_id: task_id.cloned(),
            code: 429,
            retry_after,
            msg,
        };
    }
    if operation == Operation::CreateTask && status >= 500 {
        // Something between us and the service failed, whatever the body says:
        // the task may have been created, so this must not read as a clean
        // "not taken" (an HTTP 503 carrying code 455 would otherwise be resent).
        let detail = match &envelope {
            Some(LooseEnvelope { code, msg }) => format!(
                "HTTP {status} carrying envelope code {code}: {}",
                msg.as_deref().unwrap_or("")
            ),
            None => format!("HTTP {status} instead of the envelope"),
        };
        return Error::UnexpectedResponse {
            operation,
            task_id: task_id.cloned(),
            status,
            detail,
            body: error::body_prefix(body),
            retry_after,
        };
    }
    match envelope {
        Some(LooseEnvelope { code, msg }) if code != 200 => error::from_code(
            operation,
            task_id.cloned(),
            code,
            msg.unwrap_or_default(),
            retry_after,
        ),
        _ => Error::UnexpectedResponse {
            operation,
            task_id: task_id.cloned(),
            status,
            detail: if (200..300).contains(&status) {
                "the body is not the expected envelope".into()
            } else {
                format!("HTTP {status} instead of the envelope")
            },
            body: error::body_prefix(body),
            retry_after,
        },
    }
}

async fn read_bounded(mut response: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut body = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        body.extend_from_slice(&chunk);
        if body.len() >= limit {
            body.truncate(limit);
            break;
        }
    }
    body
}

/// The data of a successful answer, or the typed error. `Ok(None)` never
/// happens: a success without `data` is an [`Error::UnexpectedResponse`].
pub(crate) async fn settle<B: Envelope + serde::Serialize>(
    call: &Call<'_>,
    result: Result<ResponseValue<B>, RawError<()>>,
) -> Result<B::Data, Error> {
    let Call {
        operation,
        task_id,
        span,
        started,
        secret,
    } = *call;
    let (status, code, outcome) = match result {
        Ok(value) => {
            let status = value.status().as_u16();
            let retry_after = retry_after_header(value.headers());
            let body = value.into_inner();
            let code = body.code();
            (
                Some(status),
                code,
                from_body(operation, task_id, status, retry_after, body),
            )
        }
        Err(RawError::InvalidResponsePayload(bytes, parse_error)) => {
            let mut error = map_error_body(operation, task_id, 200, None, &bytes);
            if let Error::UnexpectedResponse { detail, .. } = &mut error {
                *detail = format!("the body is not the expected envelope ({parse_error})");
            }
            (Some(200), error.code(), Err(error))
        }
        Err(RawError::UnexpectedResponse(response)) => {
            let status = response.status().as_u16();
            let error = unexpected_response(operation, task_id, response).await;
            (Some(status), error.code(), Err(error))
        }
        Err(
            RawError::CommunicationError(e)
            | RawError::ResponseBodyError(e)
            | RawError::InvalidUpgrade(e),
        ) => {
            let status = e.status().map(|s| s.as_u16());
            (
                status,
                None,
                Err(error::transport(operation, task_id.cloned(), e)),
            )
        }
        Err(RawError::ErrorResponse(value)) => {
            // Not produced for these specs (build.rs keep_error_bodies); kept total.
            let status = value.status().as_u16();
            let error = map_error_body(
                operation,
                task_id,
                status,
                retry_after_header(value.headers()),
                b"",
            );
            (Some(status), None, Err(error))
        }
        Err(RawError::InvalidRequest(reason) | RawError::Custom(reason)) => (
            None,
            None,
            Err(Error::invalid(
                crate::error::Field::Config,
                None,
                format!("{operation}: {reason}"),
            )),
        ),
    };
    let outcome = outcome.map_err(|e| e.redact(secret));
    record(span, started, status, code, &outcome.as_ref().map(|_| ()));
    outcome
}

/// Like [`settle`], for a request sent with reqwest directly (the multipart
/// upload, which progenitor cannot generate). `B` is the generated type whose
/// schema the body has.
pub(crate) async fn settle_raw<B: Envelope + serde::de::DeserializeOwned + serde::Serialize>(
    call: &Call<'_>,
    result: reqwest::Result<reqwest::Response>,
) -> Result<B::Data, Error> {
    let Call {
        operation,
        task_id,
        span,
        started,
        secret,
    } = *call;
    let (status, code, outcome) = match result {
        Err(e) => (
            None,
            None,
            Err(error::transport(operation, task_id.cloned(), e)),
        ),
        Ok(response) if response.status().is_success() => {
            let status = response.status().as_u16();
            let retry_after = retry_after_header(response.headers());
            match response.bytes().await {
                Err(e) => (
                    Some(status),
                    None,
                    Err(error::transport(operation, task_id.cloned(), e)),
                ),
                Ok(bytes) => match serde_json::from_slice::<B>(&bytes) {
                    Ok(body) => {
                        let code = body.code();
                        (
                            Some(status),
                            code,
                            from_body(operation, task_id, status, retry_after, body),
                        )
                    }
                    Err(parse_error) => {
                        let mut error =
                            map_error_body(operation, task_id, status, retry_after, &bytes);
                        if let Error::UnexpectedResponse { detail, .. } = &mut error {
                            *detail =
                                format!("the body is not the expected envelope ({parse_error})");
                        }
                        (Some(status), error.code(), Err(error))
                    }
                },
            }
        }
        Ok(response) => {
            let status = response.status().as_u16();
            let error = unexpected_response(operation, task_id, response).await;
            (Some(status), error.code(), Err(error))
        }
    };
    let outcome = outcome.map_err(|e| e.redact(secret));
    record(span, started, status, code, &outcome.as_ref().map(|_| ()));
    outcome
}

fn from_body<B: Envelope + serde::Serialize>(
    operation: Operation,
    task_id: Option<&TaskId>,
    status: u16,
    retry_after: Option<Duration>,
    body: B,
) -> Result<B::Data, Error> {
    // The bytes are gone once the generated type has parsed them; the fields it
    // knows, encoded again, are what is left to show of a body that was JSON but
    // not the envelope.
    let shown = |body: &B| error::body_prefix(&serde_json::to_vec(body).unwrap_or_default());
    let unexpected = |detail: &str, body: String| Error::UnexpectedResponse {
        operation,
        task_id: task_id.cloned(),
        status,
        detail: detail.to_owned(),
        body,
        retry_after: None,
    };
    let msg = body.message().unwrap_or_default();
    match body.code() {
        None => Err(unexpected("the envelope has no code", shown(&body))),
        Some(200) => {
            if body.success() == Some(false) {
                return Err(Error::Rejected {
                    operation,
                    task_id: task_id.cloned(),
                    code: 200,
                    msg,
                });
            }
            let text = shown(&body);
            body.into_data().ok_or_else(|| unexpected(NO_DATA, text))
        }
        Some(code) => Err(error::from_code(
            operation,
            task_id.cloned(),
            code,
            msg,
            retry_after,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_429_is_rate_limited_with_its_retry_after() {
        let error = map_error_body(
            Operation::CreateTask,
            None,
            429,
            Some(Duration::from_secs(4)),
            b"<html>slow</html>",
        );
        assert_eq!(error.kind(), "rate_limited");
        assert_eq!(error.retry_after(), Some(Duration::from_secs(4)));
    }

    #[test]
    fn an_error_status_carrying_the_envelope_maps_its_code() {
        let error = map_error_body(
            Operation::GetTask,
            None,
            503,
            None,
            br#"{"code":455,"msg":"maintenance"}"#,
        );
        assert_eq!(error.kind(), "maintenance");
        let error = map_error_body(
            Operation::GetTask,
            None,
            500,
            None,
            br#"{"code":500,"message":"boom"}"#,
        );
        assert_eq!(
            error.to_string(),
            "recordInfo: server error (code 500): boom"
        );
    }

    #[test]
    fn html_keeps_status_and_body() {
        let error = map_error_body(
            Operation::Credits,
            None,
            520,
            None,
            b"<!DOCTYPE html><p>cloudflare</p>",
        );
        match error {
            Error::UnexpectedResponse { status, body, .. } => {
                assert_eq!(status, 520);
                assert_eq!(body, "<!DOCTYPE html><p>cloudflare</p>");
            }
            other => panic!("{other:?}"),
        }
    }
}
