//! Callbacks (webhooks): verifying the signature, parsing the body, and
//! confirming by re-reading the task.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hmac::{KeyInit, Mac};
use reqwest::header::HeaderMap;
use serde_json::Value;

use crate::client::Client;
use crate::error::Result;
use crate::lifecycle::TaskId;
use crate::task::Task;

mod callback;

pub use callback::Callback;
use callback::task_id_of;

/// The timestamp header.
pub const TIMESTAMP_HEADER: &str = "x-webhook-timestamp";
/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-webhook-signature";

/// How strict the check is.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifyOptions {
    /// How far the timestamp may be from now, either way (default ±300 s: the
    /// service documents replay protection but no window). `None` turns the
    /// replay check off.
    pub tolerance: Option<Duration>,
}

setters!(VerifyOptions {
    tolerance: Option<Duration> => "How far the timestamp may be from now, either way; `None` turns the replay check off.",
});

impl Default for VerifyOptions {
    fn default() -> Self {
        VerifyOptions {
            tolerance: Some(Duration::from_secs(300)),
        }
    }
}

/// Each way a callback can fail the check.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum WebhookError {
    /// A required header is missing.
    #[error("missing header {0}")]
    MissingHeader(&'static str),
    /// The timestamp is not an integer number of seconds.
    #[error("bad timestamp {0:?}: expected Unix seconds")]
    BadTimestamp(String),
    /// The timestamp is older than the tolerance allows (a replay?).
    #[error("stale timestamp: sent {age_secs} s ago, more than the {tolerance_secs} s allowed")]
    StaleTimestamp {
        /// Seconds since it was sent.
        age_secs: u64,
        /// The tolerance.
        tolerance_secs: u64,
    },
    /// The timestamp is further in the future than the tolerance allows.
    #[error("timestamp {ahead_secs} s in the future, more than the {tolerance_secs} s allowed")]
    FutureTimestamp {
        /// Seconds ahead of now.
        ahead_secs: u64,
        /// The tolerance.
        tolerance_secs: u64,
    },
    /// The signature does not match (wrong key, tampered task id or timestamp).
    #[error("bad signature")]
    BadSignature,
    /// The body is not the callback JSON.
    #[error("unparseable body: {0}")]
    UnparseableBody(String),
    /// No task id in `data.taskId`, `data.task_id` or `taskId`.
    #[error("the body has no task id")]
    MissingTaskId,
    /// The HMAC key is empty: anyone could make a valid signature with it.
    #[error(
        "the webhook HMAC key is empty; give the account's key, or accept unsigned callbacks and confirm each"
    )]
    EmptyKey,
}

/// The signature the service sends for a task id and timestamp (the documented
/// scheme): `X-Webhook-Signature`. For this crate's tests and the fuzz
/// targets; tests of your own receiver can use the simulator's
/// (`kling_sim::signature`).
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) fn sign_callback(key: &[u8], task_id: &str, timestamp: i64) -> String {
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(format!("{task_id}.{timestamp}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

fn header<'a>(
    headers: &'a HeaderMap,
    name: &'static str,
) -> std::result::Result<&'a str, WebhookError> {
    headers
        .get(name)
        .ok_or(WebhookError::MissingHeader(name))?
        .to_str()
        .map(str::trim)
        .map_err(|_| WebhookError::MissingHeader(name))
}

/// Verifies a callback request and parses its body.
///
/// Checks, in order: both headers are present; the timestamp is Unix seconds
/// within `options.tolerance` of `now`; the body parses and names a task; the
/// signature over `taskId + "." + timestamp` matches, compared in constant time.
/// An empty `key` is refused ([`WebhookError::EmptyKey`]).
///
/// confirming by re-reading the task.
///
/// When a task with a `callBackUrl` ends, the service POSTs the task record
/// there, once. With a webhook HMAC key set in the account, every callback
/// carries (`docs/service-notes.md` §5):
///
/// - `X-Webhook-Timestamp`: Unix seconds when sent;
/// - `X-Webhook-Signature`: `base64(HMAC-SHA256(taskId + "." + timestamp, key))`.
///
/// **The body is not signed**, only the task id and the time. A valid signature
/// proves the callback came from the service for that task; it does not prove
/// the body's other fields. Before acting on the result or the failure (paying
/// out, publishing the video), call [`Client::confirm`], which re-reads the task
/// by id. Callbacks are sent once and never retried as far as anyone knows, so
/// pair them with a slow poll as a fallback (the `kling-fleet` crate's
/// receiver and hub do, with [`WaitOptions::callbacks`](crate::WaitOptions::callbacks)).
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use kling_api_ext::{VerifyOptions, verify_callback};
///
/// let body = br#"{"code":200,"msg":"Playground task completed successfully.","data":{
///     "taskId":"task1","model":"kling/ai-avatar-v1-pro","state":"success","param":"{}",
///     "resultJson":"{\"resultUrls\":[\"https://files.example.com/v.mp4\"]}","costTime":89}}"#;
/// let mut headers = kling_api_ext::reqwest::header::HeaderMap::new();
/// headers.insert("x-webhook-timestamp", "1700000000".parse().unwrap());
/// // base64(HMAC-SHA256("task1.1700000000", "secret")), computed with Python's hmac.
/// headers.insert("x-webhook-signature", "Bpi3jhs3QgziHpYQ8zsyMocxMn4eY89lHCR9BLAl8zM=".parse().unwrap());
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_030);
/// let callback = verify_callback(&headers, body, b"secret", now, &VerifyOptions::default()).unwrap();
/// assert_eq!(callback.task.task_id.as_str(), "task1");
/// assert_eq!(callback.task.video_url().unwrap().as_str(), "https://files.example.com/v.mp4");
/// ```
pub fn verify_callback(
    headers: &HeaderMap,
    body: &[u8],
    key: &[u8],
    now: SystemTime,
    options: &VerifyOptions,
) -> std::result::Result<Callback, WebhookError> {
    verify_signature(headers, body, key, now, options)?;
    Callback::parse(body)
}

