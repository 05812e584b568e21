//! A task as the SDK shows it: an id, an open [`State`], and the result or the
//! failure, parsed from what recordInfo (or a callback) sends.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use url::Url;

use crate::error::{Error, Operation};
pub use crate::lifecycle::{InvalidTaskId, State, TaskId};

/// A task, as recordInfo reports it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Task {
    /// The task id.
    pub task_id: TaskId,
    /// The model, when reported.
    pub model: Option<String>,
    /// The state.
    pub state: State,
    /// The result URLs (the video is the first), parsed from the `resultJson`
    /// string; empty until the task succeeds.
    pub result_urls: Vec<Url>,
    /// The failure code (`failCode`, as text: the service sends strings or
    /// integers); `None` unless the task failed.
    pub fail_code: Option<String>,
    /// The failure message; `None` unless the task failed.
    pub fail_msg: Option<String>,
    /// Processing time (`costTime`, seconds on the wire), once the task has ended.
    #[serde(serialize_with = "crate::serde_secs::option")]
    pub cost_time: Option<Duration>,
    /// When the task was created.
    #[serde(with = "opt_millis")]
    pub create_time: Option<SystemTime>,
    /// When the task ended.
    #[serde(with = "opt_millis")]
    pub complete_time: Option<SystemTime>,
    /// Credits charged, when reported (newer documentation; absent from recorded
    /// traffic).
    pub credits_consumed: Option<f64>,
    /// Progress in percent, when reported (some models only).
    pub progress: Option<i64>,
    /// The `callBackUrl` the task was created with, as the service echoes it
    /// in the record's `param` (the request it received), when it does.
    pub callback_url: Option<String>,
}

impl Task {
    /// The video URL (the first result URL), once the task has succeeded.
    pub fn video_url(&self) -> Option<&Url> {
        self.result_urls.first()
    }

    /// `Ok(self)` if the task succeeded with a result, the typed failure if it
    /// failed, and an error saying it is still running otherwise.
    pub fn into_result(self) -> Result<Task, Error> {
        self.into_result_from(None)
    }

    /// [`into_result`](Self::into_result), naming the call the record came from.
    pub(crate) fn into_result_from(self, operation: Option<Operation>) -> Result<Task, Error> {
        match self.state {
            State::Success => Ok(self),
            State::Fail => Err(Error::GenerationFailed {
                operation,
                task_id: Some(self.task_id),
                fail_code: self.fail_code,
                fail_msg: self.fail_msg,
            }),
            state => Err(Error::NotEnded {
                task_id: self.task_id,
                state,
            }),
        }
    }

    /// Builds the view from the generated record. `operation` and `status` are
    /// for the error if the record is not usable.
    pub(crate) fn from_record(
        record: kling_api::types::TaskRecord,
        operation: Operation,
        asked: Option<&TaskId>,
    ) -> Result<Task, Error> {
        let unexpected = |detail: String, body: String| Error::UnexpectedResponse {
            operation,
            task_id: asked.cloned(),
            status: 200,
            detail,
            body,
            retry_after: None,
        };
        let task_id = TaskId::new(record.task_id.clone()).map_err(|_| {
            unexpected(
                "the record's taskId is not a usable id".into(),
                record.task_id.clone(),
            )
        })?;
        let state = State::parse(&record.state);
        let result_json = record.result_json.unwrap_or_default();
        let result_urls = if state == State::Success {
            parse_result_urls(&result_json).map_err(|detail| {
                unexpected(
                    detail,
                    crate::interpret::body_prefix(result_json.as_bytes()),
                )
            })?
        } else {
            Vec::new()
        };
        let fail_code = match record.fail_code {
            Some(kling_api::types::TaskRecordFailCode::String(s)) => Some(s),
            Some(kling_api::types::TaskRecordFailCode::Int64(n)) => Some(n.to_string()),
            None => None,
        }
        .filter(|s| !s.is_empty());
        let fail_msg = record.fail_msg.filter(|s| !s.is_empty());
        Ok(Task {
            task_id,
            model: record.model,
            state,
            result_urls,
            fail_code,
            fail_msg,
            cost_time: record.cost_time.and_then(seconds),
            create_time: record.create_time.and_then(from_millis),
            complete_time: record.complete_time.and_then(from_millis),
            credits_consumed: record.credits_consumed,
            progress: record.progress,
            callback_url: record.param.as_deref().and_then(callback_url_in_param),
        })
    }
}

