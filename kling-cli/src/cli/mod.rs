//! The command line: global options, commands and their arguments. Each doc
//! comment is the help text.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use kling_api_ext::Model;

mod batch;
mod mcp;
mod values;
mod webhook;
pub use batch::BatchArgs;
pub use mcp::McpArgs;
#[cfg(feature = "mcp")]
pub use mcp::McpCommand;
pub(crate) use values::parse_credits;
pub(crate) use values::parse_duration;
pub use values::{LimitStore, RateLimitArg, parse_model, parse_set};
use values::{parse_limit_store, parse_rate_limit};
pub use webhook::WebhookArgs;

pub const EXIT_CODES: &str = "\
Exit codes:
  0    success
  1    a local error (a file could not be written, the job store cannot be reached)
  2    usage or invalid input: nothing was sent
  3    service error: authentication, credits, rejected, unreachable
  4    the task failed
  5    timed out: the task may still finish (resume with `kling wait TASK_ID`)
  6    submit outcome unknown: the task may exist (do not resubmit blindly)
  130  interrupted (Ctrl-C): a task keeps running; the resume command is printed";

/// Generate talking-head videos with Kling AI Avatar V1 Pro on Apikley.
///
/// Try it offline first: `kling --sim generate --image face.png --audio hello.wav`
/// runs against a built-in simulator (no key, no credits). With a key
/// (APIKLEY_API_KEY), drop --sim to use the real service.
///
/// Settings can be kept as named profiles in a config file
/// (~/.config/kling/config.toml, or KLING_CONFIG): `[profiles.NAME]` with
/// base_url, upload_base_url, api_key_file and model; chosen with --profile
/// (the profile "default" when none is chosen).
#[derive(Debug, Parser)]
#[command(name = "kling", version, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// API key (never printed) [env: APIKLEY_API_KEY]
    #[arg(
        long,
        global = true,
        env = "APIKLEY_API_KEY",
        hide_env = true,
        hide_env_values = true
    )]
    pub api_key: Option<String>,
    /// Read the API key from this file (takes precedence over --api-key)
    #[arg(long, global = true, value_name = "PATH")]
    pub api_key_file: Option<PathBuf>,
    /// API base URL [env: APIKLEY_BASE_URL]
    #[arg(
        long,
        global = true,
        env = "APIKLEY_BASE_URL",
        hide_env = true,
        value_name = "URL"
    )]
    pub base_url: Option<String>,
    /// Upload base URL [env: APIKLEY_UPLOAD_BASE_URL]
    #[arg(
        long,
        global = true,
        env = "APIKLEY_UPLOAD_BASE_URL",
        hide_env = true,
        value_name = "URL"
    )]
    pub upload_base_url: Option<String>,
    /// Use this profile of the config file (base URLs, key file, model)
    /// [env: KLING_PROFILE]
    #[arg(
        long,
        global = true,
        env = "KLING_PROFILE",
        hide_env = true,
        value_name = "NAME"
    )]
    pub profile: Option<String>,
    /// Use a built-in simulator on 127.0.0.1 instead of the service (no key,
    /// no credits; the video is a placeholder)
    #[arg(long, global = true)]
    pub sim: bool,
    /// Time for one API request, answer included (e.g. 30s)
    #[arg(long, global = true, value_name = "DURATION", value_parser = parse_duration, default_value = "30s")]
    pub request_timeout: Duration,
    /// Task creations allowed per window, client side, e.g. 20/10s (the
    /// service's documented limit, the default), or "off"
    #[arg(long, global = true, value_name = "N/DURATION", value_parser = parse_rate_limit, default_value = "20/10s")]
    pub rate_limit: RateLimitArg,
    /// Where creations are counted against that limit: "host" (a file in the
    /// state directory, so every kling process of this user on this machine
    /// shares one window), "process" (this process only), or a postgres://
    /// URL (every process on every host using that database)
    /// (default: host; with `batch --store`, that database)
    #[arg(long, global = true, value_name = "STORE", env = "KLING_RATE_LIMIT_STORE", value_parser = parse_limit_store, hide_env_values = true)]
    pub rate_limit_store: Option<LimitStore>,
    /// Refuse a paid request that would take today's (UTC) spending on
    /// this service past N credits, counted by every kling process of this
    /// machine in the state directory's ledger (also `daily_budget` in the
    /// config file's profile)
    #[arg(long, global = true, value_name = "N", value_parser = parse_credits)]
    pub daily_budget: Option<f64>,
    /// One JSON document on stdout (the default when stdout is not a terminal)
    #[arg(long, global = true, overrides_with = "no_json")]
    pub json: bool,
    /// Human-readable output even when stdout is not a terminal
    #[arg(long, global = true, overrides_with = "json")]
    pub no_json: bool,
    /// More log output on stderr (-v, -vv, -vvv)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr, no progress bars
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Whether the key came from `--api-key` (visible in `ps`), set after parsing.
    #[arg(skip)]
    pub api_key_from_command_line: bool,
    /// Whether the command handles Ctrl-C itself (it may have a createTask on
    /// the wire, or a wait to stop); others exit at the first one. Set after parsing.
    #[arg(skip)]
    pub graceful_interrupt: bool,
    /// The config file's profile in effect, set after parsing.
    #[arg(skip)]
    pub selected_profile: Option<crate::config::Selected>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check, upload, submit, wait and download: one video, start to finish
    Generate(GenerateArgs),
    /// Check, upload and submit; print the task id
    Submit(SubmitArgs),
    /// Show a task's state
    Status(TaskArgs),
    /// Wait for a task to end, optionally downloading its video
    Wait(WaitArgs),
    /// Download a finished task's video
    Download(DownloadArgs),
    /// Upload a local file; print its URL
    Upload(UploadArgs),
    /// Show the account's remaining credits
    Credits,
    /// Run many jobs from a JSONL manifest, crash-safe and resumable
    Batch(BatchArgs),
    /// List the paid requests this CLI sent, newest first (no key needed)
    History(HistoryArgs),
    /// Store an API key (read from standard input) in a file only you can read
    Login,
    /// Run the simulator in the foreground
    Sim(SimArgs),
    /// Serve AI agents over MCP (stdio), under a spend guard the server enforces
    Mcp(McpArgs),
    /// Print a shell completion script
    Completions(CompletionsArgs),
    /// Show versions: the CLI, the API document, the known models
    Version,
    /// The API documents this CLI was built from; check them against the published one
    Spec(SpecArgs),
}

