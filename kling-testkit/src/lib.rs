//! What the workspace's tests share, so that each crate's tests use the same
//! files, the same simulator timings and the same fake servers.
//!
//! - [`asset`], [`data`]: the portrait and voice clip made for the project,
//!   and the derived media files (GIF, JPEG, WebP, MP3, AAC, ...);
//! - [`wav`], [`mp3`], [`png_head`]: media made on the spot, of any length or
//!   size;
//! - [`quick`], [`sim`]: the one simulator preset for tests (tasks that end in
//!   a fraction of a second);
//! - [`ScriptedServer`], [`resetting_server`], [`closed_port`]: HTTP answers in
//!   a given order, connections cut without an answer, a port nobody serves;
//! - [`check_mp4`]: whether bytes are a well-formed MP4.
//!
//! Not published; nothing in it is an API.

use std::path::PathBuf;

use kling_sim::{SimConfig, Simulator};
use serde_json::Value;

mod media;
mod postgres;
mod scripted;

pub use media::{check_mp4, mp3, png_head, wav};
pub use postgres::TestPg;
pub use scripted::{Canned, Received, ScriptedServer, closed_port, resetting_server};

/// A file of `examples/assets/` (`face.png`, `hello.wav`).
pub fn asset(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/assets")
        .join(name)
}

/// A file of `kling-testkit/data/` (`face.gif`, `face.jpg`, `face.webp`,
/// `hello.mp3`, `hello.aac`, `hello.m4a`, `hello.ogg`, `hello.opus`,
/// `hello-audio.mp4`, `video.mp4`).
pub fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("data")
        .join(name)
}

/// The one simulator preset for tests: tasks wait 30-60 ms, queue 30-60 ms
/// and generate for 100-200 ms.
pub fn quick(config: &mut SimConfig) {
    config.lifecycle.waiting_ms = [30, 60];
    config.lifecycle.queuing_ms = [30, 60];
    config.lifecycle.generating_ms = [100, 200];
}

/// A simulator with [`quick`] tasks and `key`, then `change` applied.
pub async fn sim(key: &str, change: impl FnOnce(&mut SimConfig)) -> Simulator {
    Simulator::builder()
        .api_key(key)
        .with(|c| {
            quick(c);
            change(c);
        })
        .start()
        .await
        .expect("the simulator starts on a free loopback port")
}

/// The `X-Webhook-Signature` the service sends for a task id and timestamp
/// (the simulator's signer), for tests of receivers.
pub fn sign_callback(key: &[u8], task_id: &str, timestamp: i64) -> String {
    kling_sim::signature(&String::from_utf8_lossy(key), task_id, timestamp)
}

/// The service's envelope.
pub fn envelope(code: i64, msg: &str, data: Value) -> Value {
    serde_json::json!({"code": code, "msg": msg, "data": data})
}
