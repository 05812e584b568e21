//! Downloads that never leave a partial file where the video should be.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;
use sha2::Digest as _;
use url::Url;

use crate::call::Call;
use crate::client::Client;
use crate::error::{Error, Field, Operation, Result, safe_url};
use crate::task::Task;
use crate::upload::ProgressFn;

mod attempt;

pub(crate) use attempt::parse_content_range;
use attempt::{Attempt, Progress};

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

fn io(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        operation: Operation::Download,
        task_id: None,
        path: path.to_owned(),
        source,
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
    ///
    /// When `source` is a task, every error names it, and an expired result URL
    /// is replaced once by a fresh link from [`download_url`](Self::download_url).
    /// [`TransferOptions`](crate::upload::TransferOptions) (`.options(..)`)
    /// report `(bytes written, total)`.
    pub fn download(
        &self,
        source: impl Into<DownloadSource>,
        path: impl AsRef<Path>,
    ) -> Call<'_, crate::upload::TransferOptions, Downloaded> {
        let source = source.into();
        let path = path.as_ref().to_path_buf();
        Call::new(move |options: crate::upload::TransferOptions| async move {
            self.download_inner(source, &path, options.get_progress().cloned())
                .await
        })
    }

    async fn download_inner(
        &self,
        source: DownloadSource,
        path: &Path,
        progress: Option<ProgressFn>,
    ) -> Result<Downloaded> {
        match source {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lowercase_and_padded() {
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }
}