#[derive(Debug, Args)]
pub struct SpecArgs {
    #[command(subcommand)]
    pub command: SpecCommand,
}

#[derive(Debug, Subcommand)]
pub enum SpecCommand {
    /// Print one of the OpenAPI documents this CLI was built from
    Show {
        /// The document: ai-avatar-v1-pro.json, get-task-details.json, common.json or file-upload.json
        #[arg(default_value = "ai-avatar-v1-pro.json")]
        name: String,
        /// After the contract patches (the vendored document's known defects fixed)
        #[arg(long)]
        contract: bool,
    },
    /// Compare the vendored createTask document with the published one and
    /// print what the generated client would gain or lose. Exit 0: the same;
    /// 1: it differs; 3: it cannot be read
    Check(SpecCheckArgs),
}

#[derive(Debug, Args)]
pub struct SpecCheckArgs {
    /// Where the document is published (default: the URL spec/origin.json records)
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Replace the vendored file with the published one and record its URL,
    /// date and SHA-256 in origin.json (in a checkout)
    #[arg(long)]
    pub update: bool,
    /// The checkout's spec directory, for --update
    #[arg(long, value_name = "DIR", default_value = "spec")]
    pub spec_dir: PathBuf,
}

/// The guard on spending, for the commands that create paid tasks.
#[derive(Debug, Args, Clone)]
pub struct Spend {
    /// Do every check and show the media facts and the cost estimate; upload
    /// and submit nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Refuse (exit 2, nothing sent) when the estimate is above N credits
    #[arg(long, value_name = "N")]
    pub max_credits: Option<f64>,
    /// Ask before spending more than N estimated credits (only on a terminal)
    #[arg(long, value_name = "N", default_value_t = 500.0)]
    pub confirm_above: f64,
    /// Do not ask for confirmation
    #[arg(long, short = 'y')]
    pub yes: bool,
}

