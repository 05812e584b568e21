//! Before createTask: local files uploaded (each once, however many requests
//! use it), URLs checked, each step reported as it goes.

use crate::cache::UploadKey;
use crate::call::Call;
use crate::client::Client;
use crate::error::{Error, Result};
use crate::media::MediaKind;
use crate::request::{AvatarRequest, Media, MediaSource};
use crate::upload::ProgressFn;

/// What [`Client::prepare`] reports as it goes: each step that can take
/// a while, so that a caller's status line always says what it waits for.
///
/// ```
/// use kling_api_ext::submit::{PrepareEvent, PrepareOptions};
///
/// let options = PrepareOptions::new().on_event(|event| match event {
///     PrepareEvent::CheckingUrls { urls } => eprintln!("checking {urls} URL(s)"),
///     PrepareEvent::Uploading { kind, bytes, .. } => eprintln!("uploading the {kind:?} ({bytes} B)"),
///     PrepareEvent::Retrying(r) => eprintln!("{}; again in {:.0?}", r.error, r.wait),
///     _ => {}
/// });
/// # let _ = options;
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum PrepareEvent {
    /// The URL inputs are being checked (preflight is on and `urls` > 0).
    CheckingUrls {
        /// How many URLs.
        urls: usize,
    },
    /// A local file starts uploading (not sent for a file uploaded earlier by
    /// the same client, whose URL is reused).
    Uploading {
        /// Image or audio.
        kind: MediaKind,
        /// The file.
        path: std::path::PathBuf,
        /// Its size.
        bytes: u64,
    },
    /// A URL check or an upload failed with a transient error and is made
    /// again after a wait.
    Retrying(crate::retry::Retrying),
}

/// Progress and event reports for [`Client::prepare`].
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct PrepareOptions {
    progress: Option<ProgressFn>,
    on_event: Option<EventReport>,
}

pub(super) type EventReport = std::sync::Arc<dyn Fn(&PrepareEvent) + Send + Sync>;

impl std::fmt::Debug for PrepareOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrepareOptions")
            .field("progress", &self.progress.as_ref().map(|_| "Fn"))
            .field("on_event", &self.on_event.as_ref().map(|_| "Fn"))
            .finish()
    }
}

impl PrepareOptions {
    /// No reports.
    pub fn new() -> Self {
        Self::default()
    }

    /// Gets `(bytes sent, total)` while each file uploads.
    pub fn progress(mut self, progress: ProgressFn) -> Self {
        self.progress = Some(progress);
        self
    }

    /// Gets each [`PrepareEvent`].
    pub fn on_event(mut self, report: impl Fn(&PrepareEvent) + Send + Sync + 'static) -> Self {
        self.on_event = Some(std::sync::Arc::new(report));
        self
    }

    pub(super) fn tell(&self, event: PrepareEvent) {
        if let Some(report) = &self.on_event {
            report(&event);
        }
    }
}

impl Client {
    /// Uploads the request's local files (as multipart streams) and, if preflight
    /// is on, checks its URLs; returns the request with URL sources only, ready
    /// for [`create_task`](Self::create_task). [`PrepareOptions`]
    /// (`.options(..)`) report each file's bytes sent, and each step, retry
    /// and wait ([`PrepareEvent`]).
    pub fn prepare<'a>(
        &'a self,
        request: &'a AvatarRequest,
    ) -> Call<'a, PrepareOptions, AvatarRequest> {
        Call::new(move |options| self.prepare_inner(request, options))
    }

    async fn prepare_inner(
        &self,
        request: &AvatarRequest,
        options: PrepareOptions,
    ) -> Result<AvatarRequest> {
        let retrying = |r: &crate::retry::Retrying| options.tell(PrepareEvent::Retrying(r.clone()));
        let report: crate::retry::RetryReport<'_> = match options.on_event {
            Some(_) => Some(&retrying),
            None => None,
        };
        let request = if self.inner.preflight {
            let urls = [&request.image, &request.audio]
                .iter()
                .filter(|m| matches!(m.source(), MediaSource::Url(_)))
                .count();
            if urls > 0 {
                options.tell(PrepareEvent::CheckingUrls { urls });
            }
            self.preflight_reporting(request, report).await?
        } else {
            request.clone()
        };
        let image = self
            .upload_media(MediaKind::Image, &request.image, &options, report)
            .await?;
        let audio = self
            .upload_media(MediaKind::Audio, &request.audio, &options, report)
            .await?;
        Ok(request.with_media(image, audio))
    }

    async fn upload_media(
        &self,
        kind: MediaKind,
        media: &Media,
        options: &PrepareOptions,
        report: crate::retry::RetryReport<'_>,
    ) -> Result<Media> {
        match (media.source(), media.facts()) {
            (MediaSource::Url(_), _) => Ok(media.clone()),
            (MediaSource::Path(path), Some(facts)) => {
                let upload = || async {
                    options.tell(PrepareEvent::Uploading {
                        kind,
                        path: path.clone(),
                        bytes: facts.bytes.unwrap_or(0),
                    });
                    self.upload_checked_file(kind, path, facts, options.progress.clone(), report)
                        .await
                        .map(|file| file.url)
                };
                let url = match UploadKey::of(path) {
                    Some(key) => self
                        .inner
                        .uploads
                        .slot(key)
                        .get_or_try_init(upload)
                        .await?
                        .clone(),
                    None => upload().await?,
                };
                Ok(Media::from_url(url, facts.clone()))
            }
            (MediaSource::Path(path), None) => Err(Error::invalid(
                kind.field(),
                Some(path.display().to_string()),
                "the file was not checked; build the request with AvatarRequest::builder()",
            )),
        }
    }
}
