//! One attempt of a download: the request (ranged when resuming), the checks
//! on what came back, and the bytes written and hashed as they arrive.

use crate::client::Client;
use crate::error::{Error, Operation, Result, safe_url};
use crate::send::{record, request_span};
use crate::upload::ProgressFn;
use futures_util::StreamExt as _;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, ETAG, IF_RANGE, LAST_MODIFIED, RANGE};
use sha2::Digest as _;
use std::io::Write as _;
use std::path::Path;
use std::time::Instant;
use tracing::Instrument as _;
use url::Url;

use super::*;

/// One attempt's outcome.
pub(super) enum Attempt {
    Done,
    /// Try again (resuming if `written` > 0 and ranges work), after this error.
    Again(Error),
}

pub(super) struct Progress {
    pub(super) file: std::fs::File,
    pub(super) hasher: sha2::Sha256,
    pub(super) written: u64,
    /// The object's length, from the first answer.
    pub(super) total: Option<u64>,
    /// Whether a cut transfer may be resumed: the server takes byte ranges and
    /// named a validator for `If-Range`.
    pub(super) ranges: bool,
    /// The first answer's strong `ETag`, or else its `Last-Modified`.
    pub(super) validator: Option<String>,
}

impl Progress {
    pub(super) fn restart(&mut self, path: &Path) -> Result<()> {
        self.file.set_len(0).map_err(|source| io(path, source))?;
        use std::io::Seek as _;
        self.file
            .seek(std::io::SeekFrom::Start(0))
            .map_err(|source| io(path, source))?;
        self.hasher = sha2::Sha256::new();
        self.written = 0;
        self.total = None;
        self.validator = None;
        self.ranges = false;
        Ok(())
    }
}

/// `Content-Range: bytes START-END/TOTAL` (TOTAL may be `*`).
pub(crate) fn parse_content_range(value: &str) -> Option<(u64, u64, Option<u64>)> {
    let (range, total) = value.trim().strip_prefix("bytes ")?.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    Some((start.trim().parse().ok()?, end.trim().parse().ok()?, total))
}

/// Whether an ISO base media file (MP4, MOV, M4A) of `len` bytes is whole: its
/// top-level boxes must reach exactly to the end. `None` for other content,
/// whose completeness the bytes cannot tell.
pub(super) fn iso_media_complete(
    file: &mut std::fs::File,
    len: u64,
) -> std::io::Result<Option<bool>> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    if len == 0 {
        return Ok(None);
    }
    let mut at = 0u64;
    let mut first = true;
    loop {
        if at == len {
            return Ok(Some(!first));
        }
        if len - at < 8 {
            return Ok(if first { None } else { Some(false) });
        }
        file.seek(SeekFrom::Start(at))?;
        let mut head = [0u8; 16];
        let want = if len - at >= 16 { 16 } else { 8 };
        file.read_exact(&mut head[..want])?;
        let kind = &head[4..8];
        if first && kind != b"ftyp" {
            return Ok(None);
        }
        if !kind.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
            return Ok(Some(false));
        }
        let size = u64::from(u32::from_be_bytes(head[..4].try_into().expect("4 bytes")));
        let size = match size {
            // The box runs to the end of the file.
            0 => return Ok(Some(true)),
            1 if want == 16 => u64::from_be_bytes(head[8..16].try_into().expect("8 bytes")),
            1 => return Ok(Some(false)),
            n => n,
        };
        if size < 8 {
            return Ok(Some(false));
        }
        match at.checked_add(size) {
            Some(next) if next <= len => at = next,
            _ => return Ok(Some(false)),
        }
        first = false;
    }
}

