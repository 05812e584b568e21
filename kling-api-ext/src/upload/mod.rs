//! Uploads: a local file as a multipart stream (memory does not grow with the
//! file), small content as base64, or a public URL the service fetches.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use futures_util::StreamExt as _;
use serde::Serialize;
use url::Url;

use crate::call::Call;
use crate::client::Client;
use crate::error::{Error, Field, Operation, Result};
use crate::interpret::Answer;
use crate::media::{self, MediaFacts, MediaKind};

crate::interpret::upload_envelope!(
    kling_api::upload::types::UploadFileBase64Response,
    kling_api::upload::types::UploadFileUrlResponse
);

/// Called as an upload or download progresses, with the bytes done and the
/// total (when known).
pub type ProgressFn = Arc<dyn Fn(u64, Option<u64>) + Send + Sync>;

/// Options of an upload or a download ([`Client::upload_file`],
/// [`Client::download`]): a progress report.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct TransferOptions {
    progress: Option<ProgressFn>,
}

impl std::fmt::Debug for TransferOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransferOptions")
            .field("progress", &self.progress.as_ref().map(|_| "Fn"))
            .finish()
    }
}

impl TransferOptions {
    /// No progress report.
    pub fn new() -> Self {
        TransferOptions::default()
    }

    /// Calls `progress` with `(bytes so far, total when known)` as the
    /// transfer goes.
    pub fn progress(mut self, progress: ProgressFn) -> Self {
        self.progress = Some(progress);
        self
    }

    /// The progress report, if any: for code that moves bytes itself.
    pub fn get_progress(&self) -> Option<&ProgressFn> {
        self.progress.as_ref()
    }
}

/// Files up to this size may go as base64 (which adds a third to the size).
pub const MAX_BASE64_BYTES: u64 = media::MAX_MEDIA_BYTES;

/// A stored upload.
///
/// file), small content as base64, or a public URL the service fetches.
///
/// The service stores uploads for 3 days (some report less) and serves them at
/// the returned `downloadUrl`, which is what a task's `image_url`/`audio_url`
/// takes. Each upload gets a unique file name with the extension of its detected
/// type, and the part's Content-Type is that type (`docs/service-notes.md` §6: a WAV sent as
/// `application/octet-stream` caused trouble).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct UploadedFile {
    /// The public URL (`downloadUrl`): pass it as an image or audio URL.
    pub url: Url,
    /// The stored name.
    pub file_name: Option<String>,
    /// The type the service recorded.
    pub mime_type: Option<String>,
    /// The size the service recorded.
    pub size: Option<u64>,
}

impl UploadedFile {
    fn from_wire(
        file: kling_api::upload::types::UploadedFile,
        operation: Operation,
    ) -> Result<Self> {
        let url = Url::parse(&file.download_url)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https"))
            .ok_or_else(|| Error::UnexpectedResponse {
                operation,
                task_id: None,
                status: 200,
                detail: "downloadUrl is not an http(s) URL".into(),
                body: crate::interpret::body_prefix(file.download_url.as_bytes()),
                retry_after: None,
            })?;
        Ok(UploadedFile {
            url,
            file_name: file.file_name,
            mime_type: file.mime_type,
            size: file.file_size.and_then(|s| u64::try_from(s).ok()),
        })
    }
}

/// A unique name for an upload: the original stem (letters, digits, `-`, `_`),
/// the time, a random suffix, and the extension of the detected type. The
/// service overwrites files of the same name.
pub(crate) fn upload_file_name(path: Option<&Path>, extension: &str) -> String {
    let stem: String = path
        .and_then(Path::file_stem)
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    let stem = if stem.trim_matches('_').is_empty() {
        "media".to_owned()
    } else {
        stem
    };
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!(
        "{stem}-{millis}-{:06x}.{extension}",
        fastrand::u32(..0x100_0000)
    )
}

