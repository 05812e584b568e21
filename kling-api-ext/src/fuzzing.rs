//! Entry points for the fuzz targets in `fuzz/` and the property tests (feature
//! `fuzzing`). Not part of the API: they expose the parsers that turn what the
//! service sends into values, so that hostile input can be thrown at them
//! directly.

use crate::error::{Error, Operation};
use crate::task::Task;

/// Maps any HTTP answer (status and body bytes) to the SDK's error, as the
/// client does for non-success answers and unparseable bodies.
pub fn envelope(status: u16, body: &[u8]) -> Error {
    crate::interpret::map_error_body(Operation::GetTask, None, status, None, body)
}

/// Parses a recordInfo body all the way to a [`Task`], as `Client::get` does.
pub fn record(body: &[u8]) -> Result<Task, String> {
    let response: kling_api::types::GetTaskDetailsResponse =
        serde_json::from_slice(body).map_err(|e| e.to_string())?;
    let record = response.data.ok_or("no data")?;
    Task::from_record(record, Operation::GetTask, None).map_err(|e| e.to_string())
}

/// Parses a `resultJson` string into result URLs.
pub fn result_json(text: &str) -> Result<Vec<url::Url>, String> {
    crate::task::parse_result_urls(text)
}

/// The service's callback signature for a task id and timestamp.
pub fn sign_callback(key: &[u8], task_id: &str, timestamp: i64) -> String {
    crate::webhook::sign_callback(key, task_id, timestamp)
}

/// `Retry-After` parsing.
pub fn retry_after(text: &str) -> Option<std::time::Duration> {
    crate::retry::parse_retry_after(
        text,
        std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_800_000_000),
    )
}