/// [`verify_callback`]'s checks (key, timestamp window, signature over the
/// task id and the time), returning only the task id: the rest of the body
/// is not signed, so a receiver that confirms each callback with the service
/// need not read it, and a body with an unusual result is still heard.
pub fn verify_signature(
    headers: &HeaderMap,
    body: &[u8],
    key: &[u8],
    now: SystemTime,
    options: &VerifyOptions,
) -> std::result::Result<TaskId, WebhookError> {
    if key.is_empty() {
        return Err(WebhookError::EmptyKey);
    }
    let timestamp_text = header(headers, TIMESTAMP_HEADER)?;
    let signature = header(headers, SIGNATURE_HEADER)?;
    let timestamp: i64 = timestamp_text
        .parse()
        .map_err(|_| WebhookError::BadTimestamp(timestamp_text.to_owned()))?;
    if let Some(tolerance) = options.tolerance {
        let now_secs = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or(0);
        let tolerance_secs = tolerance.as_secs();
        // In i128: a hostile timestamp (i64::MIN) must not overflow.
        let age = i128::from(now_secs) - i128::from(timestamp);
        let saturate = |n: i128| u64::try_from(n).unwrap_or(u64::MAX);
        if age > i128::from(tolerance_secs) {
            return Err(WebhookError::StaleTimestamp {
                age_secs: saturate(age),
                tolerance_secs,
            });
        }
        if -age > i128::from(tolerance_secs) {
            return Err(WebhookError::FutureTimestamp {
                ahead_secs: saturate(-age),
                tolerance_secs,
            });
        }
    }
    let task_id = callback_task_id(body)?;
    let given = base64::engine::general_purpose::STANDARD
        .decode(signature)
        .map_err(|_| WebhookError::BadSignature)?;
    let mut mac =
        hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(format!("{task_id}.{timestamp}").as_bytes());
    // verify_slice compares in constant time.
    mac.verify_slice(&given)
        .map_err(|_| WebhookError::BadSignature)?;
    Ok(task_id)
}

/// The task id of a callback body (`data.taskId`, else `data.task_id`, else
/// a top-level `taskId`), reading nothing else: what a receiver needs when
/// it confirms every callback with the service anyway, so that a body whose
/// other fields are unusual is still heard.
///
/// ```
/// let body = br#"{"code":200,"data":{"taskId":"task1","state":"success","resultJson":""}}"#;
/// assert_eq!(kling_api_ext::webhook::callback_task_id(body).unwrap().as_str(), "task1");
/// ```
pub fn callback_task_id(body: &[u8]) -> std::result::Result<TaskId, WebhookError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| WebhookError::UnparseableBody(e.to_string()))?;
    let task_id = task_id_of(&value).ok_or(WebhookError::MissingTaskId)?;
    TaskId::new(task_id).map_err(|_| WebhookError::MissingTaskId)
}

impl Client {
    /// Re-reads a callback's task from the service. The signature covers only the
    /// task id and the time, so use this before trusting anything else in the
    /// body (the state, the result URLs, the failure).
    pub async fn confirm(&self, callback: &Callback) -> Result<Task> {
        self.get(&callback.task.task_id).await
    }
}

#[cfg(test)]
mod tests;
