//! Serving what the service hosts: uploaded files, result videos (with
//! ranges and their faults), and the stats endpoint.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Extension, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tokio::time::Instant;

use crate::shared::{ConnControl, Shared};
use crate::state::{Outcome, Upload, now_ms};

use super::*;

/// Serves bytes with Content-Type and Content-Length, single `Range` requests
/// (206), and the truncation fault (fewer bytes than Content-Length, then a
/// reset).
pub(super) async fn serve_bytes(
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

pub(super) async fn uploaded_file(
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

pub(super) async fn result_video(
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

pub(super) async fn stats(State(shared): Ctx) -> Response {
    let now = Instant::now();
    let first = shared.config.api_keys[0].clone();
    axum::Json(shared.lock().stats(now, &first)).into_response()
}
