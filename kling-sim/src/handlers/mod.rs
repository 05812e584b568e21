//! The endpoints, answering as the service does (`docs/service-notes.md`): errors as HTTP 200
//! with the status in the body's `code`, fields null until a task ends,
//! `resultJson` a JSON-encoded string. Responses are built here from those
//! facts, not from `kling-api`'s generated types, so that a mistake in one is
//! caught by the other.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::shared::{ConnControl, Shared};

mod files;
mod gate;
mod jobs;
mod upload;

use files::*;
use gate::*;
use jobs::*;
use upload::*;

/// The result video every successful task produces: a real, 1 s, 96×120 H.264
/// MP4 with AAC audio (7.5 KB), made for this project with ffmpeg.
pub const RESULT_VIDEO: &[u8] = include_bytes!("../../assets/result.mp4");

type Ctx = State<Arc<Shared>>;
type Conn = Extension<Arc<ConnControl>>;

/// The largest JSON body accepted by createTask, download-url and the URL
/// upload (a createTask body is a few KiB; prompts are at most 5,000 chars).
pub const JSON_BODY_LIMIT: usize = 1024 * 1024;

/// Room for what a multipart or base64 body carries besides the file.
const BODY_OVERHEAD: usize = 1024 * 1024;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    use axum::extract::DefaultBodyLimit;
    let max = usize::try_from(shared.config.max_upload_bytes).unwrap_or(usize::MAX);
    // axum's default (2 MiB) would refuse an ordinary voice clip: each route
    // takes what the service takes, and says "too large" in its envelope.
    let stream_limit = max.saturating_add(BODY_OVERHEAD);
    let base64_limit = (max / 3).saturating_mul(4).saturating_add(BODY_OVERHEAD);
    Router::new()
        .route(
            "/api/v1/jobs/createTask",
            post(create_task).layer(DefaultBodyLimit::max(JSON_BODY_LIMIT)),
        )
        .route("/api/v1/jobs/recordInfo", get(record_info))
        .route("/api/v1/chat/credit", get(credit))
        .route(
            "/api/v1/common/download-url",
            post(download_url).layer(DefaultBodyLimit::max(JSON_BODY_LIMIT)),
        )
        .route(
            "/file-upload/api/file-stream-upload",
            post(upload_stream).layer(DefaultBodyLimit::max(stream_limit)),
        )
        .route(
            "/file-upload/api/file-base64-upload",
            post(upload_base64).layer(DefaultBodyLimit::max(base64_limit)),
        )
        .route(
            "/file-upload/api/file-url-upload",
            post(upload_url).layer(DefaultBodyLimit::max(JSON_BODY_LIMIT)),
        )
        .route("/file-upload/files/{*path}", get(uploaded_file))
        .route("/results/{file}", get(result_video))
        .route("/_sim/stats", get(stats))
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            http_error_status,
        ))
        .layer(axum::middleware::from_fn(log_request))
        .with_state(shared)
}

/// The envelope codes each route's documentation also declares as the HTTP
/// status (`httpErrorStatus`).
const DOCUMENTED_STATUSES: &[(&str, &[i64])] = &[
    ("/api/v1/jobs/recordInfo", &[400, 401, 404, 429]),
    ("/file-upload/api/file-stream-upload", &[400, 401]),
    ("/file-upload/api/file-base64-upload", &[400, 401]),
    ("/file-upload/api/file-url-upload", &[400, 401]),
];

/// With `httpErrorStatus`, an HTTP 200 envelope whose `code` the route
/// documents as an HTTP status goes out with that status, body unchanged.
async fn http_error_status(
    State(shared): State<Arc<Shared>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let codes = DOCUMENTED_STATUSES
        .iter()
        .find(|(path, _)| *path == request.uri().path())
        .map(|(_, codes)| *codes);
    let response = next.run(request).await;
    let Some(codes) = codes.filter(|_| shared.config.http_error_status) else {
        return response;
    };
    if response.status() != StatusCode::OK {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    // Envelopes are small; a body too large to be one is passed on unread.
    let Ok(bytes) = axum::body::to_bytes(body, JSON_BODY_LIMIT).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let code = serde_json::from_slice::<Value>(&bytes)
        .ok()
        .and_then(|v| v.get("code").and_then(Value::as_i64));
    if let Some(code) = code.filter(|c| codes.contains(c)) {
        parts.status = StatusCode::from_u16(code as u16).unwrap_or(StatusCode::OK);
    }
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// One log line per request (`kling sim -v`, or `RUST_LOG=kling_sim=info`):
/// method, path, status and time. Queries are left out: a task id is in the
/// path's query, but so could be a presigned URL's signature.
async fn log_request(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    tracing::info!(
        %method,
        path,
        status = response.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
        "request"
    );
    response
}

// ---------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------

fn envelope(code: i64, msg: &str, data: Value, alias: bool) -> Response {
    let key = if alias { "message" } else { "msg" };
    let mut body = serde_json::Map::new();
    body.insert("code".into(), json!(code));
    body.insert(key.into(), json!(msg));
    body.insert("data".into(), data);
    axum::Json(Value::Object(body)).into_response()
}

fn upload_envelope(code: i64, msg: &str, data: Option<Value>, alias: bool) -> Response {
    let key = if alias { "message" } else { "msg" };
    let mut body = serde_json::Map::new();
    body.insert("success".into(), json!(code == 200));
    body.insert("code".into(), json!(code));
    body.insert(key.into(), json!(msg));
    if let Some(data) = data {
        body.insert("data".into(), data);
    }
    axum::Json(Value::Object(body)).into_response()
}

fn str_field<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

fn is_http_url(text: &str) -> bool {
    url::Url::parse(text)
        .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
}

/// A JSON body over [`JSON_BODY_LIMIT`], answered in the envelope.
fn body_too_large(alias: bool) -> Response {
    envelope(
        413,
        &format!("The request body is larger than {JSON_BODY_LIMIT} bytes"),
        Value::Null,
        alias,
    )
}

/// Whether a rejected body was too large (anything else: read as empty).
fn over_limit(body: &Result<Bytes, BytesRejection>) -> bool {
    matches!(body, Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE)
}
