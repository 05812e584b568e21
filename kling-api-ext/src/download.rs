//! Downloads that never leave a partial file where the video should be.
//!
//! [`Client::download`] streams to a temporary file in the target's directory
//! (so the final rename stays on one file system and is atomic), hashes as it
//! goes, checks `Content-Length`, retries transient failures (resuming with
//! `Range` when the server allows it, else starting over) and renames the file
//! into place only when it is complete. Result URLs expire after about 24 hours:
//! a 403/404/410 is [`Error::LinkExpired`], which says to ask
//! [`Client::download_url`] for a fresh link.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use futures_util::StreamExt as _;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, RANGE};
use serde::Serialize;
use sha2::Digest as _;
use tracing::Instrument as _;
use url::Url;

use crate::client::Client;
use crate::envelope::{record, request_span};
use crate::error::{self, Error, Field, Operation, Result};
use crate::task::Task;
use crate::upload::ProgressFn;

/// What to download: a URL, or a finished task's video.
#[derive(Clone, Debug)]
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
    total: Option<u64>,
    ranges: bool,
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
        Ok(())
    }
}

fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        operation: Operation::Download,
        path: path.to_owned(),
        source,
    }
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
    pub async fn download_with_progress(
        &self,
        source: impl Into<DownloadSource>,
        path: impl AsRef<Path>,
        progress: Option<ProgressFn>,
    ) -> Result<Downloaded> {
        let path = path.as_ref();
        let url = match source.into() {
            DownloadSource::Url(url) => url,
            DownloadSource::Task(task) => task.video_url().cloned().ok_or_else(|| {
                Error::invalid(
                    Field::Download,
                    Some(task.task_id.to_string()),
                    format!("the task has no result to download (state {})", task.state),
                )
            })?,
        };
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
        let mut state = Progress {
            file: temp.reopen().map_err(|source| io(temp.path(), source))?,
            hasher: sha2::Sha256::new(),
            written: 0,
            total: None,
            ranges: false,
        };
        let policy = &self.inner.retry;
        let mut delays = policy.delays();
        let mut retries = 0u32;
        loop {
            match self
                .download_attempt(&url, temp.path(), &mut state, progress.as_ref())
                .await?
            {
                Attempt::Done => break,
                Attempt::Again(error) => {
                    // Downloads are bounded by attempts, not by the time budget:
                    // a long transfer that breaks late still deserves its retries.
                    let Some(delay) = delays.next() else {
                        return Err(error);
                    };
                    retries += 1;
                    tracing::debug!(url = %url, written = state.written, error = %error, "download interrupted; retrying");
                    tokio::time::sleep(error.retry_after().unwrap_or(delay)).await;
                }
            }
        }
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
            .header(reqwest::header::USER_AGENT, self.inner.user_agent())
            .timeout(self.inner.transfer_timeout);
        if state.written > 0 {
            request = request.header(RANGE, format!("bytes={}-", state.written));
        }
        let response = match request.send().instrument(span.clone()).await {
            Ok(response) => response,
            Err(e) => {
                let error = error::transport(operation, None, e);
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
                state.ranges = headers
                    .get("accept-ranges")
                    .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"bytes"));
            }
            StatusCode::PARTIAL_CONTENT => {
                let range = header_u64(CONTENT_RANGE).unwrap_or_default();
                let start = range
                    .strip_prefix("bytes ")
                    .and_then(|r| r.split('-').next())
                    .and_then(|s| s.trim().parse::<u64>().ok());
                if start != Some(state.written) {
                    state.ranges = false;
                    state.restart(temp)?;
                    let error = Error::UnexpectedResponse {
                        operation,
                        task_id: None,
                        status: 206,
                        detail: format!("asked for bytes from {} but got {range:?}", state.written),
                        body: String::new(),
                        retry_after: None,
                    };
                    record(&span, started, Some(206), None, &Err(&error));
                    return Ok(Attempt::Again(error));
                }
                state.total = range.rsplit('/').next().and_then(|t| t.trim().parse().ok());
                state.ranges = true;
            }
            StatusCode::FORBIDDEN | StatusCode::NOT_FOUND | StatusCode::GONE => {
                let error = Error::LinkExpired {
                    url: url.to_string(),
                    status: status.as_u16(),
                };
                record(&span, started, Some(status.as_u16()), None, &Err(&error));
                return Err(error);
            }
            _ => {
                let error = crate::envelope::unexpected_response(operation, None, response).await;
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
                    let error = error::transport(operation, None, e);
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
        record(&span, started, Some(status.as_u16()), None, &Ok(()));
        Ok(Attempt::Done)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn hex_is_lowercase_and_padded() {
        assert_eq!(super::hex(&[0, 15, 255]), "000fff");
    }
}
