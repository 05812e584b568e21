//! Downloads that never leave a partial file where the video should be.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use futures_util::StreamExt as _;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, ETAG, IF_RANGE, LAST_MODIFIED, RANGE};
use serde::Serialize;
use sha2::Digest as _;
use tracing::Instrument as _;
use url::Url;

use crate::client::Client;
use crate::error::{Error, Field, Operation, Result, safe_url};
use crate::send::{record, request_span};
use crate::task::Task;
use crate::upload::ProgressFn;

/// What to download: a URL, or a finished task's video.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum DownloadSource {
    /// A URL (a result URL, or a link from `download_url`).
    Url(Url),
    /// The video of a task that succeeded.
    Task(Box<Task>),
}

impl From<Url> for DownloadSource {
    fn from(url: Url) -> Self {
        DownloadSource::Url(url)
    }
}

impl From<&Url> for DownloadSource {
    fn from(url: &Url) -> Self {
        DownloadSource::Url(url.clone())
    }
}

impl From<Task> for DownloadSource {
    fn from(task: Task) -> Self {
        DownloadSource::Task(Box::new(task))
    }
}

impl From<&Task> for DownloadSource {
    fn from(task: &Task) -> Self {
        DownloadSource::Task(Box::new(task.clone()))
    }
}

/// A completed download.
///
/// [`Client::download`] streams to a temporary file in the target's directory
/// (so the final rename stays on one file system and is atomic), hashes as it
/// goes, checks `Content-Length`, retries transient failures and renames the
/// file into place only when it is complete, then syncs the directory so the
/// rename survives a power cut.
///
/// A cut transfer is resumed with `Range` only when the server can prove it is
/// still the same object: the retry carries `If-Range` with the first answer's
/// strong `ETag` (or `Last-Modified`), and a `206` must start where the file
/// stopped and give the same total length. Anything else starts over, so two
/// versions of a file are never spliced together. A body that ends early is
/// never taken as complete: with `Content-Length` the count must match; without
/// it, an MP4's top-level boxes must reach exactly to its end.
///
/// Result URLs expire after about 24 hours: a 403/404/410 is
/// [`Error::LinkExpired`]. When the source is a [`Task`], the download asks
/// [`Client::download_url`] for a fresh link once and goes on with it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Downloaded {
    /// Where the file is.
    pub path: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// Its SHA-256, in lowercase hex.
    pub sha256: String,
    /// Where it came from.
    pub url: Url,
    /// How many times the transfer was resumed or restarted.
    pub retries: u32,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One attempt's outcome.
enum Attempt {
    Done,
    /// Try again (resuming if `written` > 0 and ranges work), after this error.
    Again(Error),
}

struct Progress {
    file: std::fs::File,
    hasher: sha2::Sha256,
    written: u64,
    /// The object's length, from the first answer.
    total: Option<u64>,
    /// Whether a cut transfer may be resumed: the server takes byte ranges and
    /// named a validator for `If-Range`.
    ranges: bool,
    /// The first answer's strong `ETag`, or else its `Last-Modified`.
    validator: Option<String>,
}

impl Progress {
    fn restart(&mut self, path: &Path) -> Result<()> {
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

fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        operation: Operation::Download,
        task_id: None,
        path: path.to_owned(),
        source,
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
fn iso_media_complete(file: &mut std::fs::File, len: u64) -> std::io::Result<Option<bool>> {
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

/// Makes a rename in `dir` durable (on Unix a directory can be synced; elsewhere
/// this does nothing).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Err(e) = std::fs::File::open(dir).and_then(|d| d.sync_all()) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot sync the directory after the rename");
    }
    #[cfg(not(unix))]
    let _ = dir;
}

impl Client {
    /// Downloads `source` to `path` (see the module docs); returns its size and
    /// SHA-256. The directory must exist; an existing file is replaced, whole.
    ///
    /// ```no_run
    /// # async fn demo(client: kling_api_ext::Client, task: kling_api_ext::Task) -> Result<(), kling_api_ext::Error> {
    /// let saved = client.download(&task, "avatar.mp4").await?;
    /// println!("{} bytes, sha256 {}", saved.bytes, saved.sha256);
    /// # Ok(()) }
    /// ```
    pub async fn download(
        &self,
        source: impl Into<DownloadSource>,
        path: impl AsRef<Path>,
    ) -> Result<Downloaded> {
        self.download_with_progress(source, path, None).await
    }

