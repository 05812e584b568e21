//! The client: what it holds (shared by its clones) and the reads that are
//! one call each. Its configuration is `crate::config`'s; each feature's calls
//! live with the feature.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use secrecy::SecretString;
use url::Url;

use crate::error::{Error, Operation, Result};
use crate::lifecycle::TaskId;
use crate::limit::{CreationLimiter, RateLimit};
use crate::request::Model;
use crate::retry::RetryPolicy;
use crate::task::Task;

pub(crate) struct Inner {
    /// Kept only to scrub it from what the service sends back; the requests use
    /// the sensitive header in `auth_headers`.
    pub(crate) api_key: SecretString,
    pub(crate) api: kling_api::Client,
    /// createTask's: on `create_http`.
    pub(crate) api_create: kling_api::Client,
    pub(crate) upload: kling_api::upload::Client,
    /// For uploads, preflights and downloads. Carries no Authorization header:
    /// it is added only to requests to the upload server.
    pub(crate) http: reqwest::Client,
    /// For createTask: keeps no idle connections, so a creation never goes out
    /// on one the server may be closing (the caller's own client, if given).
    pub(crate) create_http: reqwest::Client,
    pub(crate) auth_headers: HeaderMap,
    pub(crate) base_url: Url,
    pub(crate) upload_base_url: Url,
    pub(crate) model: Model,
    pub(crate) credits_per_second: Option<f64>,
    pub(crate) limiter: Option<Arc<dyn CreationLimiter>>,
    /// Lets one submit at a time ask the limiter (clones share it).
    pub(crate) limiter_gate: tokio::sync::Mutex<()>,
    /// How long a creation's slot is leased: past its timeouts.
    pub(crate) create_lease: Duration,
    pub(crate) rate_limit: Option<RateLimit>,
    pub(crate) retry: RetryPolicy,
    pub(crate) upload_path: String,
    pub(crate) preflight: bool,
    pub(crate) transfer_timeout: Duration,
    /// What the waits learn: generation speed per second of audio.
    pub(crate) durations: crate::speed::DurationModel,
    /// Recent uploads of local files, reused by later submits of the same file.
    pub(crate) uploads: crate::cache::UploadCache,
    /// The `User-Agent`, for requests sent with `http` directly: a caller's own
    /// reqwest client may have none, and the service refuses requests without.
    pub(crate) user_agent: HeaderValue,
}

crate::interpret::envelope! {
    kling_api::types::GetTaskDetailsResponse => kling_api::types::TaskRecord,
    kling_api::types::GetAccountCreditsResponse => f64,
    kling_api::types::GetDownloadUrlResponse => String,
}

/// One recordInfo answer, as a wait reads it.
pub(crate) enum Polled {
    /// A usable task.
    Task(Task),
    /// A well-formed answer that lacks what its state promises.
    Incomplete {
        /// The state it gave, if any.
        state: Option<crate::lifecycle::State>,
        /// What was missing, as the error `get_once` returns.
        error: Error,
    },
}

/// The SDK's client: cheap to clone (clones share connections and the rate
/// limiter, which clients built with the same key share too).
///
/// ```
/// use std::time::Duration;
/// use kling_api_ext::{Client, Model, RateLimit};
///
/// let client = Client::builder()
///     .api_key("my-apikley-key")
///     .model(Model::AvatarV1Pro)
///     .request_timeout(Duration::from_secs(20))
///     .rate_limit(Some(RateLimit::DEFAULT))
///     .build()?;
/// assert!(!format!("{client:?}").contains("my-apikley-key"));
/// # Ok::<(), kling_api_ext::Error>(())
/// ```
///
/// Then, with the network:
///
/// ```no_run
/// # async fn demo(client: kling_api_ext::Client) -> Result<(), kling_api_ext::Error> {
/// use kling_api_ext::AvatarRequest;
///
/// let request = AvatarRequest::builder().image("face.png").audio("hello.wav").build()?;
/// let task_id = client.submit(&request).await?;
/// let task = client.get(&task_id).await?;
/// println!("{task_id}: {}", task.state);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("api_key", &"[redacted]")
            .field("base_url", &self.inner.base_url.as_str())
            .field("upload_base_url", &self.inner.upload_base_url.as_str())
            .field("model", &self.inner.model)
            .field("rate_limit", &self.inner.rate_limit)
            .field("retry", &self.inner.retry)
            .field("upload_path", &self.inner.upload_path)
            .field("preflight", &self.inner.preflight)
            .finish()
    }
}

impl Client {
    /// The generated client for the API server, for anything this SDK does not
    /// wrap. Its calls return HTTP-200 errors as `Ok`: check `code`.
    pub fn raw(&self) -> &kling_api::Client {
        &self.inner.api
    }

