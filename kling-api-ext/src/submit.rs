//! Submitting a request: upload local files, check URLs, then create the task
//! without ever paying twice (see [`crate::retry`] for the rule).

use std::time::Instant;

use tracing::Instrument;

use crate::client::Client;
use crate::envelope::{request_span, settle};
use crate::error::{Error, Field, Operation, Result};
use crate::media::MediaKind;
use crate::request::{AvatarRequest, Media, MediaSource};
use crate::task::TaskId;
use crate::upload::ProgressFn;

/// Identifies a local file's content cheaply: the same path, size and
/// modification time are taken to be the same file.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct UploadKey {
    path: std::path::PathBuf,
    len: u64,
    modified: std::time::SystemTime,
}

impl UploadKey {
    fn of(path: &std::path::Path) -> Option<UploadKey> {
        let metadata = std::fs::metadata(path).ok()?;
        Some(UploadKey {
            path: std::fs::canonicalize(path).ok()?,
            len: metadata.len(),
            modified: metadata.modified().ok()?,
        })
    }
}

/// What to do with a failed createTask attempt.
enum Verdict {
    /// The service certainly did not take it: may be sent again.
    NotTaken(Error),
    /// The service answered; it is final.
    Final(Error),
    /// Nobody knows whether a task exists.
    Unknown(Error),
}

fn verdict(error: Error) -> Verdict {
    match &error {
        Error::Transport {
            may_have_reached_server: false,
            ..
        } => Verdict::NotTaken(error),
        Error::Transport { .. } => Verdict::Unknown(error),
        Error::RateLimited { .. } | Error::Maintenance { .. } => Verdict::NotTaken(error),
        // A proxy page, an HTTP 5xx whatever its body, a truncated or foreign
        // body, a success without a task id.
        Error::UnexpectedResponse { .. } => Verdict::Unknown(error),
        // "Server exception": the service failed somewhere while handling it,
        // maybe after the task was stored. Resending could pay twice.
        Error::ServerError { .. } => Verdict::Unknown(error),
        _ => Verdict::Final(error),
    }
}

impl Client {
    /// Uploads the request's local files (as multipart streams) and, if preflight
    /// is on, checks its URLs; returns the request with URL sources only, ready
    /// for [`create_task`](Self::create_task). `progress` gets `(bytes sent, total)`
    /// per file.
    pub async fn prepare(
        &self,
        request: &AvatarRequest,
        progress: Option<ProgressFn>,
    ) -> Result<AvatarRequest> {
        let request = if self.inner.preflight {
            self.preflight(request).await?
        } else {
            request.clone()
        };
        let image = self
            .upload_media(MediaKind::Image, &request.image, progress.clone())
            .await?;
        let audio = self
            .upload_media(MediaKind::Audio, &request.audio, progress)
            .await?;
        Ok(request.with_media(image, audio))
    }