    /// [`download`](Self::download), reporting `(bytes written, total)`.
    ///
    /// When `source` is a task, every error names it, and an expired result URL
    /// is replaced once by a fresh link from [`download_url`](Self::download_url).
    pub async fn download_with_progress(
        &self,
        source: impl Into<DownloadSource>,
        path: impl AsRef<Path>,
        progress: Option<ProgressFn>,
    ) -> Result<Downloaded> {
        let path = path.as_ref();
        match source.into() {
            DownloadSource::Url(url) => self.download_url_to(&url, path, progress.as_ref()).await,
            DownloadSource::Task(task) => {
                let id = &task.task_id;
                let url = task.video_url().cloned().ok_or_else(|| {
                    Error::invalid(
                        Field::Download,
                        Some(id.to_string()),
                        format!("the task has no result to download (state {})", task.state),
                    )
                })?;
                match self.download_url_to(&url, path, progress.as_ref()).await {
                    Err(Error::LinkExpired { status, .. }) => {
                        tracing::info!(task_id = %id, status, "result URL expired; asking for a fresh link");
                        let fresh = self
                            .download_url(&url)
                            .await
                            .map_err(|e| e.with_task_id(id))?;
                        self.download_url_to(&fresh, path, progress.as_ref())
                            .await
                            .map_err(|e| e.with_task_id(id))
                    }
                    other => other.map_err(|e| e.with_task_id(id)),
                }
            }
        }
    }

    async fn download_url_to(
        &self,
        url: &Url,
        path: &Path,
        progress: Option<&ProgressFn>,
    ) -> Result<Downloaded> {
        let url = url.clone();
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::invalid(
                Field::Download,
                Some(url.to_string()),
                "only http(s) URLs can be downloaded",
            ));
        }
        let file_name = path.file_name().ok_or_else(|| {
            Error::invalid(
                Field::Download,
                Some(path.display().to_string()),
                "the target must be a file path",
            )
        })?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
            _ => PathBuf::from("."),
        };
        if path.is_dir() {
            return Err(Error::invalid(
                Field::Download,
                Some(path.display().to_string()),
                "the target is a directory",
            ));
        }
        let prefix = format!(".{}.", file_name.to_string_lossy());
        let mut builder = tempfile::Builder::new();
        builder.prefix(&prefix).suffix(".part");
        // A video is an ordinary file: 0666 less the umask, as any program's
        // output (tempfile's default, 0600, is for secrets).
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            builder.permissions(std::fs::Permissions::from_mode(0o666));
        }
        let temp = builder
            .tempfile_in(&dir)
            .map_err(|source| io(&dir, source))?;
        let state = Progress {
            file: temp.reopen().map_err(|source| io(temp.path(), source))?,
            hasher: sha2::Sha256::new(),
            written: 0,
            total: None,
            ranges: false,
            validator: None,
        };
        let retries = std::sync::atomic::AtomicU32::new(0);
        let count = |_: &Error, _: std::time::Duration, _: u32| {
            retries.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        };
        // Each attempt goes on from where the last one stopped.
        let state = tokio::sync::Mutex::new(state);
        crate::retry::Runner::new(&self.inner.retry, Operation::Download)
            .attempts_only()
            .notify(&count)
            .run(|| async {
                let mut state = state.lock().await;
                match self
                    .download_attempt(&url, temp.path(), &mut state, progress)
                    .await
                {
                    Ok(Attempt::Done) => Ok(()),
                    Ok(Attempt::Again(error)) => {
                        tracing::debug!(url = %safe_url(&url), written = state.written, error = %error, "download interrupted; retrying");
                        Err(crate::retry::Step::Again(error))
                    }
                    Err(error) => Err(crate::retry::Step::Stop(error)),
                }
            })
            .await?;
        let mut state = state.into_inner();
        let retries = retries.into_inner();
        state
            .file
            .flush()
            .map_err(|source| io(temp.path(), source))?;
        state
            .file
            .sync_all()
            .map_err(|source| io(temp.path(), source))?;
        drop(state.file);
        // The rename is atomic: the target is either absent/old or complete.
        temp.persist(path).map_err(|e| io(path, e.error))?;
        sync_dir(&dir);
        Ok(Downloaded {
            path: path.to_owned(),
            bytes: state.written,
            sha256: hex(&state.hasher.finalize()),
            url,
            retries,
        })
    }

    async fn download_attempt(
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
    fn hex_is_lowercase_and_padded() {
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }

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
