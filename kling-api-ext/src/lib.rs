//! The Kling AI Avatar V1 Pro SDK for Apikley: a talking-head video from one
//! portrait, one audio track and a prompt.
//!
//! Built on the generated [`kling_api`] client, it adds what the raw API leaves
//! to you: the service answers errors with HTTP 200 and the real status in the
//! body's `code`, which this crate turns into one typed [`Error`]; requests are
//! checked before anything is sent (and before money is spent); local files are
//! uploaded as streams; createTask is never sent twice by accident; reads are
//! retried with backoff that honours `Retry-After`; task creation stays under
//! the service's rate limit.
//!
//! ```no_run
//! use kling_api_ext::{AvatarRequest, Client};
//!
//! # async fn demo() -> Result<(), kling_api_ext::Error> {
//! let client = Client::from_env()?; // APIKLEY_API_KEY
//! let request = AvatarRequest::builder()
//!     .image("face.png")
//!     .audio("hello.wav")
//!     .prompt("A friendly presenter, looking at the camera")
//!     .build()?; // checked now: types from content, sizes, prompt length
//! if let Some(credits) = client.estimate_credits(&request) {
//!     println!("about {credits} credits");
//! }
//! let task_id = client.submit(&request).await?; // uploads, then createTask
//! println!("task {task_id}");
//! # Ok(()) }
//! ```
//!
//! # Crate organisation
//!
//! Every public type has one path, at the crate root; the modules behind them
//! are private, one subject each (the `webhook-receiver` feature adds the
//! `receiver` module, whose names stay in it).
//!
//! - [`Client`], built by [`ClientBuilder`] (`config`): configuration (API key
//!   held as a secret, base URLs, timeouts, model, rate limit, retries). It
//!   holds what its features share; each feature's calls live with the feature.
//! - [`AvatarRequest`]: a request that can only be built valid (`request`),
//!   with [`MediaFacts`] (type, size, dimensions, duration) and warnings
//!   (`media`).
//! - Uploads ([`UploadedFile`]: stream, base64, URL; `upload`, with its cache
//!   of recent uploads) and preflight checks of media URLs (`preflight`).
//! - [`Client::submit`] (`submit`): uploads, checks, then createTask, never
//!   sent twice by accident ([`RetryPolicy`] says what is repeated).
//! - [`Task`], [`State`], [`TaskId`] (`task`, `lifecycle`): what recordInfo
//!   reports, parsed.
//! - [`Error`] (`error`): one error type; [`ApiErrorKind`] for the envelope
//!   codes, read from the answers in `interpret`.
//! - One request pipeline (`send`, `operation`: each endpoint's method and
//!   path, once) and one retry loop (`retry`) under every call; [`RateLimit`]:
//!   the creation limiter (`ratelimit`).
//! - [`Client::wait`] (`wait`: the loop; poll policies such as [`AdaptivePoll`];
//!   [`DurationModel`], what the client learns about generation speed; waits
//!   that end on callbacks, with [`SafetyPoll`], and [`Client::recover`]).
//! - [`verify_callback`] and [`Callback`] (`webhook`): verifying and parsing
//!   callbacks; [`CallbackHub`] and [`CallbackNotice`] (`webhook/hub`): the
//!   callbacks received, by task and by the nonce of [`callback_url`].
//! - [`Client::download`] (`download`): atomic, resumable, hashed downloads.
//!
//! Every request runs in a `tracing` span (`kling_request`: operation, method,
//! path, HTTP status, envelope code, duration, task id). The API key is never
//! recorded, printed or put in an error.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

/// Builder-style setters for the public fields of a `#[non_exhaustive]`
/// settings struct: `RetryPolicy::default().max_attempts(3)`.
macro_rules! setters {
    ($t:ty { $($field:ident: $ty:ty => $doc:literal),* $(,)? }) => {
        impl $t {
            $(
                #[doc = $doc]
                #[must_use]
                pub fn $field(mut self, value: $ty) -> Self {
                    self.$field = value;
                    self
                }
            )*
        }
    };
}

mod client;
mod config;
mod download;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod interpret;
mod lifecycle;
mod media;
mod operation;
#[cfg(feature = "postgres")]
mod pg;
mod preflight;
mod ratelimit;
#[cfg(feature = "webhook-receiver")]
pub mod receiver;
mod request;
mod retry;
mod send;
mod serde_secs;
mod submit;
mod task;
mod upload;
mod wait;
mod webhook;

