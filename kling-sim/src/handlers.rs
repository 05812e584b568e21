//! The endpoints, answering as the service does (`docs/service-notes.md`): errors as HTTP 200
//! with the status in the body's `code`, fields null until a task ends,
//! `resultJson` a JSON-encoded string. Responses are built here from those
//! facts, not from `kling-api`'s generated types, so that a mistake in one is
//! caught by the other.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, Multipart, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine as _;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::config::{EndpointFaults, RateLimitMode};
use crate::server::{ConnControl, Shared};
use crate::state::{Outcome, Task, Upload, now_ms};

/// The result video every successful task produces: a real, 1 s, 96×120 H.264
/// MP4 with AAC audio (7.5 KB), made for this project with ffmpeg.
pub const RESULT_VIDEO: &[u8] = include_bytes!("../assets/result.mp4");

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
        .layer(axum::middleware::from_fn(log_request))
        .with_state(shared)
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

/// The fault drawn for one request (at most one of those that stop it).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    None,
    ResetBefore,
    ResetAfter,
    SlowAfter,
    Html502,
    Html520,
    Envelope500,
    Envelope455,
    RateLimited,
    Truncate,
}

/// Draws one fault for `endpoint`, and separately whether `msg` becomes `message`.
fn draw(shared: &Shared, endpoint: &str, faults: &EndpointFaults) -> (Fault, bool) {
    let (roll, alias_roll) = {
        let mut rng = shared.fault_rng.lock().unwrap_or_else(|p| p.into_inner());
        (rng.f64(), rng.f64())
    };
    let table = [
        (faults.reset_before, Fault::ResetBefore, "resetBefore"),
        (faults.reset_after, Fault::ResetAfter, "resetAfter"),
        (faults.slow_after, Fault::SlowAfter, "slowAfter"),
        (faults.html502, Fault::Html502, "html502"),
        (faults.html520, Fault::Html520, "html520"),
        (faults.envelope500, Fault::Envelope500, "envelope500"),
        (faults.envelope455, Fault::Envelope455, "envelope455"),
        (faults.rate_limited, Fault::RateLimited, "rateLimited"),
        (faults.truncate, Fault::Truncate, "truncate"),
    ];
    let mut cumulative = 0.0;
    let mut fault = Fault::None;
    for (p, kind, name) in table {
        cumulative += p;
        if roll < cumulative {
            fault = kind;
            shared
                .lock()
                .faults
                .entry(format!("{endpoint}.{name}"))
                .and_modify(|n| *n += 1)
                .or_insert(1);
            break;
        }
    }
    let alias = alias_roll < faults.message_alias;
    if alias {
        *shared
            .lock()
            .faults
            .entry(format!("{endpoint}.messageAlias"))
            .or_default() += 1;
    }
    (fault, alias)
}

const CLOUDFLARE_PAGE: &str = "<!DOCTYPE html>\n<html lang=\"en-US\"><head><title>api.apikley.ru | {STATUS}: {TEXT}</title></head>\
<body><div id=\"cf-error-details\"><h1>{TEXT}</h1><span>Error code {STATUS}</span>\
<p>Visit <a href=\"https://www.cloudflare.com/\">cloudflare.com</a> for more information.</p></div></body></html>\n";

fn html_error(status: u16) -> Response {
    let text = if status == 520 {
        "Web server is returning an unknown error"
    } else {
        "Bad gateway"
    };
    let page = CLOUDFLARE_PAGE
        .replace("{STATUS}", &status.to_string())
        .replace("{TEXT}", text);
    let mut response = (
        StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY),
        page,
    )
        .into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=UTF-8"),
    );
    response
        .headers_mut()
        .insert("server", HeaderValue::from_static("cloudflare"));
    response
}

/// A response that never comes: the connection is reset.
async fn reset(conn: &ConnControl) -> Response {
    conn.reset();
    std::future::pending::<()>().await;
    unreachable!("the connection was dropped")
}

// ---------------------------------------------------------------------------
// Envelopes and checks
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

/// The proxy refuses requests without a User-Agent (`docs/service-notes.md` §1).
fn user_agent_refused(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let missing = headers
        .get(header::USER_AGENT)
        .is_none_or(|v| v.as_bytes().is_empty());
    (shared.config.require_user_agent && missing).then(|| {
        let mut response = (StatusCode::FORBIDDEN, "error code: 1010").into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=UTF-8"),
        );
        response
    })
}

