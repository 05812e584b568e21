//! A ready callback endpoint (feature `webhook-receiver`): an axum [`Router`]
//! that verifies each callback, parses it, answers `{"code":200,"msg":"success"}`
//! at once, and hands the [`Callback`] to your code through a channel.
//!
//! It bounds what a caller can make it do: bodies over
//! [`ReceiverConfig::max_body_bytes`] get 413, bodies slower than
//! [`ReceiverConfig::read_timeout`] get 408, bad signatures 401, unparseable
//! bodies 400. The time to send the *headers* is the server's business:
//! `axum::serve` does not bound it, so on a public port put the router behind a
//! reverse proxy or serve it with hyper-util's builder and a header-read timeout.
//!
//! Callbacks are sent once and, as far as anyone knows, never retried: if your
//! endpoint is down when a task ends, that callback is lost. Pair the receiver
//! with a slow poll as a fallback, and act on whichever comes first:
//!
//! ```no_run
//! use std::time::Duration;
//! use kling_api_ext::receiver::{ReceiverConfig, router};
//! use kling_api_ext::wait::{ExponentialPoll, WaitOptions};
//! use kling_api_ext::{AvatarRequest, Client};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let client = Client::from_env()?;
//! let (app, mut callbacks) = router(ReceiverConfig::new(Some("my-webhook-hmac-key".into())));
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
//! tokio::spawn(async move { axum::serve(listener, app).await });
//!
//! let request = AvatarRequest::builder()
//!     .image("face.png")
//!     .audio("hello.wav")
//!     .callback_url("https://my.example.com/kling/callback")
//!     .build()?;
//! let task_id = client.submit(&request).await?;
//! // The fallback: one poll a minute at most.
//! let slow = WaitOptions::new().policy(ExponentialPoll::new(Duration::from_secs(30), 1.5, Duration::from_secs(60)));
//! // The channel carries every task's callbacks: wait for this task's.
//! let from_callback = async {
//!     while let Some(callback) = callbacks.recv().await {
//!         if callback.task.task_id == task_id {
//!             return Some(callback);
//!         }
//!     }
//!     None
//! };
//! let task = tokio::select! {
//!     Some(callback) = from_callback => client.confirm(&callback).await?, // re-read: the body is not signed
//!     polled = client.wait(&task_id, slow) => polled?,
//! };
//! println!("{}: {}", task.task_id, task.state);
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use tokio::sync::mpsc;

use crate::webhook::{Callback, VerifyOptions, verify_callback};

/// How the receiver checks callbacks.
#[derive(Clone, Debug)]
pub struct ReceiverConfig {
    key: Option<SecretString>,
    /// The replay window.
    pub verify: VerifyOptions,
    /// The largest body accepted (default 1 MiB; callbacks are a few KiB).
    pub max_body_bytes: usize,
    /// How long a body may take to arrive (default 10 s; the service gives up
    /// after about 15 s).
    pub read_timeout: Duration,
}

impl ReceiverConfig {
    /// With the account's webhook HMAC key, every callback must be signed. With
    /// `None`, callbacks are accepted unsigned (only for setups without a key:
    /// anyone who knows the URL can then post to it; confirm before acting).
    pub fn new(key: Option<String>) -> Self {
        ReceiverConfig {
            key: key.map(SecretString::from),
            verify: VerifyOptions::default(),
            max_body_bytes: 1024 * 1024,
            read_timeout: Duration::from_secs(10),
        }
    }
}

struct Shared {
    config: ReceiverConfig,
    events: mpsc::UnboundedSender<Callback>,
}

fn answer(status: StatusCode, code: u16, msg: &str) -> Response {
    (status, axum::Json(json!({"code": code, "msg": msg}))).into_response()
}

/// A router with `POST /` that receives callbacks (mount it where your
/// `callBackUrl` points, e.g. `Router::new().nest("/kling/callback", app)`),
/// and the channel its verified callbacks arrive on.
pub fn router(config: ReceiverConfig) -> (Router, mpsc::UnboundedReceiver<Callback>) {
    let (events, receiver) = mpsc::unbounded_channel();
    let shared = Arc::new(Shared { config, events });
    let app = Router::new().route(
        "/",
        post(move |headers: HeaderMap, body: Body| {
            let shared = shared.clone();
            async move { receive(&shared, &headers, body).await }
        }),
    );
    (app, receiver)
}

async fn receive(shared: &Shared, headers: &HeaderMap, body: Body) -> Response {
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
    let parsed = match &config.key {
        Some(key) => verify_callback(
            headers,
            &bytes,
            key.expose_secret().as_bytes(),
            SystemTime::now(),
            &config.verify,
        ),
        None => Callback::parse(&bytes),
    };
    match parsed {
        Ok(callback) => {
            tracing::info!(task_id = %callback.task.task_id, state = %callback.task.state, "callback received");
            if shared.events.send(callback).is_err() {
                tracing::warn!("callback received but nobody is listening on the channel");
            }
            answer(StatusCode::OK, 200, "success")
        }
        Err(error @ crate::webhook::WebhookError::UnparseableBody(_))
        | Err(error @ crate::webhook::WebhookError::MissingTaskId) => {
            tracing::warn!(%error, "callback refused");
            answer(StatusCode::BAD_REQUEST, 400, &error.to_string())
        }
        Err(error) => {
            tracing::warn!(%error, "callback refused");
            answer(StatusCode::UNAUTHORIZED, 401, &error.to_string())
        }
    }
}
