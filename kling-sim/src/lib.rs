//! A faithful local simulator of the Apikley Kling AI Avatar service, for tests,
//! examples, benchmarks and the CLI's `--sim` mode. No credits are spent and
//! nothing leaves the machine: it listens on 127.0.0.1 only, and never fetches
//! a URL off loopback.
//!
//! It behaves like the service, quirks included: errors as HTTP 200 with the
//! status in the body's `code` (or, with `httpErrorStatus`, the documented
//! HTTP 4xx too); `recordInfo is null` for unknown ids; fields `null` until a
//! task ends (`costTime` and `completeTime` stay null for a failed task, as
//! observed); `resultJson` a JSON-encoded string; `costTime` in seconds;
//! Bearer keys; the model id and required fields checked; a per-key
//! creation limit (20 per 10 s by default) answered as HTTP 429 or as code 429;
//! credits charged per generated second; tasks that go
//! `waiting → queuing → generating → success | fail` on a seeded schedule; a
//! real MP4 as the result; signed callbacks, also for tasks whose create
//! answer was cut or stalled (the task exists, so the service calls back);
//! faults injected per endpoint with seeded probabilities; and callbacks lost,
//! duplicated, delayed or reordered on their way (`faults.callback`), counted
//! per task in [`TaskStats::callbacks`].
//!
//! By default there are no faults: it answers as the service does on a good
//! day.
//!
//! ```no_run
//! use kling_sim::Simulator;
//!
//! # async fn demo() -> std::io::Result<()> {
//! let sim = Simulator::builder().api_key("test-key").start().await?;
//! // Point a client at sim.base_url() and sim.upload_base_url(), run code
//! // that means to create 2 tasks, then:
//! assert_eq!(sim.stats().tasks_created, 2, "a paid task was created twice, or not at all");
//! # Ok(()) }
//! ```
//!
//! Faults are asked for, seeded: here 1 task in 10 fails, and 1 create answer
//! in 20 is cut after the task was taken (`SubmitOutcomeUnknown` for the SDK).
//!
//! ```no_run
//! use kling_sim::{SimConfig, Simulator};
//!
//! # async fn demo() -> std::io::Result<()> {
//! let sim = Simulator::builder()
//!     .with(|c: &mut SimConfig| {
//!         c.lifecycle.fail_fraction = 0.1;
//!         c.faults.create_task.reset_after = 0.05;
//!     })
//!     .start()
//!     .await?;
//! # Ok(()) }
//! ```
//!
//! # Endpoints
//!
//! | path | what |
//! |---|---|
//! | `POST /api/v1/jobs/createTask` | creates a task (`taskId` and `recordId`) |
//! | `GET /api/v1/jobs/recordInfo?taskId=` | the task record |
//! | `GET /api/v1/chat/credit` | the balance |
//! | `POST /api/v1/common/download-url` | a temporary link for a file it generated |
//! | `POST /file-upload/api/file-stream-upload`, `…/file-base64-upload`, `…/file-url-upload` | uploads |
//! | `GET /file-upload/files/{path}`, `GET /results/{taskId}.mp4` | stored files and result videos (`Range` supported) |
//! | `GET /_sim/stats` | the [`Stats`], for tests in another process |

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod callback;
pub mod config;
mod handlers;
mod server;
mod shared;
mod state;
mod stats;

pub use callback::signature;
pub use config::{
    EndpointFaults, FaultConfig, LifecycleConfig, RateLimitConfig, RateLimitMode, SimConfig,
};
pub use handlers::{JSON_BODY_LIMIT, RESULT_VIDEO};

/// A sample portrait (PNG, 480 × 600) that the service accepts: for examples
/// and tests that need a real file.
pub const SAMPLE_PORTRAIT: &[u8] = include_bytes!("../assets/face.png");

/// A sample voice clip (WAV, about 3 s) that the service accepts.
pub const SAMPLE_VOICE: &[u8] = include_bytes!("../assets/hello.wav");
pub use server::{HEADER_READ_TIMEOUT, Simulator, SimulatorBuilder};
pub use stats::{CallbackRecord, Stats, TaskStats};