/// The API key, if it is one of the configured ones.
fn authorized(shared: &Shared, headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let key = value.strip_prefix("Bearer ")?.trim();
    shared
        .config
        .api_keys
        .iter()
        .any(|k| k == key)
        .then(|| key.to_owned())
}

/// Pre-work faults shared by the API endpoints. `Some` answers the request.
async fn stopping_fault(
    shared: &Shared,
    conn: &ConnControl,
    fault: Fault,
    alias: bool,
) -> Option<Response> {
    match fault {
        Fault::ResetBefore => Some(reset(conn).await),
        Fault::Html502 => Some(html_error(502)),
        Fault::Html520 => Some(html_error(520)),
        Fault::Envelope500 => Some(envelope(
            500,
            "Server exception, please try again later",
            Value::Null,
            alias,
        )),
        Fault::Envelope455 => Some(envelope(
            455,
            "The system is under maintenance, please try again later",
            Value::Null,
            alias,
        )),
        Fault::RateLimited => Some(rate_limited(
            shared,
            Duration::from_secs(1),
            shared.faults().retry_after_on_fault,
            alias,
        )),
        _ => None,
    }
}

/// A request the gate let through: the caller's key, whether `msg` is
/// written `message`, and the fault left for after the work.
struct Admitted {
    key: String,
    alias: bool,
    fault: Fault,
}

/// Which family of routes a request is on: they refuse a wrong key in their
/// own words.
#[derive(Clone, Copy)]
enum Api {
    /// `/api/v1/...`: the job API's envelope.
    Jobs,
    /// The upload API: its envelope with `success`.
    Upload,
}

/// The opening every API route shares, in the order the service's layers
/// answer: the request is counted and its fault drawn; what a proxy in front
/// does (a reset, an HTML 5xx page) comes first; then a missing User-Agent and
/// a wrong key are refused; then the origin's own faults (envelope 500/455,
/// 429). `Err` answers the request.
async fn gate(
    shared: &Shared,
    conn: &ConnControl,
    headers: &HeaderMap,
    endpoint: &str,
    faults: &EndpointFaults,
    api: Api,
) -> Result<Admitted, Response> {
    shared.lock().count(endpoint);
    let (fault, alias) = draw(shared, endpoint, faults);
    if matches!(fault, Fault::ResetBefore | Fault::Html502 | Fault::Html520) {
        return Err(stopping_fault(shared, conn, fault, alias)
            .await
            .expect("a stopping fault"));
    }
    if let Some(refused) = user_agent_refused(shared, headers) {
        return Err(refused);
    }
    let Some(key) = authorized(shared, headers) else {
        return Err(match api {
            Api::Jobs => envelope(
                401,
                "You do not have access permissions",
                Value::Null,
                alias,
            ),
            Api::Upload => {
                upload_envelope(401, "Authentication failed: Invalid API Key", None, alias)
            }
        });
    };
    if let Some(answer) = stopping_fault(shared, conn, fault, alias).await {
        return Err(answer);
    }
    Ok(Admitted { key, alias, fault })
}

