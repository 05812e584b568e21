//! The tools' arguments and results. Their doc comments are the JSON
//! schemas' descriptions an agent reads.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The inputs of one video.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct VideoArgs {
    /// The portrait: an http(s) URL, or the absolute path of a local file
    /// inside the server's roots (JPEG, PNG or WebP, at most 10 MB).
    pub image: String,
    /// The voice: an http(s) URL, or the absolute path of a local file inside
    /// the server's roots (MP3, WAV, AAC, M4A or OGG, at most 10 MB). Its
    /// length sets the price.
    pub audio: String,
    /// What the presenter does and how (at most 5,000 characters).
    #[serde(default)]
    pub prompt: Option<String>,
    /// The model id (default: the server's, kling/ai-avatar-v1-pro).
    #[serde(default)]
    pub model: Option<String>,
}

/// A paid call's inputs and limits.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct PaidArgs {
    #[serde(flatten)]
    pub video: VideoArgs,
    /// The most this call may spend, in credits. Required unless the server
    /// has a --max-credits-per-task. Never raise it on your own: ask the user.
    #[serde(default)]
    pub max_credits: Option<f64>,
    /// Makes a repeated call return the first call's task instead of paying
    /// again (default: a hash of the model, prompt and inputs). Give a new
    /// key only to pay for the same video again on purpose.
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// An approved plan's id, for a call above the approval threshold (see
    /// the approval_required error).
    #[serde(default)]
    pub plan_id: Option<String>,
}

/// `generate`'s arguments.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct GenerateArgs {
    #[serde(flatten)]
    pub paid: PaidArgs,
    /// The video's file name in the server's output directory (a plain name
    /// ending in .mp4; default: TASK_ID.mp4).
    #[serde(default)]
    pub file_name: Option<String>,
    /// How long to wait for the video, in seconds (default 1800).
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
}

/// A task.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct TaskArgs {
    /// The task id (from generate, submit or history).
    pub task_id: String,
}

/// `wait`'s arguments.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct WaitArgs {
    /// The task id.
    pub task_id: String,
    /// How long to wait, in seconds (default 1800). The task keeps running
    /// after a timeout: wait again.
    #[serde(default)]
    pub timeout_seconds: Option<u64>,
}

/// `download`'s arguments.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct DownloadArgs {
    /// The task id of a task that succeeded.
    pub task_id: String,
    /// The file name in the server's output directory (default: TASK_ID.mp4).
    #[serde(default)]
    pub file_name: Option<String>,
}

/// `history`'s arguments.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct HistoryArgs {
    /// How many entries, newest first (default 20).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// What `estimate` found; nothing was uploaded or submitted.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EstimateOut {
    /// The estimated price in credits (seconds of audio x the model's price),
    /// when the audio's length is known.
    pub estimated_credits: Option<f64>,
    /// The model the call would use.
    pub model: String,
    /// The model's price per second of audio.
    pub credits_per_second: f64,
    /// What is known of the image (type, size, dimensions).
    pub image: Value,
    /// What is known of the audio (type, size, duration).
    pub audio: Value,
    /// Things that may make the result worse; the call is still allowed.
    pub warnings: Vec<String>,
    /// The cap a paid call gets when it gives no max_credits.
    pub server_cap: Option<f64>,
    /// Calls counted above this many credits need a human's approval.
    pub approval_above: Option<f64>,
    /// What is left of today's (UTC) budget, when one is set.
    pub daily_budget_left: Option<f64>,
}

/// A finished `generate`.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GenerateOut {
    /// Where the video is saved.
    pub path: String,
    pub task_id: String,
    pub state: String,
    /// Credits the service reports it consumed, else the estimate.
    pub credits: Option<f64>,
    pub estimated_credits: Option<f64>,
    /// The size of the video in bytes.
    pub bytes: u64,
    pub sha256: String,
    /// True when an identical earlier call's task was returned (nothing new
    /// was paid for).
    pub deduplicated: bool,
}

/// A submitted task.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubmitOut {
    pub task_id: String,
    pub estimated_credits: Option<f64>,
    /// True when an identical earlier call's task was returned.
    pub deduplicated: bool,
}

/// What the service says of a task.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusOut {
    pub task_id: String,
    /// waiting, queuing, generating, success or fail.
    pub state: String,
    /// Whether the task has ended (success or fail).
    pub ended: bool,
    /// The video's URL, without its query; use `download` to save it.
    pub video_url: Option<String>,
    pub fail_code: Option<String>,
    pub fail_msg: Option<String>,
    pub credits_consumed: Option<f64>,
}

/// A saved video.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DownloadOut {
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

/// The account's balance and today's budget.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreditsOut {
    pub balance: f64,
    pub daily_budget: Option<f64>,
    /// Spent or reserved today (UTC) by every kling process of this machine
    /// on this service.
    pub spent_today: f64,
    pub daily_budget_left: Option<f64>,
}

/// One paid request in the ledger.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryEntry {
    /// When it was made (ms since the Unix epoch).
    pub at: u64,
    pub task_id: Option<String>,
    /// What it counts now, in credits.
    pub credits: f64,
    /// How it was settled (creditsConsumed, estimate, notTaken, failed), or
    /// null while it runs or its outcome is unknown.
    pub settled: Option<String>,
    /// Who made it (mcp generate, generate, batch JOB, ...).
    pub by: String,
}

/// The newest paid requests.
#[derive(Debug, Serialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryOut {
    pub entries: Vec<HistoryEntry>,
}
