//! What tests and benchmarks read back ([`Simulator::stats`](crate::Simulator::stats),
//! or `GET /_sim/stats`): requests, tasks, callbacks and faults.

use std::collections::BTreeMap;

use serde::Serialize;

/// A callback the simulator sent or decided not to send.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallbackRecord {
    /// The task.
    pub task_id: String,
    /// Where to.
    pub url: String,
    /// Whether a POST was made.
    pub sent: bool,
    /// The receiver's HTTP status.
    pub status: Option<u16>,
    /// Why it was not sent or failed.
    pub error: Option<String>,
    /// Whether it was signed.
    pub signed: bool,
    /// What the callback faults did to it: `lost`, `duplicate` (the second
    /// copy), `delayed <ms> ms`, `reordered`.
    pub fault: Option<String>,
}

/// One task, as tests see it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskStats {
    /// The id.
    pub task_id: String,
    /// The state now.
    pub state: String,
    /// recordInfo requests for it.
    pub polls: u32,
    /// When it was created (Unix ms).
    pub created_ms: i64,
    /// How long after creation it ended (or will end), in ms.
    pub ends_after_ms: u64,
    /// Whether it has ended.
    pub ended: bool,
    /// From its end to the first recordInfo answer that showed it ended, in ms.
    pub detection_lag_ms: Option<u64>,
    /// Callback POSTs made for it (a duplicated callback counts twice, a lost
    /// one not at all).
    pub callbacks: u32,
}

/// Counters and records for tests and benchmarks (`Simulator::stats`, or
/// `GET /_sim/stats`).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stats {
    /// Requests per endpoint (`createTask`, `recordInfo`, ...).
    pub requests: BTreeMap<String, u64>,
    /// Tasks created.
    pub tasks_created: u64,
    /// Tasks created per input (model and input, as sent): a value above 1 is a
    /// paid task created twice.
    pub tasks_per_input: BTreeMap<String, u32>,
    /// Every task.
    pub tasks: Vec<TaskStats>,
    /// Callbacks.
    pub callbacks: Vec<CallbackRecord>,
    /// Faults injected, by endpoint and kind (`createTask.resetAfter`, ...).
    pub faults: BTreeMap<String, u64>,
    /// Rate-limit refusals.
    pub rate_limited: u64,
    /// Remaining credits of the first key's account.
    pub credits: f64,
}

impl Stats {
    /// Inputs (files and prompt) that more than one task was created for,
    /// with their counts. It counts inputs, not intents: a program that
    /// submits the same inputs twice on purpose finds them here too. To check
    /// that no task was paid twice, compare [`Stats::tasks_created`] with the
    /// tasks the program meant to create.
    pub fn duplicate_inputs(&self) -> Vec<(&str, u32)> {
        self.tasks_per_input
            .iter()
            .filter(|(_, n)| **n > 1)
            .map(|(k, n)| (k.as_str(), *n))
            .collect()
    }

    /// Requests to one endpoint.
    pub fn requests_to(&self, endpoint: &str) -> u64 {
        self.requests.get(endpoint).copied().unwrap_or(0)
    }
}