fn rate_limited(shared: &Shared, wait: Duration, with_header: bool, alias: bool) -> Response {
    shared.lock().rate_limited += 1;
    let mut response = envelope(429, "Rate limit exceeded", Value::Null, alias);
    if shared.config.rate_limit.mode == RateLimitMode::Http429 {
        *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
    }
    if with_header {
        let secs = wait.as_secs_f64().ceil().max(1.0) as u64;
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

// ---------------------------------------------------------------------------
// createTask
// ---------------------------------------------------------------------------

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

async fn create_task(
    State(shared): Ctx,
    Extension(conn): Conn,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if over_limit(&body) {
        shared.lock().count("createTask");
        return body_too_large(false);
    }
    let body = body.unwrap_or_default();
    let faults = shared.faults().create_task;
    let Admitted { key, alias, fault } =
        match gate(&shared, &conn, &headers, "createTask", &faults, Api::Jobs).await {
            Ok(admitted) => admitted,
            Err(answer) => return answer,
        };
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return envelope(
            422,
            "The request body is not valid JSON",
            Value::Null,
            alias,
        );
    };
    let model = str_field(&request, "model").unwrap_or_default().to_owned();
    let Some(price) = shared.config.models.get(&model).copied() else {
        return envelope(
            422,
            "The model name you specified is not supported. Please verify your input and use one of the supported models provided by KIE.",
            Value::Null,
            alias,
        );
    };
    let Some(input) = request.get("input").filter(|i| i.is_object()) else {
        return envelope(500, "This field is required", Value::Null, alias);
    };
    let (Some(image), Some(audio), Some(prompt)) = (
        str_field(input, "image_url"),
        str_field(input, "audio_url"),
        str_field(input, "prompt"),
    ) else {
        return envelope(500, "This field is required", Value::Null, alias);
    };
    if prompt.chars().count() > 5000 {
        return envelope(
            422,
            "prompt must be at most 5000 characters",
            Value::Null,
            alias,
        );
    }
    for (name, url) in [("image_url", image), ("audio_url", audio)] {
        if !is_http_url(url) {
            return envelope(
                422,
                &format!("{name} is not a valid URL"),
                Value::Null,
                alias,
            );
        }
    }
    let callback_url = str_field(&request, "callBackUrl").map(str::to_owned);
    if callback_url.as_deref().is_some_and(|u| !is_http_url(u)) {
        return envelope(422, "callBackUrl is not a valid URL", Value::Null, alias);
    }

    let now = Instant::now();
    let config = &shared.config;
    let audio_seconds = uploaded_audio_seconds(&shared, audio);
    let video_seconds = audio_seconds.unwrap_or(config.default_video_seconds);
    let task = {
        let mut state = shared.lock();
        let window = Duration::from_millis(config.rate_limit.window_ms);
        if let Err(wait) = state.admit(&key, config.rate_limit.max, window, now) {
            drop(state);
            let header =
                config.rate_limit.mode == RateLimitMode::Http429 && config.rate_limit.retry_after;
            return rate_limited(&shared, wait, header, alias);
        }
        let (waiting_end, queuing_end, end, outcome) =
            state.schedule(&config.lifecycle, video_seconds, audio_seconds);
        let cost = match outcome {
            Outcome::Success { video_seconds } => (video_seconds.ceil() * price).max(0.0),
            Outcome::Fail { .. } => 0.0,
        };
        let balance = state.credits.entry(key.clone()).or_insert(0.0);
        if *balance < video_seconds.ceil() * price {
            drop(state);
            return envelope(402, "Insufficient credits", Value::Null, alias);
        }
        // Charged when created, for tasks that will succeed: failed tasks are
        // free (creditsConsumed 0).
        *balance -= cost;
        let faults = shared.faults();
        let rng = &mut state.lifecycle_rng;
        let null_until =
            (rng.f64() < faults.null_record).then(|| Duration::from_millis(faults.null_record_ms));
        let unknown_until = (rng.f64() < faults.unknown_state)
            .then(|| Duration::from_millis(faults.unknown_state_ms));
        let fail_code_int = rng.f64() < faults.fail_code_int;
        let id = state.new_id();
        let input_key = format!(
            "{model} {}",
            serde_json::to_string(input).unwrap_or_default()
        );
        let task = Task {
            id: id.clone(),
            owner: key.clone(),
            model: model.clone(),
            param: request.to_string(),
            callback_url,
            created: now,
            created_ms: now_ms(),
            waiting_end,
            queuing_end,
            end,
            outcome,
            credits: cost,
            null_until,
            unknown_until,
            fail_code_int,
            polls: 0,
            first_seen_ended: None,
        };
        *state.tasks_per_input.entry(input_key).or_default() += 1;
        state.order.push(id.clone());
        state.tasks.insert(id, task.clone());
        task
    };
    tracing::debug!(task_id = %task.id, "task created");
    if task.callback_url.is_some() {
        tokio::spawn(crate::callback::deliver(shared.clone(), task.clone()));
    }
    match fault {
        Fault::ResetAfter => reset(&conn).await,
        Fault::SlowAfter => {
            tokio::time::sleep(Duration::from_millis(shared.faults().slow_ms)).await;
            envelope(
                200,
                "success",
                json!({"taskId": task.id, "recordId": task.id}),
                alias,
            )
        }
        _ => envelope(
            200,
            "success",
            json!({"taskId": task.id, "recordId": task.id}),
            alias,
        ),
    }
}

/// The duration of an audio file the simulator stored itself, read from its
/// WAV header (other formats fall back to the configured default).
fn uploaded_audio_seconds(shared: &Shared, url: &str) -> Option<f64> {
    let prefix = format!("{}/file-upload/files/", shared.base_url);
    let path = url.strip_prefix(&prefix)?;
    let state = shared.lock();
    let bytes = &state.uploads.get(path)?.bytes;
    wav_seconds(bytes)
}

fn wav_seconds(bytes: &[u8]) -> Option<f64> {
    if bytes.len() < 44 || &bytes[0..4] != b"RIFF" || &bytes[8..12] != b"WAVE" {
        return None;
    }
    let mut pos = 12;
    let mut byte_rate = None;
    while pos + 8 <= bytes.len() {
        let id = &bytes[pos..pos + 4];
        let size = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().ok()?) as usize;
        if id == b"fmt " && pos + 20 <= bytes.len() {
            byte_rate = Some(u32::from_le_bytes(
                bytes[pos + 16..pos + 20].try_into().ok()?,
            ));
        }
        if id == b"data" {
            let rate = byte_rate.filter(|r| *r > 0)?;
            return Some(size as f64 / f64::from(rate));
        }
        pos += 8 + size + (size % 2);
    }
    None
}

