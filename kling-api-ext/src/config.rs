//! Configuring a [`Client`]: [`ClientBuilder`], the environment variables,
//! and the TLS provider.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;

use crate::client::Client;
use crate::error::Result;
use crate::limit::{AccountKey, CreationLimiter, LimiterError, RateLimit};

use crate::request::Model;
use crate::retry::RetryPolicy;

mod build;

/// Where the builder's client counts creation slots.
#[derive(Clone, Debug)]
enum LimiterChoice {
    Process,
    PerAccount(MakeLimiter),
    Custom(Arc<dyn CreationLimiter>),
}

/// Makes a limiter for an account and a limit (see
/// [`ClientBuilder::rate_limiter_per_account`]).
type MakeFn =
    dyn Fn(&AccountKey, RateLimit) -> Result<Arc<dyn CreationLimiter>, LimiterError> + Send + Sync;

#[derive(Clone)]
struct MakeLimiter(Arc<MakeFn>);

impl std::fmt::Debug for MakeLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MakeLimiter")
    }
}

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
        // ring on purpose (no C toolchain, a faster build); rustls 0.23.48
        // deprecates it only for lacking post-quantum key exchange.
        #[allow(deprecated)]
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
    limiter: LimiterChoice,
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
            .field("limiter", &self.limiter)
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
            limiter: LimiterChoice::Process,
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
    /// The SDK's own clients send createTask on a fresh connection each time
    /// (a pooled one the server closes as idle just as the request arrives
    /// leaves the outcome unknown); with yours, createTask shares its pool
    /// unless it keeps no idle connections (`pool_max_idle_per_host(0)`).
    ///
    /// ```
    /// kling_api_ext::config::install_tls_provider();
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

    /// Counts creation slots in a limiter made for this client's account
    /// (a digest of its key and base URL) and its
    /// [`rate_limit`](Self::rate_limit), when the client is built: how a
    /// limiter shared by many processes or hosts plugs in (the `kling-fleet`
    /// crate's `FileLimiter::per_account(dir)` and `PgLimiter::per_account(url)`).
    /// `rate_limit(None)` still turns limiting off; an error from `make`
    /// fails [`build`](Self::build).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use kling_api_ext::limit::{CreationLimiter, ProcessLimiter};
    ///
    /// let client = kling_api_ext::Client::builder()
    ///     .api_key("sk-example")
    ///     .rate_limiter_per_account(|_account, limit| {
    ///         Ok(Arc::new(ProcessLimiter::new(limit)) as Arc<dyn CreationLimiter>)
    ///     })
    ///     .build()?;
    /// # Ok::<(), kling_api_ext::Error>(())
    /// ```
    pub fn rate_limiter_per_account(
        mut self,
        make: impl Fn(&AccountKey, RateLimit) -> Result<Arc<dyn CreationLimiter>, LimiterError>
        + Send
        + Sync
        + 'static,
    ) -> Self {
        self.limiter = LimiterChoice::PerAccount(MakeLimiter(Arc::new(make)));
        self
    }

    /// Counts creation slots in `limiter` (its own [`CreationLimiter::limit`]
    /// applies). `rate_limit(None)` still turns limiting off.
    pub fn rate_limiter(mut self, limiter: Arc<dyn CreationLimiter>) -> Self {
        self.limiter = LimiterChoice::Custom(limiter);
        self
    }

    /// How reads and uploads are retried (createTask has its own, stricter rule:
    /// see [`RetryPolicy`]).
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
}
