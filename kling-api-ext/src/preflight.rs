//! Preflight: before a task is paid for, check that a media URL serves an
//! accepted type within the size limit.
//!
//! A `HEAD` request first; when the server refuses it (presigned URLs are often
//! signed for `GET` only: 403, or 405/501), a ranged `GET` of the first 64 KiB.
//! The type comes from `Content-Type`, or from the bytes when the server sends a
//! generic type such as `application/octet-stream`; the size from
//! `Content-Length` or `Content-Range`. Nothing is sent to the API.

use std::time::Instant;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, HeaderMap, RANGE};
use tracing::Instrument;
use url::Url;

use crate::client::Client;
use crate::error::{Error, Operation, Result, safe_url};
use crate::media::{self, MediaFacts, MediaKind, SNIFF_BYTES};
use crate::request::{AvatarRequest, MediaSource};
use crate::retry::RetryReport;
use crate::send::{record, request_span};

/// What a URL serves, as far as the preflight could tell.
#[derive(Debug)]
struct Served {
    status: StatusCode,
    content_type: Option<String>,
    length: Option<u64>,
    head: Option<Vec<u8>>,
}

fn header_text(headers: &HeaderMap, name: reqwest::header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_owned())
}

/// `bytes 0-65535/1234567` → 1234567 (the download's parser: one reading of
/// the header for both).
fn content_range_total(value: &str) -> Option<u64> {
    crate::download::parse_content_range(value).and_then(|(_, _, total)| total)
}

fn is_generic(content_type: &str) -> bool {
    let t = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    t.is_empty()
        || matches!(
            t.as_str(),
            "application/octet-stream"
                | "binary/octet-stream"
                | "application/binary"
                | "application/unknown"
        )
}

impl Client {
    async fn fetch(&self, url: &Url, ranged: bool) -> Result<Served> {
        let operation = Operation::Preflight;
        let method = if ranged { "GET" } else { "HEAD" };
        let span = request_span(operation, method, "(media URL)", None);
        let started = Instant::now();
        let request = if ranged {
            self.inner
                .http
                .get(url.clone())
                .header(RANGE, format!("bytes=0-{}", SNIFF_BYTES - 1))
        } else {
            self.inner.http.head(url.clone())
        }
        .header(reqwest::header::USER_AGENT, self.inner.user_agent.clone());
        let result = request.send().instrument(span.clone()).await;
        let mut response = match result {
            Ok(response) => response,
            Err(e) => {
                let error = crate::interpret::transport(operation, None, e);
                record(&span, started, None, None, &Err(&error));
                return Err(error);
            }
        };
        let status = response.status();
        let headers = response.headers().clone();
        let content_type = header_text(&headers, CONTENT_TYPE);
        let length = if status == StatusCode::PARTIAL_CONTENT {
            header_text(&headers, CONTENT_RANGE)
                .as_deref()
                .and_then(content_range_total)
        } else {
            header_text(&headers, CONTENT_LENGTH).and_then(|v| v.parse().ok())
        };
        let mut head = None;
        if ranged && status.is_success() {
            // Only the first 64 KiB, even from a server that ignores Range.
            let mut bytes = Vec::new();
            while bytes.len() < SNIFF_BYTES {
                match response.chunk().await {
                    Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
                    Ok(None) => break,
                    Err(e) => {
                        let error = crate::interpret::transport(operation, None, e);
                        record(&span, started, Some(status.as_u16()), None, &Err(&error));
                        return Err(error);
                    }
                }
            }
            bytes.truncate(SNIFF_BYTES);
            head = Some(bytes);
        }
        record(&span, started, Some(status.as_u16()), None, &Ok(()));
        if status.is_server_error()
            || status == StatusCode::TOO_MANY_REQUESTS
            || status == StatusCode::REQUEST_TIMEOUT
        {
            // Retryable by the caller's loop.
            return Err(Error::UnexpectedResponse {
                operation,
                task_id: None,
                status: status.as_u16(),
                detail: format!("the media server answered {status}"),
                body: String::new(),
                retry_after: None,
            });
        }
        Ok(Served {
            status,
            content_type,
            length,
            head,
        })
    }

    /// Checks what `url` serves against the rules for `kind`; returns its facts
    /// and any warnings. A URL that does not serve an accepted file is
    /// [`Error::InvalidInput`].
    pub async fn preflight_url(
        &self,
        kind: MediaKind,
        url: &Url,
    ) -> Result<(MediaFacts, Vec<String>)> {
        self.check_url(kind, url, None).await
    }