// ---------------------------------------------------------------------------
// recordInfo, credit, download-url
// ---------------------------------------------------------------------------

#[derive(serde::Deserialize)]
struct TaskQuery {
    #[serde(rename = "taskId")]
    task_id: Option<String>,
}

async fn record_info(
    State(shared): Ctx,
    Extension(conn): Conn,
    headers: HeaderMap,
    Query(query): Query<TaskQuery>,
) -> Response {
    let faults = shared.faults().record_info;
    let Admitted { key, alias, fault } =
        match gate(&shared, &conn, &headers, "recordInfo", &faults, Api::Jobs).await {
            Ok(admitted) => admitted,
            Err(answer) => return answer,
        };
    let Some(task_id) = query.task_id.filter(|t| !t.is_empty()) else {
        return envelope(400, "taskId parameter is required", Value::Null, alias);
    };
    let now = Instant::now();
    let data = {
        let mut state = shared.lock();
        let Some(task) = state.tasks.get_mut(&task_id).filter(|t| t.owner == key) else {
            drop(state);
            return envelope(422, "recordInfo is null", Value::Null, alias);
        };
        let age = now.saturating_duration_since(task.created);
        if task.null_until.is_some_and(|until| age < until) {
            drop(state);
            return envelope(422, "recordInfo is null", Value::Null, alias);
        }
        task.polls += 1;
        let ended = task.ended(now);
        let state_override = (!ended && task.unknown_until.is_some_and(|until| age < until))
            .then_some("pending_review");
        (task.record(now, &shared.base_url, state_override), ended)
    };
    let (data, ended) = data;
    if fault == Fault::SlowAfter {
        tokio::time::sleep(Duration::from_millis(shared.faults().slow_ms)).await;
    }
    if fault == Fault::ResetAfter {
        return reset(&conn).await;
    }
    if ended {
        // Seen when the answer leaves, not when it was made: a slow answer
        // counts its delay, a reset one does not count at all.
        let mut state = shared.lock();
        if let Some(task) = state.tasks.get_mut(&task_id)
            && task.first_seen_ended.is_none()
        {
            task.first_seen_ended = Some(Instant::now());
        }
    }
    envelope(200, "success", data, alias)
}

async fn credit(State(shared): Ctx, Extension(conn): Conn, headers: HeaderMap) -> Response {
    let faults = shared.faults().common;
    let Admitted { key, alias, fault } =
        match gate(&shared, &conn, &headers, "credit", &faults, Api::Jobs).await {
            Ok(admitted) => admitted,
            Err(answer) => return answer,
        };
    let balance = shared.lock().credits.get(&key).copied().unwrap_or(0.0);
    after_work(
        &shared,
        &conn,
        fault,
        envelope(200, "success", json!(balance), alias),
    )
    .await
}

