//! A ready callback endpoint (feature `receiver`): an axum [`Router`]
//! that verifies each callback, reads its task id (nothing else: see below),
//! answers `{"code":200,"msg":"success"}` at once, and hands a
//! [`CallbackNotice`] to your code through a channel or a [`CallbackHub`].
//!
//! It bounds what a caller can make it do: bodies over
//! [`ReceiverConfig::max_body_bytes`] get 413, bodies slower than
//! [`ReceiverConfig::read_timeout`] get 408, bad signatures 401, bodies that
//! are not JSON or name no task 400. The time to send the *headers* is the server's business:
//! `axum::serve` does not bound it, so on a public port serve the router with
//! [`serve`] (headers within a time limit, connections capped) or put it
//! behind a reverse proxy.
//!
//! What reaches your code is a [`CallbackNotice`]: the task id, whether its
//! signature was checked, and nothing else from the body. The body is not
//! signed (the signature covers the task id and the time), so the state and the
//! result URLs are read from the service with [`CallbackNotice::confirm`], never
//! taken from the request. A callback seen twice (same task id and timestamp,
//! within the replay window) is answered but handed over once. The channel is
//! bounded ([`ReceiverConfig::channel_capacity`]): when your code falls that
//! far behind, callbacks are answered 503 rather than piling up in memory.
//!
//! Callbacks are sent once and, as far as anyone knows, never retried: if your
//! endpoint is down when a task ends, that callback is lost. So pair the
//! receiver with a slow poll: [`hub_router`] feeds a [`CallbackHub`], and a
//! wait with [`WaitOptions::callbacks`] ends on the task's callback (after one
//! confirming status request) or on its [`SafetyPoll`](kling_api_ext::wait::SafetyPoll). A
//! nonce per intent in the URL lets [`CallbackHub::recover`] find a task whose
//! createTask answer was lost. ([`router`] hands notices to a channel instead,
//! for code that routes them itself.)
//!
//! ```no_run
//! use kling_api_ext::{AvatarRequest, Client, WaitOptions};
//! use kling_fleet::receiver::{ReceiverConfig, ServeOptions, hub_router, serve};
//! use kling_fleet::{CallbackHub, callback_url};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::from_env()?;
//! let hub = CallbackHub::new();
//! let app = hub_router(ReceiverConfig::signed("my-webhook-hmac-key")?, hub.clone());
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
//! tokio::spawn(serve(listener, app, ServeOptions::default())); // hardened for a public port
//!
//! // https://my.example.com/kling reaches port 8080; each intent gets a nonce.
//! let public = "https://my.example.com/kling".parse()?;
//! let request = AvatarRequest::builder()
//!     .image("face.png")
//!     .audio("hello.wav")
//!     .callback_url(callback_url(&public, &hub.issue_nonce()).as_str())
//!     .build()?;
//! let task_id = client.submit(&request).await?;
//! let task = client.wait(&task_id, WaitOptions::new().callbacks(hub.clone())).await?;
//! println!("{}: {}", task.task_id, task.state);
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use tokio::sync::mpsc;

use crate::hub::{CallbackHub, CallbackNotice, nonce_in_path};
use kling_api_ext::VerifyOptions;
#[cfg(doc)]
use kling_api_ext::WaitOptions;
use kling_api_ext::webhook::{TIMESTAMP_HEADER, WebhookError, callback_task_id, verify_signature};

/// How the receiver checks callbacks.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ReceiverConfig {
    key: Option<SecretString>,
    /// The replay window; callbacks seen twice within it are handed over once.
    pub verify: VerifyOptions,
    /// The largest body accepted (default 1 MiB; callbacks are a few KiB).
    pub max_body_bytes: usize,
    /// How long a body may take to arrive (default 10 s; the service gives up
    /// after about 15 s).
    pub read_timeout: Duration,
    /// How many notices may wait in the channel (default 1024); past that,
    /// callbacks are answered 503.
    pub channel_capacity: usize,
}

