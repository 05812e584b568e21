//! The job API: createTask, recordInfo, credit, download-url.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, Query, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::config::RateLimitMode;
use crate::shared::Shared;
use crate::state::{Outcome, Task, now_ms};

use super::*;

pub(super) async fn create_task(
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
            times_on_fail: shared.config.lifecycle.times_on_fail,
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
pub(super) fn uploaded_audio_seconds(shared: &Shared, url: &str) -> Option<f64> {
    let prefix = format!("{}/file-upload/files/", shared.base_url);
    let path = url.strip_prefix(&prefix)?;
    let state = shared.lock();
    let bytes = &state.uploads.get(path)?.bytes;
    wav_seconds(bytes)
}

pub(super) fn wav_seconds(bytes: &[u8]) -> Option<f64> {
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
pub(super) struct TaskQuery {
    #[serde(rename = "taskId")]
    task_id: Option<String>,
}

/// An unknown task: what recorded traffic shows, or with `httpErrorStatus`
/// the documentation's `404 Task not found`.
fn no_such_task(shared: &Shared, alias: bool) -> Response {
    if shared.config.http_error_status {
        envelope(404, "Task not found", Value::Null, alias)
    } else {
        envelope(422, "recordInfo is null", Value::Null, alias)
    }
}

pub(super) async fn record_info(
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
            return no_such_task(&shared, alias);
        };
        let age = now.saturating_duration_since(task.created);
        if task.null_until.is_some_and(|until| age < until) {
            drop(state);
            return no_such_task(&shared, alias);
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

pub(super) async fn credit(
    State(shared): Ctx,
    Extension(conn): Conn,
    headers: HeaderMap,
) -> Response {
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

pub(super) async fn download_url(
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