async fn download_url(
    State(shared): Ctx,
    Extension(conn): Conn,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if over_limit(&body) {
        shared.lock().count("downloadUrl");
        return body_too_large(false);
    }
    let body = body.unwrap_or_default();
    let faults = shared.faults().common;
    let Admitted { alias, fault, .. } =
        match gate(&shared, &conn, &headers, "downloadUrl", &faults, Api::Jobs).await {
            Ok(admitted) => admitted,
            Err(answer) => return answer,
        };
    let url = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| str_field(&v, "url").map(str::to_owned));
    let answer = match url {
        Some(url) if url.starts_with(&format!("{}/", shared.base_url)) && !url.contains('?') => {
            let expires = now_ms() / 1000 + 20 * 60;
            envelope(
                200,
                "success",
                json!(format!("{url}?expires={expires}")),
                alias,
            )
        }
        _ => envelope(422, "url is wrong", Value::Null, alias),
    };
    after_work(&shared, &conn, fault, answer).await
}

// ---------------------------------------------------------------------------
// Uploads
// ---------------------------------------------------------------------------

/// [`gate`] for the three uploads.
async fn upload_gate(
    shared: &Shared,
    conn: &ConnControl,
    headers: &HeaderMap,
    endpoint: &str,
) -> Result<(bool, Fault), Response> {
    let faults = shared.faults().upload;
    let admitted = gate(shared, conn, headers, endpoint, &faults, Api::Upload).await?;
    Ok((admitted.alias, admitted.fault))
}

/// Post-work faults: the work is done (a file stored), then the answer comes
/// `slowMs` late, or never (the connection is cut).
async fn after_work(
    shared: &Shared,
    conn: &ConnControl,
    fault: Fault,
    answer: Response,
) -> Response {
    match fault {
        Fault::SlowAfter => {
            tokio::time::sleep(Duration::from_millis(shared.faults().slow_ms)).await;
            answer
        }
        Fault::ResetAfter => reset(conn).await,
        _ => answer,
    }
}

fn clean_upload_path(path: &str) -> Option<String> {
    let path = path.trim();
    let ok = !path.is_empty()
        && !path.starts_with('/')
        && !path.ends_with('/')
        && path
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..")
        && path
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
    ok.then(|| path.to_owned())
}

fn clean_file_name(name: Option<&str>, mime: &str) -> String {
    let name = name.map(str::trim).unwrap_or_default();
    let safe = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && !name.starts_with('.');
    if safe {
        name.to_owned()
    } else {
        let ext = mime
            .rsplit('/')
            .next()
            .unwrap_or("bin")
            .replace("mpeg", "mp3")
            .replace("jpeg", "jpg");
        format!("{}-{:08x}.{ext}", now_ms(), fastrand::u32(..))
    }
}

/// Stores an upload and answers as the service does.
fn store(
    shared: &Shared,
    upload_path: &str,
    file_name: String,
    upload: Upload,
    alias: bool,
) -> Response {
    let size = upload.bytes.len();
    let mime = upload.mime.clone();
    let stored = format!("kieai/1/{upload_path}/{file_name}");
    let download_url = format!("{}/file-upload/files/{stored}", shared.base_url);
    shared.lock().uploads.insert(stored.clone(), upload);
    upload_envelope(
        200,
        "File uploaded successfully",
        Some(json!({
            "success": true,
            "fileName": file_name,
            "filePath": stored,
            "downloadUrl": download_url,
            "fileSize": size,
            "mimeType": mime,
            "uploadedAt": iso8601(now_ms()),
        })),
        alias,
    )
}

/// `2026-04-16T07:19:12.309Z` from Unix milliseconds, as the service writes
/// `uploadedAt` (RFC 3339 with milliseconds, UTC).
fn iso8601(ms: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(at).to_string()
}

fn too_large(shared: &Shared, alias: bool) -> Response {
    upload_envelope(
        400,
        &format!(
            "File size exceeds the limit of {} bytes",
            shared.config.max_upload_bytes
        ),
        None,
        alias,
    )
}

fn malformed(error: &dyn std::fmt::Display, alias: bool) -> Response {
    upload_envelope(
        400,
        &format!("Malformed multipart body: {error}"),
        None,
        alias,
    )
}

