//! What the simulator remembers: tasks with their scripted lifecycles, uploads,
//! balances, rate-limit windows, and the counters tests inspect.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::time::Instant;

use crate::config::{LifecycleConfig, RangeMs};
use crate::stats::{CallbackRecord, Stats, TaskStats};

/// How a task ends.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Outcome {
    Success {
        video_seconds: f64,
    },
    Fail {
        code: &'static str,
        msg: &'static str,
    },
}

/// Failure reasons drawn for failing tasks.
const FAILURES: &[(&str, &str)] = &[
    ("500", "Generation failed: the face could not be animated"),
    ("422", "generate playground failed, task id is blank"),
    ("400", "The audio could not be decoded"),
];

#[derive(Clone, Debug)]
pub(crate) struct Task {
    pub id: String,
    pub owner: String,
    pub model: String,
    pub param: String,
    pub callback_url: Option<String>,
    pub created: Instant,
    pub created_ms: i64,
    /// Offsets from `created` at which each state ends.
    pub waiting_end: Duration,
    pub queuing_end: Duration,
    pub end: Duration,
    pub outcome: Outcome,
    pub credits: f64,
    pub null_until: Option<Duration>,
    pub unknown_until: Option<Duration>,
    pub fail_code_int: bool,
    /// `costTime` and `completeTime` on a failed task too (`timesOnFail`).
    pub times_on_fail: bool,
    pub polls: u32,
    pub first_seen_ended: Option<Instant>,
}

impl Task {
    pub fn state(&self, now: Instant) -> &'static str {
        let age = now.saturating_duration_since(self.created);
        if age >= self.end {
            match self.outcome {
                Outcome::Success { .. } => "success",
                Outcome::Fail { .. } => "fail",
            }
        } else if age >= self.queuing_end {
            "generating"
        } else if age >= self.waiting_end {
            "queuing"
        } else {
            "waiting"
        }
    }

    pub fn ended(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.created) >= self.end
    }

    pub fn end_ms(&self) -> i64 {
        self.created_ms + self.end.as_millis() as i64
    }

    pub fn result_url(&self, base: &str) -> String {
        format!("{base}/results/{}.mp4", self.id)
    }

    /// The `data` of recordInfo (and of callbacks), as the service sends it:
    /// fields null until the task ends, `resultJson` a JSON-encoded string,
    /// `costTime` in seconds, times in Unix milliseconds.
    pub fn record(&self, now: Instant, base: &str, state_override: Option<&str>) -> Value {
        let state = state_override.unwrap_or_else(|| self.state(now));
        let ended = self.ended(now);
        let mut data = json!({
            "taskId": self.id,
            "model": self.model,
            "state": state,
            "param": self.param,
            "resultJson": "",
            "failCode": null,
            "failMsg": null,
            "costTime": null,
            "completeTime": null,
            "createTime": self.created_ms,
        });
        if ended {
            // Failed tasks are observed with both null.
            if matches!(self.outcome, Outcome::Success { .. }) || self.times_on_fail {
                data["costTime"] = json!(self.end.as_secs());
                data["completeTime"] = json!(self.end_ms());
            }
            match &self.outcome {
                Outcome::Success { .. } => {
                    data["resultJson"] =
                        json!(json!({"resultUrls": [self.result_url(base)]}).to_string());
                }
                Outcome::Fail { code, msg } => {
                    data["failCode"] = if self.fail_code_int {
                        json!(code.parse::<i64>().unwrap_or(500))
                    } else {
                        json!(code)
                    };
                    data["failMsg"] = json!(msg);
                }
            }
        }
        data
    }
}

/// A stored upload.
#[derive(Clone, Debug)]
pub(crate) struct Upload {
    pub bytes: bytes::Bytes,
    pub mime: String,
    /// For URL uploads off loopback: the URL, never fetched.
    pub source_url: Option<String>,
}

