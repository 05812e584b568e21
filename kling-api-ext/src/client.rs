//! The client: configuration, and the calls with their retry policy.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderValue, USER_AGENT};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::error::{Error, Field, Operation, Result};
use crate::ratelimit::{Limiter, RateLimit};
use crate::request::Model;
use crate::retry::RetryPolicy;
use crate::task::{Task, TaskId};

/// The `User-Agent` sent with every request: `kling-rs/<version>`. The service's
/// proxy refuses requests without one (`docs/service-notes.md` §1).
pub const DEFAULT_USER_AGENT: &str = concat!("kling-rs/", env!("CARGO_PKG_VERSION"));

/// Environment variable holding the API key.
pub const ENV_API_KEY: &str = "APIKLEY_API_KEY";
/// Environment variable overriding the API base URL.
pub const ENV_BASE_URL: &str = "APIKLEY_BASE_URL";
/// Environment variable overriding the upload base URL.
pub const ENV_UPLOAD_BASE_URL: &str = "APIKLEY_UPLOAD_BASE_URL";

/// Installs rustls' ring crypto provider as the process default, once; later
/// calls do nothing. reqwest is built without a default provider (ring builds
/// faster than aws-lc and needs no cmake), so a `reqwest::Client` built before
/// this runs panics. [`ClientBuilder::build`] calls it; call it yourself before
/// building your own `reqwest::Client` for [`ClientBuilder::http_client`].
pub fn install_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Err means another provider is already installed, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// Builds a [`Client`]. Every setting has a default but the API key.
#[derive(Clone)]
pub struct ClientBuilder {
    api_key: Option<SecretString>,
    base_url: String,
    upload_base_url: String,
    user_agent: String,
    connect_timeout: Duration,
    request_timeout: Duration,
    transfer_timeout: Duration,
    http: Option<reqwest::Client>,
    model: Model,
    credits_per_second: Option<f64>,
    rate_limit: Option<RateLimit>,
    retry: RetryPolicy,
    upload_path: String,
    preflight: bool,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("api_key", &self.api_key.as_ref().map(|_| "[redacted]"))
            .field("base_url", &self.base_url)
            .field("upload_base_url", &self.upload_base_url)
            .field("user_agent", &self.user_agent)
            .field("connect_timeout", &self.connect_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("transfer_timeout", &self.transfer_timeout)
            .field("own_http_client", &self.http.is_some())
            .field("model", &self.model)
            .field("credits_per_second", &self.credits_per_second)
            .field("rate_limit", &self.rate_limit)
            .field("retry", &self.retry)
            .field("upload_path", &self.upload_path)
            .field("preflight", &self.preflight)
            .finish()
    }
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            api_key: None,
            base_url: kling_api::DEFAULT_BASE_URL.to_owned(),
            upload_base_url: kling_api::DEFAULT_UPLOAD_BASE_URL.to_owned(),
            user_agent: DEFAULT_USER_AGENT.to_owned(),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            transfer_timeout: Duration::from_secs(600),
            http: None,
            model: Model::default(),
            credits_per_second: None,
            rate_limit: Some(RateLimit::DEFAULT),
            retry: RetryPolicy::default(),
            upload_path: "kling-rs".to_owned(),
            preflight: true,
        }
    }
}

impl ClientBuilder {
    /// The builder with the defaults, then `APIKLEY_API_KEY`,
    /// `APIKLEY_BASE_URL` and `APIKLEY_UPLOAD_BASE_URL` where set. Nothing is
    /// read from the environment unless this is called.
    pub fn from_env() -> Self {
        let mut builder = ClientBuilder::default();
        if let Ok(key) = std::env::var(ENV_API_KEY) {
            builder = builder.api_key(key);
        }
        if let Ok(url) = std::env::var(ENV_BASE_URL) {
            builder = builder.base_url(url);
        }
        if let Ok(url) = std::env::var(ENV_UPLOAD_BASE_URL) {
            builder = builder.upload_base_url(url);
        }
        builder
    }

