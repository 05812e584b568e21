//! A job's row as the rest of the CLI reads it (the tables are
//! `kling_fleet::pg`'s).

use serde_json::Value;

use crate::batch::journal::{JobRecord, JobState};

/// One job's row, as planning reads it.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub line: i32,
    pub state: String,
    pub input: String,
    pub task_id: Option<String>,
    pub task_ids: Vec<String>,
    pub result: Option<Value>,
    pub error: Option<String>,
    pub owner: Option<String>,
    /// Whether `owner`'s lease is still running.
    pub leased: bool,
    /// The nonce of its last intent (webhook mode).
    pub nonce: Option<String>,
    /// The nonces of its intents whose outcome is still unknown.
    pub nonces: Vec<String>,
}

impl Row {
    /// The same facts as the journal's record of the job.
    pub fn record(&self) -> JobRecord {
        let state = match self.state.as_str() {
            "submitting" => JobState::Interrupted {
                input: self.input.clone(),
            },
            "running" => JobState::Submitted {
                task_id: self.task_id.clone().unwrap_or_default(),
            },
            "unknown" => JobState::Unknown {
                error: self.error.clone().unwrap_or_default(),
            },
            "rejected" => {
                let error = self.result.as_ref().map(|r| &r["error"]);
                JobState::Rejected {
                    kind: error
                        .and_then(|e| e["kind"].as_str())
                        .unwrap_or_default()
                        .to_owned(),
                    message: error
                        .and_then(|e| e["message"].as_str())
                        .unwrap_or_default()
                        .to_owned(),
                }
            }
            "finished" => JobState::Finished {
                result: self.result.clone().unwrap_or(Value::Null),
            },
            _ => JobState::New,
        };
        JobRecord {
            nonce: self.nonce.clone(),
            open_nonces: self.nonces.clone(),
            service: None,
            pending: None,
            // The database's clock, not this host's: not compared here.
            intent_at: None,
            state,
            input: Some(self.input.clone()),
            task_ids: self.task_ids.clone(),
        }
    }
}