impl ReceiverConfig {
    /// Every callback must be signed with the account's webhook HMAC key. An
    /// empty key is refused ([`WebhookError::EmptyKey`]): anyone could sign with it.
    pub fn signed(key: impl Into<String>) -> Result<Self, WebhookError> {
        let key = key.into();
        if key.is_empty() {
            return Err(WebhookError::EmptyKey);
        }
        kling_api_ext::error::register_secret(&key);
        Ok(ReceiverConfig {
            key: Some(SecretString::from(key)),
            ..Self::unsigned()
        })
    }

    /// Callbacks are accepted unsigned (for accounts without a key): anyone
    /// who knows the URL can post to it, so every notice must be confirmed
    /// before it is acted on (it carries only a task id anyway).
    pub fn unsigned() -> Self {
        ReceiverConfig {
            key: None,
            verify: VerifyOptions::default(),
            max_body_bytes: 1024 * 1024,
            read_timeout: Duration::from_secs(10),
            channel_capacity: 1024,
        }
    }

    /// How long a callback is remembered to drop its duplicates.
    fn replay_window(&self) -> Duration {
        self.verify.tolerance.unwrap_or(Duration::from_secs(300)) * 2
    }
}

/// How many callbacks the receiver remembers to drop duplicates.
const MAX_SEEN: usize = 100_000;

/// Where notices go.
enum Sink {
    Channel(mpsc::Sender<CallbackNotice>),
    Hub(CallbackHub),
}

struct Shared {
    config: ReceiverConfig,
    events: Sink,
    /// Callbacks seen recently, by task id and timestamp (or body digest).
    seen: Mutex<HashMap<String, Instant>>,
}

impl Shared {
    /// Whether this callback is new; remembers it if so.
    ///
    /// At most [`MAX_SEEN`] are remembered, pruned only when that many are,
    /// so a flood of distinct callbacks costs bounded memory and no scan per
    /// request. Past the cap a callback is taken as new: a duplicate then
    /// costs one confirming status request, never a missed callback.
    fn first_time(&self, key: String) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        let window = self.config.replay_window();
        if let Some(at) = seen.get(&key)
            && at.elapsed() < window
        {
            return false;
        }
        if seen.len() >= MAX_SEEN {
            seen.retain(|_, at| at.elapsed() < window);
        }
        if seen.len() < MAX_SEEN || seen.contains_key(&key) {
            seen.insert(key, Instant::now());
        }
        true
    }
}

fn answer(status: StatusCode, code: u16, msg: &str) -> Response {
    (status, axum::Json(json!({"code": code, "msg": msg}))).into_response()
}

/// A router that receives callbacks on `POST /` and `POST /<anything>/<nonce>`
/// (mount it where your `callBackUrl` points, e.g.
/// `Router::new().nest("/kling/callback", app)`), and the bounded channel its
/// notices arrive on.
pub fn router(config: ReceiverConfig) -> (Router, mpsc::Receiver<CallbackNotice>) {
    let (events, receiver) = mpsc::channel(config.channel_capacity.max(1));
    (routes(config, Sink::Channel(events)), receiver)
}

/// A router like [`router`]'s whose notices go to `hub`, where waits with
/// [`WaitOptions::callbacks`] and
/// [`CallbackHub::recover`] find them.
///
/// ```no_run
/// use kling_fleet::CallbackHub;
/// use kling_fleet::receiver::{ReceiverConfig, ServeOptions, hub_router, serve};
///
/// # async fn demo() -> std::io::Result<()> {
/// let hub = CallbackHub::new();
/// let app = hub_router(ReceiverConfig::unsigned(), hub.clone());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
/// tokio::spawn(serve(listener, app, ServeOptions::default()));
/// # Ok(()) }
/// ```
pub fn hub_router(config: ReceiverConfig, hub: CallbackHub) -> Router {
    routes(config, Sink::Hub(hub))
}