async fn upload_stream(
    State(shared): Ctx,
    Extension(conn): Conn,
    headers: HeaderMap,
    multipart: Result<Multipart, axum::extract::multipart::MultipartRejection>,
) -> Response {
    let (alias, fault) = match upload_gate(&shared, &conn, &headers, "uploadStream").await {
        Ok(gate) => gate,
        Err(answer) => return answer,
    };
    let answer = async {
        let Ok(mut multipart) = multipart else {
            return upload_envelope(400, "Missing required parameter: file", None, alias);
        };
        let (mut upload_path, mut file_name, mut file) = (None, None, None);
        loop {
            let field = match multipart.next_field().await {
                Ok(Some(field)) => field,
                Ok(None) => break,
                Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                    return too_large(&shared, alias);
                }
                Err(e) => return malformed(&e, alias),
            };
            match field.name().unwrap_or_default() {
                "uploadPath" => upload_path = field.text().await.ok(),
                "fileName" => file_name = field.text().await.ok(),
                "file" => {
                    let mime = field
                        .content_type()
                        .unwrap_or("application/octet-stream")
                        .to_owned();
                    let mut field = field;
                    let mut bytes = Vec::new();
                    loop {
                        match field.chunk().await {
                            Ok(Some(chunk)) => {
                                if (bytes.len() + chunk.len()) as u64
                                    > shared.config.max_upload_bytes
                                {
                                    return too_large(&shared, alias);
                                }
                                bytes.extend_from_slice(&chunk);
                            }
                            Ok(None) => break,
                            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                                return too_large(&shared, alias);
                            }
                            Err(e) => return malformed(&e, alias),
                        }
                    }
                    file = Some(Upload {
                        bytes: bytes.into(),
                        mime,
                        source_url: None,
                    });
                }
                _ => {}
            }
        }
        let Some(file) = file else {
            return upload_envelope(400, "Missing required parameter: file", None, alias);
        };
        let Some(upload_path) = upload_path.as_deref().and_then(clean_upload_path) else {
            return upload_envelope(400, "Missing required parameter: uploadPath", None, alias);
        };
        let name = clean_file_name(file_name.as_deref(), &file.mime);
        store(&shared, &upload_path, name, file, alias)
    }
    .await;
    after_work(&shared, &conn, fault, answer).await
}

async fn upload_base64(
    State(shared): Ctx,
    Extension(conn): Conn,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if over_limit(&body) {
        shared.lock().count("uploadBase64");
        return too_large(&shared, false);
    }
    let body = body.unwrap_or_default();
    let (alias, fault) = match upload_gate(&shared, &conn, &headers, "uploadBase64").await {
        Ok(gate) => gate,
        Err(answer) => return answer,
    };
    let answer = async {
        let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let Some(data) = str_field(&request, "base64Data") else {
            return upload_envelope(400, "Missing required parameter: base64Data", None, alias);
        };
        let Some(upload_path) = str_field(&request, "uploadPath").and_then(clean_upload_path)
        else {
            return upload_envelope(400, "Missing required parameter: uploadPath", None, alias);
        };
        let (mime, encoded) = match data
            .strip_prefix("data:")
            .and_then(|rest| rest.split_once(";base64,"))
        {
            Some((mime, encoded)) => (mime.to_owned(), encoded),
            None => ("application/octet-stream".to_owned(), data),
        };
        let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
            return upload_envelope(
                400,
                "Base64 decoding failed: Invalid Base64 format",
                None,
                alias,
            );
        };
        if bytes.len() as u64 > shared.config.max_upload_bytes {
            return too_large(&shared, alias);
        }
        let name = clean_file_name(str_field(&request, "fileName"), &mime);
        store(
            &shared,
            &upload_path,
            name,
            Upload {
                bytes: bytes.into(),
                mime,
                source_url: None,
            },
            alias,
        )
    }
    .await;
    after_work(&shared, &conn, fault, answer).await
}

/// Whether `url` names this machine (an IP loopback address or `localhost`):
/// the simulator fetches and calls back only such URLs unless told otherwise.
pub(crate) fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

