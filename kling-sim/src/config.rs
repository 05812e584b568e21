//! The simulator's settings, all optional in a JSON file (camelCase keys).
//!
//! ```json
//! {
//!   "apiKeys": ["sim-key"],
//!   "credits": 10000,
//!   "rateLimit": {"max": 20, "windowMs": 10000, "mode": "http429", "retryAfter": true},
//!   "lifecycle": {"seed": 1, "waitingMs": [300, 800], "queuingMs": [500, 1500],
//!                 "generatingMs": [2000, 5000], "failFraction": 0.05},
//!   "webhookHmacKey": "secret",
//!   "faults": {"seed": 7, "createTask": {"resetAfter": 0.05}, "recordInfo": {"html502": 0.1},
//!              "callback": {"lost": 0.1, "duplicated": 0.05, "delayed": 0.1, "delayMs": [500, 3000]}}
//! }
//! ```

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Everything the simulator can be told. `Default` is a service that behaves
/// well, with quick tasks, suitable for demos (`kling --sim`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct SimConfig {
    /// Accepted API keys (`Authorization: Bearer <key>`); others get code 401.
    pub api_keys: Vec<String>,
    /// Starting balance, in credits.
    pub credits: f64,
    /// Model ids createTask accepts, with their price in credits per generated
    /// second (kie.ai's catalogue: 16 for Pro, 8 for Standard).
    pub models: BTreeMap<String, f64>,
    /// Length of a generated video when the audio is not one the simulator
    /// stored (it never fetches other URLs), in seconds.
    pub default_video_seconds: f64,
    /// Refuse requests without a `User-Agent` with HTTP 403 `error code: 1010`,
    /// as the service's proxy is reported to do.
    pub require_user_agent: bool,
    /// Largest accepted upload, in bytes.
    pub max_upload_bytes: u64,
    /// The per-key creation rate limit.
    pub rate_limit: RateLimitConfig,
    /// How long tasks take and how often they fail.
    pub lifecycle: LifecycleConfig,
    /// Answer the errors the documentation's exports declare with that HTTP
    /// status too, the envelope unchanged: recordInfo 400, 401, 404 (an unknown
    /// task is then `404 Task not found`, not `422 recordInfo is null`) and
    /// 429; the uploads 400 and 401. Off (the default): HTTP 200 with the
    /// status in `code`, as recorded traffic shows.
    pub http_error_status: bool,
    /// Key for callback signatures (`X-Webhook-Signature`); none: callbacks are
    /// sent unsigned.
    pub webhook_hmac_key: Option<String>,
    /// Send callbacks to hosts other than loopback (off: such callbacks are
    /// recorded as not sent).
    pub callbacks_off_loopback: bool,
    /// Injected faults.
    pub faults: FaultConfig,
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            api_keys: vec!["sim-key".to_owned()],
            credits: 10_000.0,
            models: [
                ("kling/ai-avatar-v1-pro", 16.0),
                ("kling/ai-avatar-pro", 16.0),
                ("kling/ai-avatar-standard", 8.0),
                // What a third-party MCP server and kie-go's registry send.
                ("kling/v1-avatar-standard", 8.0),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect(),
            default_video_seconds: 5.0,
            require_user_agent: true,
            max_upload_bytes: 200 * 1024 * 1024,
            rate_limit: RateLimitConfig::default(),
            lifecycle: LifecycleConfig::default(),
            http_error_status: false,
            webhook_hmac_key: None,
            callbacks_off_loopback: false,
            faults: FaultConfig::default(),
        }
    }
}

/// How a rate-limited createTask is answered: the documentation says both.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum RateLimitMode {
    /// HTTP 429 with `Retry-After` (seconds until a slot frees).
    #[default]
    Http429,
    /// HTTP 200 with `{"code":429,"msg":"Rate limit exceeded"}`, no header.
    Envelope429,
}

/// The per-key creation limit.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Creations allowed per window (0 turns the limit off).
    pub max: u32,
    /// The window, in milliseconds; any window of this length counts.
    pub window_ms: u64,
    /// How a refusal looks.
    pub mode: RateLimitMode,
    /// Whether an HTTP 429 refusal carries `Retry-After` (the documentation
    /// does not say; clients must cope without).
    pub retry_after: bool,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig {
            max: 20,
            window_ms: 10_000,
            mode: RateLimitMode::Http429,
            retry_after: true,
        }
    }
}