    /// The API key (sent as `Authorization: Bearer <key>`; never shown by
    /// `Debug`, `Display`, errors or logs).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(SecretString::from(key.into()));
        self
    }

    /// The API base URL (default [`kling_api::DEFAULT_BASE_URL`]).
    pub fn base_url(mut self, url: impl Into<String>) -> Self {
        self.base_url = url.into();
        self
    }

    /// The upload base URL (default [`kling_api::DEFAULT_UPLOAD_BASE_URL`]).
    pub fn upload_base_url(mut self, url: impl Into<String>) -> Self {
        self.upload_base_url = url.into();
        self
    }

    /// The `User-Agent` (default [`DEFAULT_USER_AGENT`]); must not be empty.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Time to establish a connection (default 10 s). Ignored with
    /// [`http_client`](Self::http_client).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time for one API request, answer included (default 30 s). Ignored with
    /// [`http_client`](Self::http_client).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Time for one upload or download (default 10 min).
    pub fn transfer_timeout(mut self, timeout: Duration) -> Self {
        self.transfer_timeout = timeout;
        self
    }

    /// Your own `reqwest::Client` (proxies, certificates, tuning). The SDK still
    /// sets `Authorization` and `User-Agent` on each of its API requests; the
    /// timeouts above are then your client's. Call [`install_tls_provider`] before
    /// building it.
    ///
    /// ```
    /// kling_api_ext::install_tls_provider();
    /// let http = kling_api_ext::reqwest::Client::builder().pool_max_idle_per_host(4).build().unwrap();
    /// let client = kling_api_ext::Client::builder().api_key("k").http_client(http).build()?;
    /// # Ok::<(), kling_api_ext::Error>(())
    /// ```
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// The default model for requests that do not choose one (default
    /// [`Model::AvatarV1Pro`]).
    pub fn model(mut self, model: Model) -> Self {
        self.model = model;
        self
    }

    /// The price used for cost estimates, in credits per generated second
    /// (default: the model's documented price, [`Model::credits_per_second`]).
    pub fn credits_per_second(mut self, credits: f64) -> Self {
        self.credits_per_second = Some(credits);
        self
    }

    /// The client-side limit on task creation (default 20 per 10 s, the
    /// service's documented limit); `None` turns it off. The service counts per
    /// key, so every client of this process built with the same key, base URL
    /// and limit shares one window (clones included).
    pub fn rate_limit(mut self, limit: Option<RateLimit>) -> Self {
        self.rate_limit = limit;
        self
    }

    /// How reads and uploads are retried (createTask has its own, stricter rule:
    /// see [`crate::retry`]).
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.retry = policy;
        self
    }

    /// The folder uploads go to (`uploadPath`, default `kling-rs`): no leading or
    /// trailing slash.
    pub fn upload_path(mut self, path: impl Into<String>) -> Self {
        self.upload_path = path.into();
        self
    }

    /// Whether [`Client::submit`] checks media URLs with a preflight first
    /// (default on).
    pub fn preflight(mut self, on: bool) -> Self {
        self.preflight = on;
        self
    }

    /// Checks the settings and builds the client.
    pub fn build(self) -> Result<Client> {
        install_tls_provider();
        let config = |reason: String| Error::invalid(Field::Config, None, reason);
        let key = self
            .api_key
            .ok_or_else(|| config(format!("no API key: set {ENV_API_KEY} or call api_key()")))?;
        let key_text = key.expose_secret();
        if key_text.trim().is_empty() {
            return Err(config("the API key is empty".into()));
        }
        if key_text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control())
        {
            // The key itself is never echoed.
            return Err(config(
                "the API key contains white space or control characters".into(),
            ));
        }
        let base_url = parse_base_url("base URL", &self.base_url).map_err(config)?;
        let upload_base_url =
            parse_base_url("upload base URL", &self.upload_base_url).map_err(config)?;
        if self.user_agent.trim().is_empty() {
            return Err(config("the User-Agent cannot be empty".into()));
        }
        let upload_path = self.upload_path.trim().to_owned();
        if upload_path.is_empty() || upload_path.starts_with('/') || upload_path.ends_with('/') {
            return Err(config(format!(
                "upload path {upload_path:?}: give a folder without leading or trailing slashes"
            )));
        }
        if let Some(limit) = self.rate_limit
            && (limit.max == 0 || limit.window.is_zero())
        {
            return Err(config(
                "the rate limit needs max > 0 and a window > 0".into(),
            ));
        }
        if self
            .credits_per_second
            .is_some_and(|c| !c.is_finite() || c < 0.0)
        {
            return Err(config(
                "credits per second must be a finite number >= 0".into(),
            ));
        }

        let mut auth = HeaderValue::from_str(&format!("Bearer {key_text}"))
            .map_err(|_| config("the API key is not a valid header value".into()))?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, auth);
        headers.insert(
            USER_AGENT,
            HeaderValue::from_str(&self.user_agent)
                .map_err(|_| config("the User-Agent is not a valid header value".into()))?,
        );

        let http = match self.http {
            Some(client) => client,
            None => reqwest::Client::builder()
                .connect_timeout(self.connect_timeout)
                .timeout(self.request_timeout)
                .user_agent(self.user_agent.clone())
                .build()
                .map_err(|e| config(format!("cannot build the HTTP client: {e}")))?,
        };
        let api = kling_api::Client::new_with_client(
            base_url.as_str().trim_end_matches('/'),
            http.clone(),
            headers.clone(),
        );
        let upload = kling_api::upload::Client::new_with_client(
            upload_base_url.as_str().trim_end_matches('/'),
            http.clone(),
            headers.clone(),
        );
        let limiter = self
            .rate_limit
            .map(|limit| crate::ratelimit::shared(key_text, base_url.as_str(), limit));
        Ok(Client {
            inner: Arc::new(Inner {
                api_key: key.clone(),
                api,
                upload,
                http,
                auth_headers: headers,
                base_url,
                upload_base_url,
                model: self.model,
                credits_per_second: self.credits_per_second,
                limiter,
                rate_limit: self.rate_limit,
                retry: self.retry,
                upload_path,
                preflight: self.preflight,
                transfer_timeout: self.transfer_timeout,
                estimates: Default::default(),
                uploads: std::sync::Mutex::new(std::collections::HashMap::new()),
            }),
        })
    }
}