fn routes(config: ReceiverConfig, events: Sink) -> Router {
    let shared = Arc::new(Shared {
        config,
        events,
        seen: Mutex::new(HashMap::new()),
    });
    let handler = move |uri: axum::http::Uri, headers: HeaderMap, body: Body| {
        let shared = shared.clone();
        async move {
            let nonce = nonce_in_path(uri.path());
            receive(&shared, &headers, body, nonce).await
        }
    };
    Router::new()
        .route("/", post(handler.clone()))
        .route("/{*rest}", post(handler))
}

async fn receive(
    shared: &Shared,
    headers: &HeaderMap,
    body: Body,
    nonce: Option<String>,
) -> Response {
    let config = &shared.config;
    let bytes = match tokio::time::timeout(
        config.read_timeout,
        axum::body::to_bytes(body, config.max_body_bytes),
    )
    .await
    {
        Err(_) => return answer(StatusCode::REQUEST_TIMEOUT, 408, "the body took too long"),
        Ok(Err(_)) => return answer(StatusCode::PAYLOAD_TOO_LARGE, 413, "the body is too large"),
        Ok(Ok(bytes)) => bytes,
    };
    // Only the task id is read: the rest of the body is not signed, every
    // notice is confirmed with the service, and a body whose result looks
    // unusual must still end its wait or name its nonce's task.
    let parsed = match &config.key {
        Some(key) => verify_signature(
            headers,
            &bytes,
            key.expose_secret().as_bytes(),
            SystemTime::now(),
            &config.verify,
        ),
        None => callback_task_id(&bytes),
    };
    let task_id = match parsed {
        Ok(task_id) => task_id,
        Err(error @ WebhookError::UnparseableBody(_))
        | Err(error @ WebhookError::MissingTaskId) => {
            tracing::warn!(%error, "callback refused");
            return answer(StatusCode::BAD_REQUEST, 400, &error.to_string());
        }
        Err(error) => {
            tracing::warn!(%error, "callback refused");
            return answer(StatusCode::UNAUTHORIZED, 401, &error.to_string());
        }
    };
    let timestamp = headers
        .get(TIMESTAMP_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok());
    let key = match timestamp {
        Some(ts) => format!("{task_id}\n{ts}"),
        None => {
            use sha2::Digest as _;
            let digest = sha2::Sha256::digest(&bytes);
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            format!("{task_id}\n{hex}")
        }
    };
    if !shared.first_time(key) {
        tracing::info!(%task_id, "duplicate callback: answered, not handed over again");
        return answer(StatusCode::OK, 200, "success");
    }
    tracing::info!(%task_id, signed = config.key.is_some(), "callback received");
    let notice = CallbackNotice {
        task_id,
        signed: config.key.is_some(),
        timestamp,
        nonce,
    };
    let events = match &shared.events {
        Sink::Hub(hub) => {
            hub.deliver(&notice);
            return answer(StatusCode::OK, 200, "success");
        }
        Sink::Channel(events) => events,
    };
    match events.try_send(notice) {
        Ok(()) => answer(StatusCode::OK, 200, "success"),
        Err(mpsc::error::TrySendError::Full(notice)) => {
            tracing::warn!(task_id = %notice.task_id, "callback channel full: answered 503");
            // Forgotten, so that a second delivery (if any) is not taken as a duplicate.
            let mut seen = shared.seen.lock().unwrap_or_else(|p| p.into_inner());
            seen.retain(|k, _| !k.starts_with(&format!("{}\n", notice.task_id)));
            answer(
                StatusCode::SERVICE_UNAVAILABLE,
                503,
                "busy: try again later",
            )
        }
        Err(mpsc::error::TrySendError::Closed(notice)) => {
            tracing::warn!(task_id = %notice.task_id, "callback received but nobody is listening on the channel");
            answer(StatusCode::OK, 200, "success")
        }
    }
}

mod serve;
pub use serve::{ServeOptions, serve};
