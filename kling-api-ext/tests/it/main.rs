//! Integration tests of the SDK against httpmock, scripted servers and the
//! simulator (`e2e`), all on 127.0.0.1.

mod download;
mod e2e;
mod edges;
mod errors;
mod media;
#[cfg(kling_probe)]
mod probe;
#[cfg(feature = "fuzzing")]
mod properties;
mod ratelimit;
mod retry;
mod secrets;
mod submit;
mod support;
mod upload;
mod wait;