/// Checks that `path` is a non-empty regular file and returns its size and
/// the media type of its content (`application/octet-stream` when unknown).
fn inspect_any_file(path: &Path) -> Result<(u64, String)> {
    let subject = Some(path.display().to_string());
    let invalid = |reason: String| Error::invalid(Field::File, subject.clone(), reason);
    let metadata = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => invalid("no such file".into()),
        _ => invalid(format!("the file cannot be read: {e}")),
    })?;
    if !metadata.is_file() {
        return Err(invalid("not a regular file".into()));
    }
    if metadata.len() == 0 {
        return Err(invalid("the file is empty".into()));
    }
    let head = {
        use std::io::Read;
        let mut head = Vec::new();
        std::fs::File::open(path)
            .and_then(|f| f.take(media::SNIFF_BYTES as u64).read_to_end(&mut head))
            .map_err(|e| invalid(format!("the file cannot be read: {e}")))?;
        head
    };
    let detected = media::sniff_file(path, &head);
    let mime = media::canonical_type(&detected)
        .map(str::to_owned)
        .unwrap_or(detected);
    Ok((metadata.len(), mime))
}

impl Client {
    fn upload_url_for(&self, endpoint: &str) -> Url {
        crate::client::join(&self.inner.upload_base_url, endpoint)
    }