/// A duration drawn uniformly from `[min, max]` milliseconds.
pub type RangeMs = [u64; 2];

/// How long each state lasts, drawn per task from a seeded generator.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct LifecycleConfig {
    /// Seed of the generator (the same seed and order of creation give the same
    /// durations and outcomes).
    pub seed: u64,
    /// Time in `waiting`.
    pub waiting_ms: RangeMs,
    /// Time in `queuing`.
    pub queuing_ms: RangeMs,
    /// Time in `generating`.
    pub generating_ms: RangeMs,
    /// Time in `generating` per second of audio, when the audio is a WAV file
    /// the simulator stored (so it knows its length); replaces `generatingMs`
    /// for those tasks. Models generation that scales with the video's length.
    pub generating_ms_per_audio_second: Option<RangeMs>,
    /// Fraction of tasks that end in `fail`.
    pub fail_fraction: f64,
    /// How long a result URL works after its task ended (the service's expire
    /// after about 24 hours); past that it answers 404, and only a link from
    /// download-url serves the file. `None` (the default): never expires.
    pub result_url_ttl_ms: Option<u64>,
    /// Give failed tasks `costTime` and `completeTime` too. Off (the default):
    /// null, as observed; successes always have both.
    pub times_on_fail: bool,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        LifecycleConfig {
            seed: 1,
            waiting_ms: [300, 800],
            queuing_ms: [500, 1500],
            generating_ms: [2000, 5000],
            generating_ms_per_audio_second: None,
            fail_fraction: 0.0,
            result_url_ttl_ms: None,
            times_on_fail: false,
        }
    }
}

/// Probabilities of faults per endpoint, with their parameters.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultConfig {
    /// Seed of the fault generator.
    pub seed: u64,
    /// createTask.
    pub create_task: EndpointFaults,
    /// recordInfo.
    pub record_info: EndpointFaults,
    /// credit and download-url.
    pub common: EndpointFaults,
    /// The three uploads.
    pub upload: EndpointFaults,
    /// Result and uploaded file downloads.
    pub download: EndpointFaults,
    /// Per task at creation: report `recordInfo is null` for
    /// [`null_record_ms`](Self::null_record_ms) after creation.
    pub null_record: f64,
    /// How long a task stays invisible when `null_record` strikes.
    pub null_record_ms: u64,
    /// Per task at creation: report an unknown state for
    /// [`unknown_state_ms`](Self::unknown_state_ms) after creation.
    pub unknown_state: f64,
    /// How long the unknown state lasts.
    pub unknown_state_ms: u64,
    /// Per task at creation: send `failCode` as an integer if it fails.
    pub fail_code_int: f64,
    /// Delay of a slow answer, in milliseconds.
    pub slow_ms: u64,
    /// Whether the `rateLimited` fault sends `Retry-After`.
    pub retry_after_on_fault: bool,
    /// What happens to callbacks on their way.
    pub callback: CallbackFaults,
}

/// Probabilities (0 to 1) of what can happen to a task's callback, drawn per
/// task when it ends (from the fault generator, so seeded). Several can strike
/// the same callback, except that a lost one is not sent at all.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct CallbackFaults {
    /// Never sent (recorded as not sent).
    pub lost: f64,
    /// Sent twice: the same request (headers, signature and body) again,
    /// `duplicateAfterMs` after the first.
    pub duplicated: f64,
    /// Sent late, by a delay drawn from `delayMs`.
    pub delayed: f64,
    /// Held back until another task's callback has been sent (or until
    /// `delayMs`'s upper bound has passed), so it arrives after a callback
    /// of a task that ended later.
    pub reordered: f64,
    /// The delay of a delayed callback, drawn uniformly from `[min, max]` ms.
    pub delay_ms: RangeMs,
    /// How long after the first a duplicate is sent, in ms.
    pub duplicate_after_ms: u64,
}

impl Default for CallbackFaults {
    fn default() -> Self {
        CallbackFaults {
            lost: 0.0,
            duplicated: 0.0,
            delayed: 0.0,
            reordered: 0.0,
            delay_ms: [500, 3000],
            duplicate_after_ms: 200,
        }
    }
}