pub use client::Client;
pub use config::{
    ClientBuilder, DEFAULT_USER_AGENT, ENV_API_KEY, ENV_BASE_URL, ENV_UPLOAD_BASE_URL,
    install_tls_provider,
};
pub use download::{DownloadSource, Downloaded};
pub use error::{
    ApiErrorKind, Error, Field, Operation, Result, TransportKind, redact, register_secret, safe_url,
};
/// The HTTP client crate this SDK uses (for [`ClientBuilder::http_client`]).
pub use kling_api::reqwest;
pub use lifecycle::{InvalidTaskId, State, TaskId};
pub use media::{AUDIO_TYPES, IMAGE_TYPES, MAX_MEDIA_BYTES, MediaFacts, MediaKind, soft_limits};
#[cfg(feature = "postgres")]
pub use pg::{migrate_postgres, postgres_pool};
#[cfg(feature = "postgres")]
pub use ratelimit::PgLimiter;
pub use ratelimit::{
    AccountKey, Acquire, CreationLimiter, FileLimiter, LimitWait, LimiterError, LimiterFuture,
    ProcessLimiter, RateLimit, SlotId,
};
pub use request::{
    AvatarRequest, AvatarRequestBuilder, InputBuilder, IntoMediaInput, MAX_PROMPT_CHARS, Media,
    MediaInputRaw, MediaSource, Model, input_schema,
};
pub use retry::{RetryPolicy, Retrying};
pub use submit::{PrepareEvent, PrepareOptions, SubmitOptions, SubmitWait, SubmitWaitReason};
pub use task::Task;
pub use upload::{MAX_BASE64_BYTES, ProgressFn, UploadedFile};
pub use wait::{
    AdaptivePoll, CancellationToken, DEFAULT_DEADLINE, DEFAULT_NOT_VISIBLE_GRACE, DurationModel,
    ExponentialPoll, PollContext, PollPolicy, ProgressCallback, SafetyPoll, WaitEvent, WaitOptions,
};
pub use webhook::{
    Callback, CallbackHub, CallbackNotice, SIGNATURE_HEADER, TIMESTAMP_HEADER, VerifyOptions,
    WebhookError, callback_task_id, callback_url, new_nonce, sign_callback, verify_callback,
    verify_signature,
};

/// The generated client this crate is built on, for raw access.
pub use kling_api;

/// Every public future is `Send` (spawnable on a multi-threaded runtime) and
/// the shared types are `Send + Sync`: checked when the crate compiles, so a
/// change that breaks it fails the build rather than a user's `tokio::spawn`.
#[allow(dead_code, clippy::too_many_arguments)]
fn _public_futures_are_send(
    client: &Client,
    request: &AvatarRequest,
    task_id: &TaskId,
    url: &url::Url,
    task: &Task,
    callback: &Callback,
    media: MediaKind,
) {
    fn send<T: Send>(_: T) {}
    fn shared<T: Send + Sync>() {}
    shared::<Client>();
    shared::<ClientBuilder>();
    shared::<Error>();
    shared::<AvatarRequest>();
    shared::<WaitOptions>();
    shared::<SubmitOptions>();
    shared::<PrepareOptions>();
    shared::<DurationModel>();
    send(client.get(task_id));
    send(client.get_once(task_id));
    send(client.credits());
    send(client.download_url(url));
    send(client.preflight(request));
    send(client.preflight_url(media, url));
    send(client.upload_file("face.png"));
    send(client.upload_file_with_progress("face.png", None));
    send(client.upload_base64(b"", "face.png"));
    send(client.upload_from_url(url));
    send(client.prepare(request, None));
    send(client.prepare_with(request, PrepareOptions::new()));
    send(client.submit(request));
    send(client.submit_with(request, SubmitOptions::new()));
    send(client.create_task(request));
    send(client.create_task_with(request, SubmitOptions::new()));
    send(client.wait(task_id, WaitOptions::default()));
    send(client.submit_and_wait(request, WaitOptions::default()));
    send(client.download(task.clone(), "out.mp4"));
    send(client.download_with_progress(url.clone(), "out.mp4", None));
    send(client.confirm(callback));
}