    async fn check_url(
        &self,
        kind: MediaKind,
        url: &Url,
        report: RetryReport<'_>,
    ) -> Result<(MediaFacts, Vec<String>)> {
        let subject = safe_url(url);
        let invalid = |reason: String| Error::invalid(kind.field(), Some(subject.clone()), reason);
        // A media host that is down or slow says nothing about the input: that
        // stays a transport or service error (worth another try later), never
        // "invalid input".
        let about = format!(
            "{} URL `{subject}` (host `{}`)",
            kind.field(),
            url.host_str().unwrap_or_default()
        );
        let unusable = |e: Error| {
            if let Error::Transport {
                operation,
                subject: None,
                task_id,
                kind,
                may_have_reached_server,
                source,
            } = e
            {
                // "could not resolve the host name" alone names neither the
                // input nor the host.
                Error::Transport {
                    operation,
                    subject: Some(about.clone()),
                    task_id,
                    kind,
                    may_have_reached_server,
                    source,
                }
            } else if e.is_retryable() {
                e
            } else {
                invalid(format!("the URL could not be checked: {e}"))
            }
        };

        let mut served = self
            .retrying(Operation::Preflight, report, || self.fetch(url, false))
            .await
            .map_err(unusable)?;
        let head_refused = matches!(
            served.status,
            StatusCode::FORBIDDEN
                | StatusCode::METHOD_NOT_ALLOWED
                | StatusCode::NOT_IMPLEMENTED
                | StatusCode::BAD_REQUEST
                | StatusCode::UNAUTHORIZED
        );
        let needs_bytes =
            served.status.is_success() && served.content_type.as_deref().is_none_or(is_generic);
        if head_refused || needs_bytes || (served.status.is_success() && served.length.is_none()) {
            served = self
                .retrying(Operation::Preflight, report, || self.fetch(url, true))
                .await
                .map_err(unusable)?;
        }
        if !served.status.is_success() {
            return Err(invalid(format!(
                "the URL answers HTTP {}; it must be publicly readable by the service",
                served.status
            )));
        }

        let mut warnings = Vec::new();
        let sniffed = served
            .head
            .as_deref()
            .map(media::sniff)
            .filter(|t| !is_generic(t));
        let sniffed = sniffed.as_deref();
        let header = served.content_type.clone().filter(|t| !is_generic(t));
        let mime = match (&header, sniffed) {
            (Some(header), _) => media::accept_type(kind, &subject, header, "the URL serves")?,
            (None, Some(sniffed)) => {
                media::accept_type(kind, &subject, sniffed, "the URL's content is")?
            }
            (None, None) => {
                return Err(invalid(format!(
                    "the server gives no usable Content-Type and the content's type is not recognised; {}",
                    kind.allowed_text()
                )));
            }
        };
        match served.length {
            Some(bytes) => media::check_size(kind, &subject, bytes)?,
            None => warnings.push(format!(
                "{} `{subject}`: the server does not say how big the file is",
                kind_name(kind)
            )),
        }
        let dimensions = match kind {
            MediaKind::Image => served
                .head
                .as_deref()
                .and_then(media::dimensions_from_bytes),
            MediaKind::Audio => None,
        };
        let facts = MediaFacts {
            mime,
            bytes: served.length,
            dimensions,
            duration: None,
        };
        warnings.extend(media::soft_warnings(kind, &subject, &facts));
        Ok((facts, warnings))
    }

    /// Checks every URL input of `request` (local files were checked when it was
    /// built) and returns the request with their facts and warnings added.
    pub async fn preflight(&self, request: &AvatarRequest) -> Result<AvatarRequest> {
        self.preflight_reporting(request, None).await
    }

    pub(crate) async fn preflight_reporting(
        &self,
        request: &AvatarRequest,
        report: RetryReport<'_>,
    ) -> Result<AvatarRequest> {
        let mut out = request.clone();
        for kind in [MediaKind::Image, MediaKind::Audio] {
            let media = match kind {
                MediaKind::Image => &request.image,
                MediaKind::Audio => &request.audio,
            };
            if let MediaSource::Url(url) = media.source() {
                let (facts, warnings) = self.check_url(kind, url, report).await?;
                let checked = media.with_facts(facts);
                match kind {
                    MediaKind::Image => out.image = checked,
                    MediaKind::Audio => out.audio = checked,
                }
                out.warnings.extend(warnings);
            }
        }
        Ok(out)
    }
}

fn kind_name(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Image => "image",
        MediaKind::Audio => "audio",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_totals() {
        assert_eq!(
            content_range_total("bytes 0-65535/1234567"),
            Some(1_234_567)
        );
        assert_eq!(content_range_total("bytes 0-65535/*"), None);
        assert_eq!(content_range_total("0-65535/12"), None);
    }

    #[test]
    fn generic_types() {
        assert!(is_generic("application/octet-stream"));
        assert!(is_generic("binary/octet-stream; charset=binary"));
        assert!(is_generic(""));
        assert!(!is_generic("image/png"));
        assert!(!is_generic("text/html; charset=utf-8"));
    }
}