async fn upload_url(
    State(shared): Ctx,
    Extension(conn): Conn,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if over_limit(&body) {
        shared.lock().count("uploadUrl");
        return upload_envelope(
            400,
            &format!("The request body is larger than {JSON_BODY_LIMIT} bytes"),
            None,
            false,
        );
    }
    let body = body.unwrap_or_default();
    let (alias, fault) = match upload_gate(&shared, &conn, &headers, "uploadUrl").await {
        Ok(gate) => gate,
        Err(answer) => return answer,
    };
    let answer = async {
        let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let Some(file_url) = str_field(&request, "fileUrl")
            .and_then(|u| url::Url::parse(u).ok())
            .filter(|u| matches!(u.scheme(), "http" | "https"))
        else {
            return upload_envelope(400, "Missing required parameter: fileUrl", None, alias);
        };
        let Some(upload_path) = str_field(&request, "uploadPath").and_then(clean_upload_path)
        else {
            return upload_envelope(400, "Missing required parameter: uploadPath", None, alias);
        };
        // Loopback URLs are fetched (tests serve files there); anything else is
        // recorded and never fetched: the simulator makes no outside requests.
        let upload = if is_loopback(&file_url) {
            match shared.http.get(file_url.clone()).send().await {
                Ok(response) if response.status().is_success() => {
                    let mime = response
                        .headers()
                        .get(header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("application/octet-stream")
                        .to_owned();
                    match response.bytes().await {
                        Ok(bytes) if bytes.len() as u64 <= shared.config.max_upload_bytes => {
                            Upload {
                                bytes,
                                mime,
                                source_url: None,
                            }
                        }
                        Ok(_) => return too_large(&shared, alias),
                        Err(e) => {
                            return upload_envelope(
                                500,
                                &format!("Failed to download file: {e}"),
                                None,
                                alias,
                            );
                        }
                    }
                }
                Ok(response) => {
                    return upload_envelope(
                        400,
                        &format!("Failed to download file: HTTP {}", response.status()),
                        None,
                        alias,
                    );
                }
                Err(e) => {
                    return upload_envelope(
                        400,
                        &format!("Failed to download file: {e}"),
                        None,
                        alias,
                    );
                }
            }
        } else {
            Upload {
                bytes: Bytes::new(),
                mime: "application/octet-stream".into(),
                source_url: Some(file_url.to_string()),
            }
        };
        let suggested = str_field(&request, "fileName")
            .map(str::to_owned)
            .or_else(|| {
                file_url
                    .path_segments()
                    .and_then(|mut s| s.next_back().map(str::to_owned))
            });
        let name = clean_file_name(suggested.as_deref(), &upload.mime);
        store(&shared, &upload_path, name, upload, alias)
    }
    .await;
    after_work(&shared, &conn, fault, answer).await
}

// ---------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------

/// Serves bytes with Content-Type and Content-Length, single `Range` requests
/// (206), and the truncation fault (fewer bytes than Content-Length, then a
/// reset).
async fn serve_bytes(
    shared: &Shared,
    conn: &Arc<ConnControl>,
    headers: &HeaderMap,
    bytes: Bytes,
    mime: &str,
) -> Response {
    let (fault, _) = draw(shared, "download", &shared.faults().download);
    match fault {
        Fault::ResetBefore => return reset(conn).await,
        Fault::Html502 => return html_error(502),
        Fault::Html520 => return html_error(520),
        Fault::SlowAfter => {
            tokio::time::sleep(Duration::from_millis(shared.faults().slow_ms)).await;
        }
        _ => {}
    }
    let total = bytes.len() as u64;
    // A strong validator, as CDNs send: If-Range with another one (the file
    // changed) gets the whole file.
    let etag = {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(&bytes);
        let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("\"{hex}\"")
    };
    let if_range_ok = headers
        .get(header::IF_RANGE)
        .is_none_or(|v| v.as_bytes() == etag.as_bytes());
    let range = headers
        .get(header::RANGE)
        .filter(|_| if_range_ok)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("bytes="))
        .and_then(|v| v.split_once('-'))
        .and_then(|(a, b)| {
            let start: u64 = a.trim().parse().ok()?;
            let end: u64 = if b.trim().is_empty() {
                total.saturating_sub(1)
            } else {
                b.trim().parse().ok()?
            };
            (start <= end && start < total).then_some((start, end.min(total.saturating_sub(1))))
        });
    let (status, body, content_range) = match range {
        Some((start, end)) => (
            StatusCode::PARTIAL_CONTENT,
            bytes.slice(start as usize..=end as usize),
            Some(format!("bytes {start}-{end}/{total}")),
        ),
        None if headers.contains_key(header::RANGE) && if_range_ok && total > 0 => {
            let mut response = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            response.headers_mut().insert(
                header::CONTENT_RANGE,
                HeaderValue::from_str(&format!("bytes */{total}")).expect("ascii"),
            );
            return response;
        }
        None => (StatusCode::OK, bytes, None),
    };
    let length = body.len();
    let body = if fault == Fault::Truncate && length > 1 {
        let head = body.slice(..length / 2);
        let conn = conn.clone();
        let stream = futures_util::stream::unfold(Some(head), move |head| {
            let conn = conn.clone();
            async move {
                match head {
                    Some(head) => Some((Ok::<Bytes, std::io::Error>(head), None)),
                    None => {
                        // Let the first half reach the client, then cut.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        conn.reset();
                        std::future::pending::<()>().await;
                        None
                    }
                }
            }
        });
        Body::from_stream(stream)
    } else {
        Body::from(body)
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(mime).unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::ETAG,
        HeaderValue::from_str(&etag).expect("hex in quotes"),
    );
    if let Some(range) = content_range {
        h.insert(
            header::CONTENT_RANGE,
            HeaderValue::from_str(&range).expect("ascii"),
        );
    }
    response
}