    /// The generated client for the upload server.
    pub fn raw_upload(&self) -> &kling_api::upload::Client {
        &self.inner.upload
    }

    /// The API base URL.
    pub fn base_url(&self) -> &Url {
        &self.inner.base_url
    }

    /// The upload base URL.
    pub fn upload_base_url(&self) -> &Url {
        &self.inner.upload_base_url
    }

    /// The default model.
    pub fn model(&self) -> &Model {
        &self.inner.model
    }

    /// An endpoint's URL on the API server, for a request sent by hand.
    pub(crate) fn api_url_for(&self, endpoint: &str) -> Url {
        join(&self.inner.base_url, endpoint)
    }

    /// The model `request` is sent with: its own, or the client's.
    pub fn model_for<'a>(&'a self, request: &'a crate::AvatarRequest) -> &'a Model {
        request.model().unwrap_or(&self.inner.model)
    }

    /// The price used for estimates for `model`: the configured one, or the
    /// model's documented price.
    pub fn credits_per_second(&self, model: &Model) -> f64 {
        self.inner
            .credits_per_second
            .unwrap_or_else(|| model.credits_per_second())
    }

    /// The request's estimated cost in credits, when the audio's duration is
    /// known.
    pub fn estimate_credits(&self, request: &crate::AvatarRequest) -> Option<f64> {
        request.estimated_credits(self.credits_per_second(self.model_for(request)))
    }

    /// The task's current state and, once it has ended, its result or failure.
    /// Retried on transient errors.
    pub async fn get(&self, task_id: &TaskId) -> Result<Task> {
        self.retrying(Operation::GetTask, None, || self.get_once(task_id))
            .await
    }

    /// One recordInfo request, without retries.
    pub async fn get_once(&self, task_id: &TaskId) -> Result<Task> {
        match self.poll_once(task_id).await? {
            Polled::Task(task) => Ok(task),
            Polled::Incomplete { error, .. } => Err(error),
        }
    }

    /// One recordInfo request, telling an answer that is well-formed but
    /// incomplete (`success` without usable result URLs, `code: 200` without
    /// data) from any other failure: a wait confirms those before giving up.
    pub(crate) async fn poll_once(&self, task_id: &TaskId) -> Result<Polled> {
        let result = self
            .send_once(Operation::GetTask, Some(task_id), async {
                self.inner
                    .api
                    .get_task_details()
                    .task_id(task_id.as_str())
                    .send()
                    .await
                    .into()
            })
            .await;
        let record = match result {
            Ok(record) => record,
            Err(error) => {
                let no_data = matches!(&error, Error::UnexpectedResponse { status: 200, detail, .. }
                    if detail == crate::interpret::NO_DATA);
                return if no_data {
                    Ok(Polled::Incomplete { state: None, error })
                } else {
                    Err(error)
                };
            }
        };
        let state = crate::lifecycle::State::parse(&record.state);
        match Task::from_record(record, Operation::GetTask, Some(task_id)) {
            Ok(task) => Ok(Polled::Task(task)),
            Err(error) if state == crate::lifecycle::State::Success => Ok(Polled::Incomplete {
                state: Some(state),
                error,
            }),
            Err(error) => Err(error),
        }
    }

    /// The account's remaining credits (may be fractional).
    pub async fn credits(&self) -> Result<f64> {
        self.send(Operation::Credits, None, None, || async {
            self.inner.api.get_account_credits().send().await.into()
        })
        .await
    }

    /// A temporary (20 minute) direct link for a file the service generated, such
    /// as a result URL that expired after about 24 hours.
    pub async fn download_url(&self, url: &Url) -> Result<Url> {
        let body = kling_api::types::GetDownloadUrlBody::builder().url(url.to_string());
        let link = self
            .send(Operation::DownloadUrl, None, None, || async {
                self.inner
                    .api
                    .get_download_url()
                    .body(body.clone())
                    .send()
                    .await
                    .into()
            })
            .await?;
        Url::parse(&link).map_err(|e| Error::UnexpectedResponse {
            operation: Operation::DownloadUrl,
            task_id: None,
            status: 200,
            detail: format!("the link is not a URL: {e}"),
            body: crate::interpret::body_prefix(link.as_bytes()),
            retry_after: None,
        })
    }
}

/// `endpoint` (an absolute path) under `base`, keeping any path stem `base` has.
pub(crate) fn join(base: &Url, endpoint: &str) -> Url {
    let mut url = base.clone();
    let stem = url.path().trim_end_matches('/').to_owned();
    url.set_path(&format!("{stem}{endpoint}"));
    url
}
