//! Integration tests of the SDK against httpmock, scripted servers and the
//! simulator (`e2e`), all on 127.0.0.1.

#[cfg(feature = "webhook-receiver")]
mod callbacks;
mod download;
mod e2e;
mod edges;
mod errors;
mod media;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(kling_probe)]
mod probe;
#[cfg(feature = "fuzzing")]
mod properties;
mod ratelimit;
#[cfg(feature = "webhook-receiver")]
mod receiver;
mod retry;
mod secrets;
mod submit;
mod support;
mod upload;
mod wait;