async fn uploaded_file(
    State(shared): Ctx,
    Extension(conn): Conn,
    headers: HeaderMap,
    Path(path): Path<String>,
) -> Response {
    shared.lock().count("files");
    let upload = shared.lock().uploads.get(&path).cloned();
    match upload {
        Some(Upload {
            source_url: Some(url),
            ..
        }) => (
            StatusCode::NOT_FOUND,
            format!("the simulator recorded {url} but does not fetch URLs off loopback"),
        )
            .into_response(),
        Some(upload) => serve_bytes(&shared, &conn, &headers, upload.bytes, &upload.mime).await,
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}

async fn result_video(
    State(shared): Ctx,
    Extension(conn): Conn,
    headers: HeaderMap,
    Path(file): Path<String>,
    Query(query): Query<std::collections::HashMap<String, String>>,
) -> Response {
    shared.lock().count("results");
    let Some(id) = file.strip_suffix(".mp4") else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    let now = Instant::now();
    let ended_ms = shared
        .lock()
        .tasks
        .get(id)
        .filter(|t| t.ended(now) && matches!(t.outcome, Outcome::Success { .. }))
        .map(|t| t.end_ms());
    let Some(ended_ms) = ended_ms else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    // A link from download-url carries `expires` (Unix seconds); the plain
    // result URL expires `resultUrlTtlMs` after the task ended.
    let fresh = match query.get("expires") {
        Some(expires) => expires.parse::<i64>().is_ok_and(|e| e * 1000 > now_ms()),
        None => shared
            .config
            .lifecycle
            .result_url_ttl_ms
            .is_none_or(|ttl| now_ms() < ended_ms + ttl as i64),
    };
    if !fresh {
        return (StatusCode::NOT_FOUND, "the link has expired").into_response();
    }
    serve_bytes(
        &shared,
        &conn,
        &headers,
        Bytes::from_static(RESULT_VIDEO),
        "video/mp4",
    )
    .await
}

async fn stats(State(shared): Ctx) -> Response {
    let now = Instant::now();
    let first = shared.config.api_keys[0].clone();
    axum::Json(shared.lock().stats(now, &first)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_timestamps() {
        assert_eq!(iso8601(1_776_323_952_309), "2026-04-16T07:19:12.309Z");
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn wav_durations() {
        let mut wav =
            b"RIFF\0\0\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0\x40\x1f\0\0\x80\x3e\0\0\x02\0\x10\0data"
                .to_vec();
        wav.extend_from_slice(&32000u32.to_le_bytes());
        wav.resize(wav.len() + 32000, 0);
        assert_eq!(wav_seconds(&wav), Some(2.0));
        assert_eq!(wav_seconds(b"not a wav"), None);
    }

    #[test]
    fn upload_paths_and_names_are_sanitised() {
        assert_eq!(
            clean_upload_path("images/user-uploads").as_deref(),
            Some("images/user-uploads")
        );
        for bad in ["", "/abs", "trail/", "a/../b", "a//b", "sp ace"] {
            assert_eq!(clean_upload_path(bad), None, "{bad}");
        }
        assert_eq!(clean_file_name(Some("face.png"), "image/png"), "face.png");
        assert!(clean_file_name(Some("../../etc/passwd"), "image/png").ends_with(".png"));
        assert!(clean_file_name(None, "audio/mpeg").ends_with(".mp3"));
    }
}
