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
//! - [`Client`], built by [`ClientBuilder`]: configuration (API key held as a
//!   secret, base URLs, timeouts, model, rate limit, retries) and every call.
//! - [`AvatarRequest`]: a request that can only be built valid ([`request`]),
//!   with [`media`] facts (type, size, dimensions, duration) and warnings.
//! - [`upload`]: stream, base64 and URL uploads. [`preflight`]: checking URLs.
//! - [`Task`], [`State`], [`TaskId`]: what recordInfo reports, parsed.
//! - [`Error`]: one error type, a variant per thing a caller acts on differently.
//! - [`retry`]: what is repeated and what never is; [`ratelimit`]: the creation
//!   limiter.
//! - [`wait`]: waiting for a task with an adaptive poll schedule, a deadline,
//!   cancellation and progress; [`Client::submit_and_wait`].
//! - [`webhook`]: verifying and parsing callbacks; `receiver` (feature
//!   `webhook-receiver`): a ready axum endpoint.
//! - [`download`]: atomic, resumable, hashed downloads.
//!
//! Every request runs in a `tracing` span (`kling_request`: operation, method,
//! path, HTTP status, envelope code, duration, task id). The API key is never
//! recorded, printed or put in an error.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod client;
mod config;
pub mod download;
mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod interpret;
mod lifecycle;
pub mod media;
mod operation;
pub mod preflight;
pub mod ratelimit;
#[cfg(feature = "webhook-receiver")]
pub mod receiver;
pub mod request;
pub mod retry;
mod send;
mod serde_secs;
mod submit;
pub mod task;
pub mod upload;
pub mod wait;
pub mod webhook;

pub use client::Client;
pub use config::{
    ClientBuilder, DEFAULT_USER_AGENT, ENV_API_KEY, ENV_BASE_URL, ENV_UPLOAD_BASE_URL,
    install_tls_provider,
};
pub use download::{DownloadSource, Downloaded};
pub use error::{ApiErrorKind, Error, Field, Operation, Result, TransportKind, safe_url};
/// The HTTP client crate this SDK uses (for [`ClientBuilder::http_client`]).
pub use kling_api::reqwest;
pub use lifecycle::{InvalidTaskId, State, TaskId};
pub use media::{MAX_MEDIA_BYTES, MediaFacts, MediaKind};
pub use ratelimit::RateLimit;
pub use request::{AvatarRequest, AvatarRequestBuilder, Media, MediaSource, Model};
pub use retry::RetryPolicy;
pub use submit::{PrepareEvent, PrepareOptions, SubmitOptions, SubmitWait, SubmitWaitReason};
pub use task::Task;
pub use upload::{ProgressFn, UploadedFile};
pub use wait::{
    AdaptivePoll, CancellationToken, ExponentialPoll, PollPolicy, WaitEvent, WaitOptions,
};
pub use webhook::{Callback, VerifyOptions, WebhookError, verify_callback};

/// The generated client this crate is built on, for raw access.
pub use kling_api;
