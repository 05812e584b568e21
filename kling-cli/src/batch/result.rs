//! A line of `results.jsonl`: how one manifest line ended. Built and read in
//! this one shape; the journal keeps the same value for a finished job.

use serde::{Deserialize, Serialize};

/// An error as a result line shows it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorLine {
    /// [`kling_api_ext::Error::kind`] (or the CLI's, for its own errors).
    #[serde(default)]
    pub kind: String,
    /// The service's failure code, for a failed task.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_code: Option<String>,
    /// The message.
    #[serde(default)]
    pub message: Option<String>,
}

/// How a manifest line ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "camelCase")]
pub enum ResultLine {
    /// The video is saved.
    #[serde(rename_all = "camelCase")]
    Done {
        id: String,
        #[serde(default)]
        task_id: String,
        #[serde(default)]
        state: String,
        #[serde(default)]
        output: String,
        #[serde(default)]
        bytes: u64,
        #[serde(default)]
        sha256: String,
        /// Seconds, as the service reports `costTime`.
        #[serde(default)]
        cost_time: Option<f64>,
        #[serde(default)]
        result_urls: Vec<String>,
    },
    /// The task ended in `fail`.
    #[serde(rename_all = "camelCase")]
    Failed {
        id: String,
        #[serde(default)]
        task_id: String,
        #[serde(default)]
        state: String,
        #[serde(default)]
        error: ErrorLine,
    },
    /// Refused before any task existed, and would be again.
    Rejected {
        id: String,
        #[serde(default)]
        error: ErrorLine,
    },
    /// The manifest line itself is not a job.
    Invalid {
        line: usize,
        #[serde(default)]
        error: ErrorLine,
    },
}

impl ResultLine {
    /// A saved video.
    pub fn done(
        id: &str,
        task: &kling_api_ext::Task,
        saved: &kling_api_ext::Downloaded,
    ) -> ResultLine {
        ResultLine::Done {
            id: id.to_owned(),
            task_id: task.task_id.to_string(),
            state: kling_api_ext::State::Success.to_string(),
            output: saved.path.display().to_string(),
            bytes: saved.bytes,
            sha256: saved.sha256.clone(),
            cost_time: task.cost_time.map(|d| d.as_secs_f64()),
            result_urls: task.result_urls.iter().map(ToString::to_string).collect(),
        }
    }

    /// A failed task.
    pub fn failed(
        id: &str,
        task_id: &kling_api_ext::TaskId,
        fail_code: Option<String>,
        fail_msg: Option<String>,
    ) -> ResultLine {
        ResultLine::Failed {
            id: id.to_owned(),
            task_id: task_id.to_string(),
            state: kling_api_ext::State::Fail.to_string(),
            error: ErrorLine {
                kind: "generation_failed".into(),
                fail_code,
                // It may quote the inputs (presigned URLs): shown safely.
                message: fail_msg.map(|m| kling_api_ext::redact(&m)),
            },
        }
    }

    /// A refusal, final for this input.
    pub fn rejected(id: &str, kind: &str, message: &str) -> ResultLine {
        ResultLine::Rejected {
            id: id.to_owned(),
            error: ErrorLine {
                kind: kind.to_owned(),
                fail_code: None,
                message: Some(message.to_owned()),
            },
        }
    }

    /// A manifest line that is not a job.
    pub fn invalid(line: usize, reason: &str) -> ResultLine {
        ResultLine::Invalid {
            line,
            error: ErrorLine {
                kind: "invalid_input".into(),
                fail_code: None,
                message: Some(reason.to_owned()),
            },
        }
    }

    /// As `results.jsonl` and the journal hold it.
    pub fn to_value(&self) -> serde_json::Value {
        // A derived Serialize of strings, numbers and lists cannot fail.
        serde_json::to_value(self).unwrap_or_default()
    }

    /// A line as the journal kept it (`None` if it is none of these shapes).
    pub fn read(value: &serde_json::Value) -> Option<ResultLine> {
        serde_json::from_value(value.clone()).ok()
    }

    /// Whether the job made its video.
    pub fn is_done(&self) -> bool {
        matches!(self, ResultLine::Done { .. })
    }

    /// Whether the job's task failed.
    pub fn is_failed(&self) -> bool {
        matches!(self, ResultLine::Failed { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The shapes `results.jsonl` has always had, read and written back.
    #[test]
    fn lines_keep_their_documented_shape() {
        let failed = ResultLine::failed(
            "a",
            &kling_api_ext::TaskId::new("t-1").unwrap(),
            Some("400".into()),
            Some("bad audio".into()),
        );
        assert_eq!(
            serde_json::to_value(&failed).unwrap(),
            json!({"id": "a", "status": "failed", "taskId": "t-1", "state": "fail",
                   "error": {"kind": "generation_failed", "failCode": "400", "message": "bad audio"}})
        );
        assert_eq!(
            serde_json::to_value(ResultLine::rejected("b", "rejected", "no")).unwrap(),
            json!({"id": "b", "status": "rejected", "error": {"kind": "rejected", "message": "no"}})
        );
        assert_eq!(
            serde_json::to_value(ResultLine::invalid(7, "no image")).unwrap(),
            json!({"line": 7, "status": "invalid", "error": {"kind": "invalid_input", "message": "no image"}})
        );
        // A journal written by an earlier version, or by hand, still reads.
        let old: ResultLine = serde_json::from_value(json!({"id": "e", "status": "done"})).unwrap();
        assert!(old.is_done());
        let old: ResultLine =
            serde_json::from_value(json!({"id": "f", "status": "failed", "extra": 1})).unwrap();
        assert!(old.is_failed());
    }
}
