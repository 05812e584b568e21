//! A job's row of the store as the rest of the CLI reads it: its journal
//! record.

use serde_json::Value;

use crate::batch::journal::{JobRecord, JobState};

use kling_fleet::jobs::Row;

/// The same facts as the journal's record of the job.
pub fn record_of(row: &Row) -> JobRecord {
    let this = row;
    {
        let state = match this.state.as_str() {
            "submitting" => JobState::Interrupted {
                input: this.input.clone(),
            },
            "running" => JobState::Submitted {
                task_id: this.task_id.clone().unwrap_or_default(),
            },
            "unknown" => JobState::Unknown {
                error: this.error.clone().unwrap_or_default(),
            },
            "rejected" => {
                let error = this.result.as_ref().map(|r| &r["error"]);
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
                result: this.result.clone().unwrap_or(Value::Null),
            },
            _ => JobState::New,
        };
        JobRecord {
            nonce: this.nonce.clone(),
            open_nonces: this.nonces.clone(),
            service: None,
            pending: None,
            // The database's clock, not this host's: not compared here.
            intent_at: None,
            state,
            input: Some(this.input.clone()),
            task_ids: this.task_ids.clone(),
        }
    }
}