/// Probabilities (0 to 1) of each fault on one endpoint. Faults that stop a
/// request are drawn in the order listed; one at most applies.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, rename_all = "camelCase", deny_unknown_fields)]
pub struct EndpointFaults {
    /// Close the connection before doing anything (no task is created).
    pub reset_before: f64,
    /// Do the work (create the task), then close the connection unanswered.
    pub reset_after: f64,
    /// Do the work, then answer after `slowMs`.
    pub slow_after: f64,
    /// HTTP 502 with a Cloudflare-like HTML page (nothing done).
    pub html502: f64,
    /// HTTP 520 with a Cloudflare-like HTML page (nothing done).
    pub html520: f64,
    /// HTTP 200 with code 500 (nothing done).
    pub envelope500: f64,
    /// HTTP 200 with code 455, maintenance (nothing done).
    pub envelope455: f64,
    /// A 429 in the rate-limit mode's form (nothing done).
    pub rate_limited: f64,
    /// Name the envelope's message `message` instead of `msg`.
    pub message_alias: f64,
    /// Downloads: send fewer bytes than `Content-Length`, then close.
    pub truncate: f64,
}

impl SimConfig {
    /// Reads a JSON config file.
    pub fn from_file(path: &std::path::Path) -> Result<SimConfig, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let config: SimConfig =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        config
            .check()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(config)
    }

    /// Refuses fault settings the simulator cannot act on, rather than
    /// accepting them and doing nothing: probabilities outside 0 to 1, a
    /// truncated body anywhere but downloads, and envelope or post-work faults
    /// on downloads (which answer bytes, not the envelope).
    pub fn check(&self) -> Result<(), String> {
        let f = &self.faults;
        let endpoints = [
            ("createTask", &f.create_task),
            ("recordInfo", &f.record_info),
            ("common", &f.common),
            ("upload", &f.upload),
            ("download", &f.download),
        ];
        for (name, e) in endpoints {
            let all = [
                ("resetBefore", e.reset_before),
                ("resetAfter", e.reset_after),
                ("slowAfter", e.slow_after),
                ("html502", e.html502),
                ("html520", e.html520),
                ("envelope500", e.envelope500),
                ("envelope455", e.envelope455),
                ("rateLimited", e.rate_limited),
                ("messageAlias", e.message_alias),
                ("truncate", e.truncate),
            ];
            for (fault, p) in all {
                if !(0.0..=1.0).contains(&p) {
                    return Err(format!(
                        "faults.{name}.{fault} = {p}: a probability, 0 to 1"
                    ));
                }
                let unsupported = if name == "download" {
                    matches!(
                        fault,
                        "resetAfter"
                            | "envelope500"
                            | "envelope455"
                            | "rateLimited"
                            | "messageAlias"
                    )
                } else {
                    fault == "truncate"
                };
                if unsupported && p > 0.0 {
                    return Err(format!(
                        "faults.{name}.{fault}: not a fault this endpoint can have (truncate is for downloads; downloads take resetBefore, slowAfter, html502, html520, truncate)"
                    ));
                }
            }
        }
        for (fault, p) in [
            ("nullRecord", f.null_record),
            ("unknownState", f.unknown_state),
            ("failCodeInt", f.fail_code_int),
            ("callback.lost", f.callback.lost),
            ("callback.duplicated", f.callback.duplicated),
            ("callback.delayed", f.callback.delayed),
            ("callback.reordered", f.callback.reordered),
            ("lifecycle.failFraction", self.lifecycle.fail_fraction),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(format!("{fault} = {p}: a probability, 0 to 1"));
            }
        }
        Ok(())
    }

    /// Scales every lifecycle duration by `factor` (tests use small factors).
    pub fn scaled(mut self, factor: f64) -> SimConfig {
        let scale = |r: RangeMs| [(r[0] as f64 * factor) as u64, (r[1] as f64 * factor) as u64];
        self.lifecycle.waiting_ms = scale(self.lifecycle.waiting_ms);
        self.lifecycle.queuing_ms = scale(self.lifecycle.queuing_ms);
        self.lifecycle.generating_ms = scale(self.lifecycle.generating_ms);
        self.lifecycle.generating_ms_per_audio_second =
            self.lifecycle.generating_ms_per_audio_second.map(scale);
        self
    }
}