    /// Uploads any local file as a multipart stream, read from disk in 64 KiB
    /// chunks (memory does not grow with the file). The part's Content-Type is
    /// the type of its content. No avatar rules apply here (the upload API takes
    /// any file); [`AvatarRequest`](crate::AvatarRequest) checks those, and
    /// [`submit`](Self::submit) uploads its files itself.
    /// [`TransferOptions`] (`.options(..)`) report the bytes sent.
    pub fn upload_file(&self, path: impl AsRef<Path>) -> Call<'_, TransferOptions, UploadedFile> {
        let path = path.as_ref().to_path_buf();
        Call::new(move |options: TransferOptions| async move {
            self.upload_file_inner(&path, options.progress).await
        })
    }

    async fn upload_file_inner(
        &self,
        path: &Path,
        progress: Option<ProgressFn>,
    ) -> Result<UploadedFile> {
        let (len, mime) = inspect_any_file(path)?;
        // The extension of a type the SDK knows, else the file's own.
        let extension = match media::extension_for(&mime) {
            "bin" => path
                .extension()
                .and_then(|e| e.to_str())
                .filter(|e| {
                    !e.is_empty() && e.len() <= 8 && e.chars().all(|c| c.is_ascii_alphanumeric())
                })
                .map_or_else(|| "bin".to_owned(), str::to_ascii_lowercase),
            known => known.to_owned(),
        };
        let name = upload_file_name(Some(path), &extension);
        let upload_path = self.inner.upload_path.clone();
        self.retrying(Operation::UploadStream, None, || {
            self.upload_stream_once(
                path,
                Field::File,
                &mime,
                len,
                &name,
                &upload_path,
                progress.clone(),
            )
        })
        .await
    }

    /// Uploads a file already checked (`facts` from its check). Fails if the file
    /// changed size since.
    pub(crate) async fn upload_checked_file(
        &self,
        kind: MediaKind,
        path: &Path,
        facts: &MediaFacts,
        progress: Option<ProgressFn>,
        report: crate::retry::RetryReport<'_>,
    ) -> Result<UploadedFile> {
        let name = upload_file_name(Some(path), facts.extension());
        let subfolder = match kind {
            MediaKind::Image => "images",
            MediaKind::Audio => "audio",
        };
        let upload_path = format!("{}/{subfolder}", self.inner.upload_path);
        let checked_len = facts.bytes.unwrap_or(0);
        self.retrying(Operation::UploadStream, report, || {
            self.upload_stream_once(
                path,
                kind.field(),
                facts.mime,
                checked_len,
                &name,
                &upload_path,
                progress.clone(),
            )
        })
        .await
    }

    /// One multipart upload of `path`, which must still be `expected_len` bytes.
    #[allow(clippy::too_many_arguments)]
    async fn upload_stream_once(
        &self,
        path: &Path,
        field: Field,
        mime: &str,
        expected_len: u64,
        name: &str,
        upload_path: &str,
        progress: Option<ProgressFn>,
    ) -> Result<UploadedFile> {
        let operation = Operation::UploadStream;
        let io = |source| Error::Io {
            task_id: None,
            operation,
            path: path.to_owned(),
            source,
        };
        let file = tokio::fs::File::open(path).await.map_err(io)?;
        let len = file.metadata().await.map_err(io)?.len();
        if len != expected_len {
            return Err(Error::invalid(
                field,
                Some(path.display().to_string()),
                "the file changed since it was checked; build the request again",
            ));
        }
        let sent = Arc::new(AtomicU64::new(0));
        let stream =
            tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024).inspect(move |chunk| {
                if let (Ok(chunk), Some(progress)) = (chunk, &progress) {
                    let done =
                        sent.fetch_add(chunk.len() as u64, Ordering::Relaxed) + chunk.len() as u64;
                    progress(done, Some(len));
                }
            });
        let part =
            reqwest::multipart::Part::stream_with_length(reqwest::Body::wrap_stream(stream), len)
                .file_name(name.to_owned())
                .mime_str(mime)
                .map_err(|e| {
                    Error::invalid(field, Some(path.display().to_string()), e.to_string())
                })?;
        let form = reqwest::multipart::Form::new()
            .text("uploadPath", upload_path.to_owned())
            .text("fileName", name.to_owned())
            .part("file", part);
        let path_on_server = operation.endpoint().map_or("", |e| e.path);
        let request = self
            .inner
            .http
            .post(self.upload_url_for(path_on_server))
            .headers(self.inner.auth_headers.clone())
            .timeout(self.inner.transfer_timeout)
            .multipart(form)
            .send();
        let file = self
            .send_once::<kling_api::upload::types::UploadFileBase64Response, _>(
                operation,
                None,
                async { Answer::Raw(request.await) },
            )
            .await?;
        UploadedFile::from_wire(file, operation)
    }

    /// Uploads content from memory as base64 (for small files: at most
    /// [`MAX_BASE64_BYTES`]). `file_name`'s extension should match the content.
    pub async fn upload_base64(&self, bytes: &[u8], file_name: &str) -> Result<UploadedFile> {
        let subject = Some(file_name.to_owned());
        media::check_size(MediaKind::Image, file_name, bytes.len() as u64).map_err(|_| {
            Error::invalid(
                Field::File,
                subject.clone(),
                format!(
                    "{} bytes; base64 uploads take 1 to {MAX_BASE64_BYTES} bytes",
                    bytes.len()
                ),
            )
        })?;
        let mime =
            media::canonical_type(&media::sniff(bytes)).unwrap_or("application/octet-stream");
        let body = kling_api::upload::types::UploadFileBase64Body::builder()
            .base64_data(format!(
                "data:{mime};base64,{}",
                base64::engine::general_purpose::STANDARD.encode(bytes)
            ))
            .upload_path(self.inner.upload_path.clone())
            .file_name(Some(upload_file_name(
                Some(Path::new(file_name)),
                media::extension_for(mime),
            )));
        let file = self
            .send(Operation::UploadBase64, None, None, || async {
                self.inner
                    .upload
                    .upload_file_base64()
                    .body(body.clone())
                    .send()
                    .await
                    .into()
            })
            .await?;
        UploadedFile::from_wire(file, Operation::UploadBase64)
    }

    /// Asks the service to fetch a public http(s) URL and store a copy (30 s
    /// download timeout on its side; up to about 100 MB).
    pub async fn upload_from_url(&self, url: &Url) -> Result<UploadedFile> {
        let url = crate::request::check_http_url(Field::File, url.as_str())?;
        let name = Path::new(url.path())
            .extension()
            .and_then(|e| e.to_str())
            .map(|ext| upload_file_name(Some(Path::new(url.path())), &ext.to_ascii_lowercase()));
        let body = kling_api::upload::types::UploadFileUrlBody::builder()
            .file_url(url.to_string())
            .upload_path(self.inner.upload_path.clone())
            .file_name(name);
        let file = self
            .send(Operation::UploadUrl, None, None, || async {
                self.inner
                    .upload
                    .upload_file_url()
                    .body(body.clone())
                    .send()
                    .await
                    .into()
            })
            .await?;
        UploadedFile::from_wire(file, Operation::UploadUrl)
    }
}

#[cfg(test)]
mod tests;