fn parse_base_url(what: &str, text: &str) -> std::result::Result<Url, String> {
    let url = Url::parse(text.trim()).map_err(|e| format!("{what} {text:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!("{what} {text:?}: use an absolute http(s) URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{what} {text:?}: no query or fragment allowed"));
    }
    Ok(url)
}

/// One file's upload, shared by every submit that uses the file.
pub(crate) struct UploadSlot {
    url: Arc<tokio::sync::OnceCell<Url>>,
    created: Instant,
}

pub(crate) struct Inner {
    /// Kept only to scrub it from what the service sends back; the requests use
    /// the sensitive header in `auth_headers`.
    pub(crate) api_key: SecretString,
    pub(crate) api: kling_api::Client,
    pub(crate) upload: kling_api::upload::Client,
    /// For uploads, preflights and downloads. Carries no Authorization header:
    /// it is added only to requests to the upload server.
    pub(crate) http: reqwest::Client,
    pub(crate) auth_headers: HeaderMap,
    pub(crate) base_url: Url,
    pub(crate) upload_base_url: Url,
    pub(crate) model: Model,
    pub(crate) credits_per_second: Option<f64>,
    pub(crate) limiter: Option<Arc<Limiter>>,
    pub(crate) rate_limit: Option<RateLimit>,
    pub(crate) retry: RetryPolicy,
    pub(crate) upload_path: String,
    pub(crate) preflight: bool,
    pub(crate) transfer_timeout: Duration,
    /// What the waits learn (generation speed, submitted tasks' audio).
    pub(crate) estimates: crate::wait::estimate::Estimates,
    /// Recent uploads of local files, reused by later submits of the same file.
    pub(crate) uploads:
        std::sync::Mutex<std::collections::HashMap<crate::submit::UploadKey, UploadSlot>>,
}

impl Inner {
    /// The `User-Agent`, for requests sent with `http` directly: a caller's own
    /// reqwest client may have none, and the service refuses requests without.
    pub(crate) fn user_agent(&self) -> HeaderValue {
        self.auth_headers
            .get(USER_AGENT)
            .cloned()
            .unwrap_or_else(|| HeaderValue::from_static(DEFAULT_USER_AGENT))
    }

    /// How long an upload is reused. The service keeps uploads for 3 days
    /// (some report about 24 h); an hour stays well inside either.
    const UPLOAD_REUSE: Duration = Duration::from_secs(3600);

    /// The slot for a file's upload: the first caller uploads, concurrent ones
    /// wait for its URL (a failed upload leaves the slot empty for a retry).
    pub(crate) fn upload_slot(
        &self,
        key: crate::submit::UploadKey,
    ) -> Arc<tokio::sync::OnceCell<Url>> {
        let mut uploads = self.uploads.lock().unwrap_or_else(|p| p.into_inner());
        uploads.retain(|_, slot| slot.created.elapsed() < Self::UPLOAD_REUSE);
        uploads
            .entry(key)
            .or_insert_with(|| UploadSlot {
                url: Arc::new(tokio::sync::OnceCell::new()),
                created: Instant::now(),
            })
            .url
            .clone()
    }
}

/// One recordInfo answer, as a wait reads it.
pub(crate) enum Polled {
    /// A usable task.
    Task(Task),
    /// A well-formed answer that lacks what its state promises.
    Incomplete {
        /// The state it gave, if any.
        state: Option<crate::task::State>,
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
    /// A builder with the defaults (no environment read).
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client configured from `APIKLEY_API_KEY`, `APIKLEY_BASE_URL` and
    /// `APIKLEY_UPLOAD_BASE_URL`.
    pub fn from_env() -> Result<Client> {
        ClientBuilder::from_env().build()
    }

    /// The generated client for the API server, for anything this SDK does not
    /// wrap. Its calls return HTTP-200 errors as `Ok`: check `code`.
    pub fn raw(&self) -> &kling_api::Client {
        &self.inner.api
    }

    /// The generated client for the upload server.
    pub fn raw_upload(&self) -> &kling_api::upload::Client {
        &self.inner.upload
    }

    /// What this client has learned about generation speed from the tasks it
    /// waited for; [`wait`](Self::wait) uses it to poll near a task's expected
    /// end. Its samples can be kept between runs (the `kling` CLI does).
    pub fn duration_model(&self) -> &crate::wait::DurationModel {
        &self.inner.estimates.durations
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
    pub fn model(&self) -> Model {
        self.inner.model
    }

    /// The price used for estimates for `model`: the configured one, or the
    /// model's documented price.
    pub fn credits_per_second(&self, model: Model) -> f64 {
        self.inner
            .credits_per_second
            .unwrap_or_else(|| model.credits_per_second())
    }

    /// The request's estimated cost in credits, when the audio's duration is
    /// known.
    pub fn estimate_credits(&self, request: &crate::AvatarRequest) -> Option<f64> {
        request.estimated_credits(self.credits_per_second(request.model()))
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
                    .get_task_details(task_id.as_str())
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
        let state = crate::task::State::parse(&record.state);
        match Task::from_record(record, Operation::GetTask, Some(task_id)) {
            Ok(task) => Ok(Polled::Task(task)),
            Err(error) if state == crate::task::State::Success => Ok(Polled::Incomplete {
                state: Some(state),
                error,
            }),
            Err(error) => Err(error),
        }
    }

    /// The account's remaining credits (may be fractional).
    pub async fn credits(&self) -> Result<f64> {
        self.send(Operation::Credits, None, None, || async {
            self.inner.api.get_account_credits().await.into()
        })
        .await
    }

    /// A temporary (20 minute) direct link for a file the service generated, such
    /// as a result URL that expired after about 24 hours.
    pub async fn download_url(&self, url: &Url) -> Result<Url> {
        let body = kling_api::types::GetDownloadUrlBody {
            url: url.to_string(),
        };
        let link = self
            .send(Operation::DownloadUrl, None, None, || async {
                self.inner.api.get_download_url(&body).await.into()
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
