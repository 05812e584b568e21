//! Integration tests of the SDK against httpmock on 127.0.0.1.

mod errors;
mod media;
mod ratelimit;
mod retry;
mod secrets;
mod submit;
mod support;
mod upload;