impl Client {
    pub(super) async fn download_attempt(
        &self,
        url: &Url,
        temp: &Path,
        state: &mut Progress,
        progress: Option<&ProgressFn>,
    ) -> Result<Attempt> {
        let operation = Operation::Download;
        let span = request_span(operation, "GET", "(result URL)", None);
        let started = Instant::now();
        if state.written > 0 && !state.ranges {
            state.restart(temp)?;
        }
        let mut request = self
            .inner
            .http
            .get(url.clone())
            .header(reqwest::header::USER_AGENT, self.inner.user_agent.clone())
            .timeout(self.inner.transfer_timeout);
        if state.written > 0 {
            // Only the same object may be continued: If-Range makes the server
            // send the whole file (200) if it changed since the first answer.
            request = request.header(RANGE, format!("bytes={}-", state.written));
            if let Some(validator) = &state.validator {
                request = request.header(IF_RANGE, validator.as_str());
            }
        }
        let response = match request.send().instrument(span.clone()).await {
            Ok(response) => response,
            Err(e) => {
                let error = crate::interpret::transport(operation, None, e);
                record(&span, started, None, None, &Err(&error));
                return Ok(Attempt::Again(error));
            }
        };
        let status = response.status();
        let headers = response.headers().clone();
        let header_u64 = |name| {
            headers
                .get(name)
                .and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok())
                .map(str::to_owned)
        };
        match status {
            StatusCode::OK => {
                if state.written > 0 {
                    // The server ignored the range: start over.
                    state.restart(temp)?;
                }
                state.total = header_u64(CONTENT_LENGTH).and_then(|v| v.parse().ok());
                // A weak ETag cannot be used with If-Range (RFC 9110 §13.1.5).
                state.validator = header_u64(ETAG)
                    .filter(|tag| tag.starts_with('"'))
                    .or_else(|| header_u64(LAST_MODIFIED));
                state.ranges = state.validator.is_some()
                    && headers
                        .get("accept-ranges")
                        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"bytes"));
            }
            StatusCode::PARTIAL_CONTENT => {
                let range = header_u64(CONTENT_RANGE).unwrap_or_default();
                let parsed = parse_content_range(&range);
                let same_object = match parsed {
                    Some((start, _, total)) => {
                        start == state.written
                            && state.written > 0
                            && (state.total.is_none() || total == state.total)
                    }
                    None => false,
                };
                if !same_object {
                    state.restart(temp)?;
                    let error = Error::UnexpectedResponse {
                        operation,
                        task_id: None,
                        status: 206,
                        detail: format!(
                            "a range answer {range:?} that does not continue the first one; starting over"
                        ),
                        body: String::new(),
                        retry_after: None,
                    };
                    record(&span, started, Some(206), None, &Err(&error));
                    return Ok(Attempt::Again(error));
                }
                state.total = parsed.and_then(|(_, _, total)| total).or(state.total);
            }
            StatusCode::FORBIDDEN | StatusCode::NOT_FOUND | StatusCode::GONE => {
                let error = Error::LinkExpired {
                    task_id: None,
                    url: safe_url(url),
                    status: status.as_u16(),
                };
                record(&span, started, Some(status.as_u16()), None, &Err(&error));
                return Err(error);
            }
            _ => {
                let error = crate::interpret::unexpected_response(operation, None, response).await;
                record(&span, started, Some(status.as_u16()), None, &Err(&error));
                return if error.is_retryable() {
                    Ok(Attempt::Again(error))
                } else {
                    Err(error)
                };
            }
        }
        let mut stream = response.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(e) => {
                    let error = crate::interpret::transport(operation, None, e);
                    record(&span, started, Some(status.as_u16()), None, &Err(&error));
                    return Ok(Attempt::Again(error));
                }
            };
            state
                .file
                .write_all(&chunk)
                .map_err(|source| io(temp, source))?;
            state.hasher.update(&chunk);
            state.written += chunk.len() as u64;
            if let Some(progress) = progress {
                progress(state.written, state.total);
            }
        }
        if let Some(total) = state.total
            && state.written != total
        {
            let error = Error::UnexpectedResponse {
                operation,
                task_id: None,
                status: status.as_u16(),
                detail: format!("the body ended after {} of {total} bytes", state.written),
                body: String::new(),
                retry_after: None,
            };
            record(&span, started, Some(status.as_u16()), None, &Err(&error));
            return Ok(Attempt::Again(error));
        }
        if state.total.is_none() {
            // No length to check against: a connection closed early looks like
            // the end of the body. A video's own structure tells.
            state.file.flush().map_err(|source| io(temp, source))?;
            if iso_media_complete(&mut state.file, state.written)
                .map_err(|source| io(temp, source))?
                == Some(false)
            {
                let error = Error::UnexpectedResponse {
                    operation,
                    task_id: None,
                    status: status.as_u16(),
                    detail: format!(
                        "the body ended after {} bytes without Content-Length, inside an MP4 box: cut short",
                        state.written
                    ),
                    body: String::new(),
                    retry_after: None,
                };
                state.restart(temp)?;
                record(&span, started, Some(status.as_u16()), None, &Err(&error));
                return Ok(Attempt::Again(error));
            }
            use std::io::Seek as _;
            state
                .file
                .seek(std::io::SeekFrom::End(0))
                .map_err(|source| io(temp, source))?;
        }
        record(&span, started, Some(status.as_u16()), None, &Ok(()));
        Ok(Attempt::Done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_ranges() {
        assert_eq!(
            parse_content_range("bytes 10-99/100"),
            Some((10, 99, Some(100)))
        );
        assert_eq!(parse_content_range("bytes 0-9/*"), Some((0, 9, None)));
        assert_eq!(parse_content_range("bytes */100"), None);
        assert_eq!(parse_content_range("items 0-9/10"), None);
    }

    fn boxes(sizes: &[(u32, &[u8; 4])], extra: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for (size, kind) in sizes {
            out.extend_from_slice(&size.to_be_bytes());
            out.extend_from_slice(*kind);
            out.resize(out.len() + *size as usize - 8, 0);
        }
        out.resize(out.len() + extra, 0);
        out
    }

    fn complete(bytes: &[u8]) -> Option<bool> {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(bytes).unwrap();
        iso_media_complete(&mut file, bytes.len() as u64).unwrap()
    }

    #[test]
    fn an_mp4_is_whole_only_when_its_boxes_reach_its_end() {
        let whole = boxes(&[(24, b"ftyp"), (100, b"moov"), (4000, b"mdat")], 0);
        assert_eq!(complete(&whole), Some(true));
        for cut in [30, 123, 124 + 8, whole.len() - 1] {
            assert_eq!(complete(&whole[..cut]), Some(false), "cut at {cut}");
        }
        assert_eq!(
            complete(&whole[..124]),
            Some(true),
            "a cut between boxes cannot be seen"
        );
        assert_eq!(complete(b"not a video at all"), None);
        assert_eq!(complete(&[]), None);
        // The simulator's placeholder video is whole.
        let mut last = boxes(&[(24, b"ftyp")], 0);
        last.extend_from_slice(&0u32.to_be_bytes());
        last.extend_from_slice(b"mdat");
        last.resize(last.len() + 50, 0);
        assert_eq!(
            complete(&last),
            Some(true),
            "size 0: to the end of the file"
        );
    }
}