/// The `callBackUrl` of a record's `param` (the request as a JSON string).
pub(crate) fn callback_url_in_param(param: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(param).ok()?;
    value
        .get("callBackUrl")
        .and_then(serde_json::Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Unix milliseconds from the service as a time, if representable.
pub(crate) fn from_millis(ms: i64) -> Option<SystemTime> {
    u64::try_from(ms)
        .ok()
        .and_then(|ms| UNIX_EPOCH.checked_add(Duration::from_millis(ms)))
}

/// Seconds from the service as a duration: `None` for negative, NaN, infinite
/// or absurdly large values (`Duration::from_secs_f64` panics on those).
pub(crate) fn seconds(value: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(value).ok()
}

/// Parses `resultJson` (a JSON-encoded string) into its result URLs. A success
/// without a usable URL is an error: there is nothing to download.
pub(crate) fn parse_result_urls(result_json: &str) -> Result<Vec<Url>, String> {
    #[derive(Deserialize)]
    struct ResultJson {
        #[serde(rename = "resultUrls", default)]
        result_urls: Vec<String>,
    }
    if result_json.trim().is_empty() {
        return Err("the task succeeded but resultJson is empty".into());
    }
    // The messages below quote what the service sent: presigned URLs'
    // queries are hidden.
    let parsed: ResultJson = serde_json::from_str(result_json).map_err(|e| {
        crate::error::hide_url_queries(&format!("resultJson is not the expected JSON object: {e}"))
    })?;
    let urls = parsed
        .result_urls
        .iter()
        .map(|u| {
            Url::parse(u).map_err(|e| {
                let shown = match u.split_once('?') {
                    Some((before, _)) => format!("{before}?[query hidden]"),
                    None => u.clone(),
                };
                format!("resultJson holds a URL that does not parse ({shown:?}): {e}")
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if urls.is_empty() {
        return Err("the task succeeded but resultJson has no resultUrls".into());
    }
    if let Some(bad) = urls
        .iter()
        .find(|u| !matches!(u.scheme(), "http" | "https"))
    {
        return Err(format!(
            "resultJson holds a URL that is not http(s): {}",
            crate::error::safe_url(bad)
        ));
    }
    Ok(urls)
}

mod opt_millis {
    use std::time::{SystemTime, UNIX_EPOCH};
    pub fn serialize<S: serde::Serializer>(
        t: &Option<SystemTime>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match t.and_then(|t| t.duration_since(UNIX_EPOCH).ok()) {
            Some(d) => s.serialize_u64(d.as_millis() as u64),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_json_errors_never_quote_a_presigned_query() {
        for result_json in [
            r#"{"resultUrls":"https://b.example.com/v.mp4?X-Amz-Signature=s3cr3t"}"#,
            r#"{"resultUrls":["https://b.example.com:99999/v.mp4?X-Amz-Signature=s3cr3t"]}"#,
            r#"{"resultUrls":["ht tp://b.example.com/v.mp4?X-Amz-Signature=s3cr3t"]}"#,
            r#"{"resultUrls":["ftp://b.example.com/v.mp4?X-Amz-Signature=s3cr3t"]}"#,
        ] {
            let error = parse_result_urls(result_json).unwrap_err();
            assert!(!error.contains("s3cr3t"), "{error}");
            assert!(error.contains("[query hidden]"), "{error}");
        }
    }
    use kling_api::types::{TaskRecord, TaskRecordFailCode};

    fn record(state: &str) -> TaskRecord {
        TaskRecord::builder()
            .task_id("t-1")
            .model(Some("kling/ai-avatar-v1-pro".to_owned()))
            .state(state)
            .result_json(Some(String::new()))
            .create_time(Some(1_777_540_425_139))
            .try_into()
            .unwrap()
    }

    /// Found by `cargo fuzz run record` and `callback`: a huge `costTime`
    /// (finite, e.g. 1e300) made `Duration::from_secs_f64` panic.
    #[test]
    fn absurd_numbers_from_the_service_do_not_panic() {
        let mut r = record("success");
        r.result_json = Some(r#"{"resultUrls":["https://x.test/v.mp4"]}"#.into());
        for cost in [1e300, f64::MAX, -1.0, f64::NAN, f64::INFINITY] {
            r.cost_time = Some(cost);
            let task = Task::from_record(r.clone(), Operation::GetTask, None).unwrap();
            assert_eq!(task.cost_time, None, "{cost}");
        }
        r.create_time = Some(i64::MAX);
        r.complete_time = Some(-5);
        let task = Task::from_record(r, Operation::GetTask, None).unwrap();
        // Far in the future but representable: kept, not a panic.
        assert_eq!(
            task.create_time,
            UNIX_EPOCH.checked_add(Duration::from_millis(i64::MAX as u64))
        );
        assert_eq!(task.complete_time, None);
    }

    #[test]
    fn success_record_gives_urls_and_seconds() {
        let mut r = record("success");
        r.result_json =
            Some(r#"{"resultUrls":["https://x.test/v.mp4"],"firstFrameUrl":[]}"#.into());
        r.cost_time = Some(127.0);
        r.complete_time = Some(1_777_540_552_331);
        let task = Task::from_record(r, Operation::GetTask, None).unwrap();
        assert_eq!(task.state, State::Success);
        assert_eq!(task.video_url().unwrap().as_str(), "https://x.test/v.mp4");
        assert_eq!(task.cost_time, Some(Duration::from_secs(127)));
        assert_eq!(
            task.complete_time
                .unwrap()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_millis(),
            1_777_540_552_331
        );
    }

    #[test]
    fn success_without_a_url_is_an_error_that_keeps_the_body() {
        for bad in [
            "",
            "not json",
            r#"{"resultUrls":[]}"#,
            r#"{"resultUrls":["ftp://x/v.mp4"]}"#,
        ] {
            let mut r = record("success");
            r.result_json = Some(bad.into());
            let error = Task::from_record(r, Operation::GetTask, None).unwrap_err();
            match error {
                Error::UnexpectedResponse { body, .. } => assert_eq!(body, bad),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn fail_codes_of_both_types_become_text() {
        let mut r = record("fail");
        r.fail_code = Some(TaskRecordFailCode::Int64(422));
        r.fail_msg = Some("bad face".into());
        let task = Task::from_record(r, Operation::GetTask, None).unwrap();
        assert_eq!(task.fail_code.as_deref(), Some("422"));
        let error = task.into_result().unwrap_err();
        assert_eq!(error.kind(), "generation_failed");
        assert_eq!(
            error.to_string(),
            "generation failed for task t-1 (failCode 422): bad face"
        );
        let mut r = record("generating");
        r.fail_code = Some(TaskRecordFailCode::String(String::new()));
        r.fail_msg = Some(String::new());
        let task = Task::from_record(r, Operation::GetTask, None).unwrap();
        assert_eq!((&task.fail_code, &task.fail_msg), (&None, &None));
        // Still running is not an input error: it says the state.
        let error = task.into_result().unwrap_err();
        assert!(
            matches!(
                &error,
                Error::NotEnded {
                    state: State::Generating,
                    ..
                }
            ),
            "{error:?}"
        );
        assert_eq!(
            error.to_string(),
            "task t-1 has not ended (state generating)"
        );
    }
}