pub(crate) struct SimState {
    pub tasks: HashMap<String, Task>,
    pub order: Vec<String>,
    pub uploads: HashMap<String, Upload>,
    pub credits: HashMap<String, f64>,
    pub windows: HashMap<String, VecDeque<Instant>>,
    pub lifecycle_rng: fastrand::Rng,
    /// Task ids: random per process, as the service's are (a seeded sequence
    /// would repeat ids across runs, and a task id from an earlier run would
    /// name a new task).
    pub id_rng: fastrand::Rng,
    pub requests: BTreeMap<String, u64>,
    pub tasks_per_input: BTreeMap<String, u32>,
    pub callbacks: Vec<CallbackRecord>,
    pub faults: BTreeMap<String, u64>,
    pub rate_limited: u64,
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn draw(rng: &mut fastrand::Rng, range: RangeMs) -> Duration {
    let (lo, hi) = (range[0].min(range[1]), range[0].max(range[1]));
    Duration::from_millis(if lo == hi { lo } else { rng.u64(lo..=hi) })
}

impl SimState {
    pub fn new(keys: &[String], credits: f64, seed: u64) -> Self {
        SimState {
            tasks: HashMap::new(),
            order: Vec::new(),
            uploads: HashMap::new(),
            credits: keys.iter().map(|k| (k.clone(), credits)).collect(),
            windows: HashMap::new(),
            lifecycle_rng: fastrand::Rng::with_seed(seed),
            id_rng: fastrand::Rng::new(),
            requests: BTreeMap::new(),
            tasks_per_input: BTreeMap::new(),
            callbacks: Vec::new(),
            faults: BTreeMap::new(),
            rate_limited: 0,
        }
    }

    /// A new task id: 32 hex characters, like real ones.
    pub fn new_id(&mut self) -> String {
        format!("{:032x}", self.id_rng.u128(..))
    }

    /// Draws a lifecycle. `audio_seconds` is the audio's length when known.
    pub fn schedule(
        &mut self,
        lifecycle: &LifecycleConfig,
        video_seconds: f64,
        audio_seconds: Option<f64>,
    ) -> (Duration, Duration, Duration, Outcome) {
        let rng = &mut self.lifecycle_rng;
        let waiting = draw(rng, lifecycle.waiting_ms);
        let queuing = waiting + draw(rng, lifecycle.queuing_ms);
        let generating = match (lifecycle.generating_ms_per_audio_second, audio_seconds) {
            (Some(rate), Some(audio)) => draw(rng, rate).mul_f64(audio),
            _ => draw(rng, lifecycle.generating_ms),
        };
        let end = queuing + generating;
        let outcome = if rng.f64() < lifecycle.fail_fraction {
            let (code, msg) = FAILURES[rng.usize(..FAILURES.len())];
            Outcome::Fail { code, msg }
        } else {
            Outcome::Success { video_seconds }
        };
        (waiting, queuing, end, outcome)
    }

    /// Sliding-window limit: `Ok` records the request; `Err` is how long until
    /// a slot frees.
    pub fn admit(
        &mut self,
        key: &str,
        max: u32,
        window: Duration,
        now: Instant,
    ) -> Result<(), Duration> {
        if max == 0 {
            return Ok(());
        }
        let log = self.windows.entry(key.to_owned()).or_default();
        while log
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= window)
        {
            log.pop_front();
        }
        if log.len() >= max as usize {
            let oldest = *log.front().expect("full log");
            return Err(window.saturating_sub(now.saturating_duration_since(oldest)));
        }
        log.push_back(now);
        Ok(())
    }

    pub fn count(&mut self, endpoint: &str) {
        *self.requests.entry(endpoint.to_owned()).or_default() += 1;
    }

    pub fn stats(&self, now: Instant, first_key: &str) -> Stats {
        let tasks = self
            .order
            .iter()
            .filter_map(|id| self.tasks.get(id))
            .map(|t| TaskStats {
                task_id: t.id.clone(),
                state: t.state(now).to_owned(),
                polls: t.polls,
                created_ms: t.created_ms,
                ends_after_ms: t.end.as_millis() as u64,
                ended: t.ended(now),
                detection_lag_ms: t.first_seen_ended.map(|seen| {
                    seen.saturating_duration_since(t.created + t.end)
                        .as_millis() as u64
                }),
                callbacks: self
                    .callbacks
                    .iter()
                    .filter(|c| c.sent && c.task_id == t.id)
                    .count() as u32,
            })
            .collect();
        Stats {
            requests: self.requests.clone(),
            tasks_created: self.order.len() as u64,
            tasks_per_input: self.tasks_per_input.clone(),
            tasks,
            callbacks: self.callbacks.clone(),
            faults: self.faults.clone(),
            rate_limited: self.rate_limited,
            credits: self.credits.get(first_key).copied().unwrap_or(0.0),
        }
    }
}

#[cfg(test)]
mod tests;
