#![doc = include_str!("../README.md")]
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

mod cache;
mod call;
mod client;
pub mod config;
pub mod download;
pub mod error;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod generate;
mod interpret;
mod lifecycle;
pub mod limit;
pub mod media;
mod operation;
mod preflight;
pub mod request;
pub mod retry;
mod send;
mod serde_secs;
mod speed;
pub mod submit;
pub mod task;
pub mod upload;
pub mod wait;
pub mod webhook;

pub use call::Call;
pub use client::Client;
pub use config::ClientBuilder;
pub use download::Downloaded;
pub use error::{ApiErrorKind, Error, Field, Result, redact};
pub use generate::Generated;
pub use lifecycle::{State, TaskId};
pub use limit::RateLimit;
pub use media::{MediaFacts, MediaKind};
pub use request::{AvatarRequest, Model};
pub use retry::RetryPolicy;
pub use submit::SubmitOptions;
pub use task::Task;
pub use wait::{CancellationToken, WaitOptions};
pub use webhook::{Callback, VerifyOptions, verify_callback};

/// The generated client this crate is built on, for raw access.
pub use kling_api;
/// The HTTP client crate this SDK uses (for [`ClientBuilder::http_client`]).
pub use kling_api::reqwest;

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
    use std::future::IntoFuture as _;
    fn send<T: Send>(_: T) {}
    fn shared<T: Send + Sync>() {}
    shared::<Client>();
    shared::<ClientBuilder>();
    shared::<Error>();
    shared::<AvatarRequest>();
    shared::<WaitOptions>();
    shared::<SubmitOptions>();
    shared::<submit::PrepareOptions>();
    shared::<upload::TransferOptions>();
    shared::<wait::DurationModel>();
    send(client.get(task_id));
    send(client.get_once(task_id));
    send(client.credits());
    send(client.download_url(url));
    send(client.preflight(request));
    send(client.preflight_url(media, url));
    send(client.upload_file("face.png").into_future());
    send(client.upload_base64(b"", "face.png"));
    send(client.upload_from_url(url));
    send(client.prepare(request).into_future());
    send(client.submit(request).into_future());
    send(client.create_task(request).into_future());
    send(client.wait(task_id, WaitOptions::default()));
    send(client.submit_and_wait(request, WaitOptions::default()));
    send(client.generate(request, "out.mp4"));
    send(client.download(task.clone(), "out.mp4").into_future());
    send(client.confirm(callback));
}