    async fn upload_media(
        &self,
        kind: MediaKind,
        media: &Media,
        progress: Option<ProgressFn>,
    ) -> Result<Media> {
        match (media.source(), media.facts()) {
            (MediaSource::Url(_), _) => Ok(media.clone()),
            (MediaSource::Path(path), Some(facts)) => {
                let upload = || async {
                    self.upload_checked_file(kind, path, facts, progress.clone())
                        .await
                        .map(|file| file.url)
                };
                let url = match UploadKey::of(path) {
                    Some(key) => self
                        .inner
                        .upload_slot(key)
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

    /// Uploads what needs uploading, checks URLs (if preflight is on), then
    /// creates the task. Returns its id.
    ///
    /// createTask is sent again only when the service certainly did not take it
    /// (no connection, 429/433, 455), within the rate limiter and the retry
    /// policy. When the request may have reached the service but no answer says
    /// what happened (a timeout or reset once sent, any HTTP 5xx, an envelope
    /// `code: 500` that is not a validation message, a body that is not the
    /// envelope), this returns [`Error::SubmitOutcomeUnknown`]: the task may
    /// exist, and submitting again could pay for it twice.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # // Run for real against the simulator (a dev-dependency), not the service.
    /// # let sim = kling_sim::Simulator::builder().start().await?;
    /// # let client = kling_api_ext::Client::builder()
    /// #     .api_key(sim.api_key())
    /// #     .base_url(sim.base_url())
    /// #     .upload_base_url(sim.upload_base_url())
    /// #     .build()?;
    /// # let assets = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/assets");
    /// use kling_api_ext::{AvatarRequest, Error};
    ///
    /// let request = AvatarRequest::builder()
    ///     .image(format!("{assets}/face.png")) // a local file, uploaded on submit, or a URL
    ///     .audio(format!("{assets}/hello.wav"))
    ///     .build()?;
    /// match client.submit(&request).await {
    ///     Ok(task_id) => println!("created {task_id}"),
    ///     Err(Error::SubmitOutcomeUnknown { cause }) => {
    ///         eprintln!("the task may exist ({cause}); check before submitting again")
    ///     }
    ///     Err(other) => return Err(other.into()),
    /// }
    /// # assert_eq!(sim.stats().tasks_created, 1);
    /// # Ok(()) }
    /// ```
    pub async fn submit(&self, request: &AvatarRequest) -> Result<TaskId> {
        let prepared = self.prepare(request, None).await?;
        self.create_task(&prepared).await
    }

    /// Creates the task for a request whose image and audio are URLs (see
    /// [`prepare`](Self::prepare)). The rule for repeats is [`submit`](Self::submit)'s.
    pub async fn create_task(&self, request: &AvatarRequest) -> Result<TaskId> {
        let url = |media: &Media, kind: MediaKind| match media.source() {
            MediaSource::Url(url) => Ok(url.to_string()),
            MediaSource::Path(path) => Err(Error::invalid(
                kind.field(),
                Some(path.display().to_string()),
                "a local file must be uploaded first: use submit() or prepare()",
            )),
        };
        let prompt = request
            .prompt
            .parse()
            .map_err(|e| Error::invalid(Field::Prompt, None, format!("{e}")))?;
        let body = kling_api::types::KlingAiAvatarV1ProBody {
            model: request.model.wire(),
            call_back_url: request.callback_url.as_ref().map(ToString::to_string),
            input: Some(kling_api::types::KlingAiAvatarV1ProBodyInput {
                image_url: url(&request.image, MediaKind::Image)?,
                audio_url: url(&request.audio, MediaKind::Audio)?,
                prompt,
            }),
        };

        let audio = request.audio.facts().and_then(|f| f.duration);
        let policy = &self.inner.retry;
        let started = Instant::now();
        let mut delays = policy.delays();
        let mut attempt = 1u32;
        loop {
            let result = {
                let _permit = match &self.inner.limiter {
                    Some(limiter) => Some(limiter.acquire().await),
                    None => None,
                };
                self.create_once(&body).await
                // The permit is released here, when the answer has arrived.
            };
            let error = match result {
                Ok(task_id) => {
                    if let Some(audio) = audio {
                        // For this task's wait: its expected generation time.
                        self.inner.remember_audio(&task_id, audio);
                    }
                    return Ok(task_id);
                }
                Err(error) => error,
            };
            let error = match verdict(error) {
                Verdict::Final(error) => return Err(error),
                Verdict::Unknown(error) => {
                    tracing::warn!(error = %error, "createTask outcome unknown; not retried");
                    return Err(Error::SubmitOutcomeUnknown {
                        cause: Box::new(error),
                    });
                }
                Verdict::NotTaken(error) => error,
            };
            if let (Error::RateLimited { retry_after, .. }, Some(limiter)) =
                (&error, &self.inner.limiter)
            {
                limiter.pause(retry_after.unwrap_or_else(|| limiter.rest_of_window()));
            }
            if attempt >= policy.max_attempts {
                return Err(error);
            }
            let Some(backoff) = delays.next() else {
                return Err(error);
            };
            // With a limiter, a 429 pauses it and the next acquire waits; without
            // one, wait here.
            let delay = match (&self.inner.limiter, error.retry_after()) {
                (Some(_), _) if matches!(error, Error::RateLimited { .. }) => {
                    std::time::Duration::ZERO
                }
                (_, Some(after)) => after,
                _ => backoff,
            };
            if started.elapsed().saturating_add(delay) > policy.time_budget {
                return Err(error);
            }
            tracing::info!(attempt, error = %error, "createTask not taken by the service; sending again");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    async fn create_once(&self, body: &kling_api::types::KlingAiAvatarV1ProBody) -> Result<TaskId> {
        let operation = Operation::CreateTask;
        let span = request_span(operation, "POST", "/api/v1/jobs/createTask", None);
        let started = Instant::now();
        let result = self
            .inner
            .api
            .kling_ai_avatar_v1_pro(body)
            .instrument(span.clone())
            .await;
        let data = settle(&self.call(operation, None, &span, started), result).await?;
        let id = data.task_id.ok_or_else(|| Error::UnexpectedResponse {
            operation,
            task_id: None,
            status: 200,
            detail: "code 200 but no taskId: the task may exist".into(),
            body: String::new(),
            retry_after: None,
        })?;
        let id = TaskId::new(id).map_err(|e| Error::UnexpectedResponse {
            operation,
            task_id: None,
            status: 200,
            detail: format!("code 200 but the taskId is not usable: {e}"),
            body: String::new(),
            retry_after: None,
        })?;
        span.record("task_id", id.as_str());
        tracing::info!(parent: &span, task_id = %id, "task created");
        Ok(id)
    }
}
