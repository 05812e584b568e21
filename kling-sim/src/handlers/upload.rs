//! The upload API: stream (multipart), base64 and URL uploads.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Extension, Multipart, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use serde_json::{Value, json};

use crate::shared::{ConnControl, Shared, is_loopback};
use crate::state::{Upload, now_ms};

use super::*;

/// [`gate`] for the three uploads.
pub(super) async fn upload_gate(
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
pub(super) async fn after_work(
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

pub(super) fn clean_upload_path(path: &str) -> Option<String> {
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

pub(super) fn clean_file_name(name: Option<&str>, mime: &str) -> String {
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
pub(super) fn store(
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
pub(super) fn iso8601(ms: i64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms.max(0) as u64);
    humantime::format_rfc3339_millis(at).to_string()
}

pub(super) fn too_large(shared: &Shared, alias: bool) -> Response {
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

pub(super) fn malformed(error: &dyn std::fmt::Display, alias: bool) -> Response {
    upload_envelope(
        400,
        &format!("Malformed multipart body: {error}"),
        None,
        alias,
    )
}

pub(super) async fn upload_stream(
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

pub(super) async fn upload_base64(
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

pub(super) async fn upload_url(
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