/// The inputs of a generation.
#[derive(Debug, Args)]
pub struct Inputs {
    /// The portrait: a local file or an http(s) URL (JPEG, PNG or WebP, at most 10 MB)
    #[arg(long, value_name = "PATH|URL")]
    pub image: String,
    /// The audio: a local file or an http(s) URL (MP3, WAV, AAC, M4A or Ogg, at most 10 MB)
    #[arg(long, value_name = "PATH|URL")]
    pub audio: String,
    /// The prompt (at most 5000 characters)
    #[arg(long, conflicts_with = "prompt_file")]
    pub prompt: Option<String>,
    /// Read the prompt from a file ("-": standard input); one trailing
    /// newline is not part of the prompt
    #[arg(long, value_name = "FILE")]
    pub prompt_file: Option<PathBuf>,
    /// Where the service should POST the result when the task ends
    #[arg(long, value_name = "URL")]
    pub callback_url: Option<String>,
    /// The model: kling/ai-avatar-v1-pro (default), kling/ai-avatar-pro,
    /// kling/ai-avatar-standard, kling/v1-avatar-standard, or any other id (sent
    /// unchecked, with a warning)
    #[arg(long, value_name = "ID", value_parser = parse_model)]
    pub model: Option<Model>,
    /// Another field of the request's `input`, as the API document defines it
    /// (typed and checked against its schema; `kling version --json` lists the
    /// fields). Repeatable
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_set)]
    pub set: Vec<(String, serde_json::Value)>,
    /// Skip checking what URL inputs serve before submitting
    #[arg(long)]
    pub no_preflight: bool,
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    pub inputs: Inputs,
    #[command(flatten)]
    pub spend: Spend,
    /// Where to save the video (default: TASK_ID.mp4)
    #[arg(long, value_name = "FILE.mp4")]
    pub out: Option<PathBuf>,
    /// Replace the --out file if it exists
    #[arg(long)]
    pub force: bool,
    /// Submit, print the command that waits and downloads, and exit
    #[arg(long)]
    pub no_wait: bool,
    /// Open the video with the system's opener once it is saved
    #[arg(long, conflicts_with = "no_wait")]
    pub open: bool,
    /// How long to wait for the task (e.g. 20m, 1h)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "30m")]
    pub timeout: Duration,
    #[command(flatten)]
    pub webhook: WebhookArgs,
}

#[derive(Debug, Args)]
pub struct SubmitArgs {
    #[command(flatten)]
    pub inputs: Inputs,
    #[command(flatten)]
    pub spend: Spend,
}

#[derive(Debug, Args)]
pub struct TaskArgs {
    /// The task id
    pub task_id: String,
}

#[derive(Debug, Args)]
pub struct WaitArgs {
    /// The task id
    pub task_id: String,
    /// How long to wait (e.g. 20m, 1h)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "30m")]
    pub timeout: Duration,
    /// Download the video here when the task succeeds
    #[arg(long, value_name = "FILE.mp4")]
    pub out: Option<PathBuf>,
    /// Replace the --out file if it exists
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct DownloadArgs {
    /// The task id
    pub task_id: String,
    /// Where to save the video
    #[arg(long, value_name = "FILE.mp4")]
    pub out: PathBuf,
    /// Replace the --out file if it exists
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct UploadArgs {
    /// The file
    pub path: PathBuf,
}

pub const SIM_HELP: &str = "\
Config file (JSON, camelCase; every key optional):
  apiKeys [\"sim-key\"]  credits 10000  models {id: credits per second}
  defaultVideoSeconds 5  requireUserAgent true  maxUploadBytes 209715200
  rateLimit {max 20, windowMs 10000, mode \"http429\"|\"envelope429\", retryAfter true}
  lifecycle {seed, waitingMs [min,max], queuingMs, generatingMs,
             generatingMsPerAudioSecond, failFraction, resultUrlTtlMs, timesOnFail}
  httpErrorStatus (recordInfo 400/401/404/429 and upload 400/401 as HTTP statuses)
  webhookHmacKey, callbacksOffLoopback
  faults {seed, slowMs, nullRecord, nullRecordMs, unknownState, unknownStateMs,
          failCodeInt, retryAfterOnFault,
          callback: {lost, duplicated, delayed, reordered, delayMs [min,max],
                     duplicateAfterMs},
          createTask|recordInfo|common|upload|download: {resetBefore, resetAfter,
          slowAfter, html502, html520, envelope500, envelope455, rateLimited,
          messageAlias, truncate}}  (probabilities 0 to 1)
  Every key is documented in the kling-sim crate docs (SimConfig).

Counters (requests, tasks, faults, callbacks): GET /_sim/stats
Each request is logged with -v.";

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Show at most N requests
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub limit: usize,
    /// Only requests in this state (submitted, outcome unknown, interrupted,
    /// not taken, or a task state such as success)
    #[arg(long, value_name = "STATE")]
    pub state: Option<String>,
    /// Read the current state of unfinished tasks from the service first
    #[arg(long)]
    pub refresh: bool,
}

#[derive(Debug, Args)]
#[command(after_help = SIM_HELP)]
pub struct SimArgs {
    /// Port on 127.0.0.1 (0: any free port)
    #[arg(long, default_value_t = 0)]
    pub port: u16,
    /// JSON config file (faults, lifecycles, rate limits)
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
    Elvish,
    Powershell,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell
    pub shell: Shell,
}
