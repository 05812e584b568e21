//! `kling batch`'s arguments.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use kling_api_ext::Model;

use super::{Spend, parse_duration, parse_model};

#[derive(Debug, Args)]
pub struct BatchArgs {
    /// The manifest: one JSON object per line,
    /// {"id": "...", "image": "...", "audio": "...", "prompt": "..."}
    /// (optional: "callbackUrl", "model"). Paths are relative to the manifest;
    /// ids name the videos (ID.mp4): letters, digits, '.', '_', '-'.
    pub manifest: PathBuf,
    /// Where videos (ID.mp4), results.jsonl and the journal go
    #[arg(long, value_name = "DIR", required_unless_present = "status")]
    pub out_dir: Option<PathBuf>,
    /// Keep the jobs in a PostgreSQL database instead of the journal, so that
    /// several processes on several hosts run the same manifest together: each
    /// job is submitted once and downloaded once, by whichever worker gets it
    /// (postgres://USER:PASSWORD@HOST/DB, or postgres:///DB?host=/SOCKET/DIR)
    #[arg(long, value_name = "URL", env = "KLING_STORE", value_parser = parse_store, hide_env_values = true)]
    pub store: Option<String>,
    /// Whether `store` came from `KLING_STORE` in the environment (said at
    /// the start of the run; printed commands then use `"$KLING_STORE"`).
    #[arg(skip)]
    pub store_from_env: bool,
    /// The batch's name in the store: workers with the same name share the
    /// jobs (default: the batch the output directory belongs to, else the
    /// one holding the manifest's jobs unchanged, else a new one named after
    /// the manifest's file and its jobs)
    #[arg(long, value_name = "NAME", requires = "store")]
    pub batch_name: Option<String>,
    /// Show every job's state in the store, across the fleet, and exit
    #[arg(long, requires = "store")]
    pub status: bool,
    /// With --store: how long a worker's claim on a job lasts without renewal
    /// (renewed every third of it while the worker lives); a killed worker's
    /// jobs are taken over this long after its last renewal
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "30s", requires = "store")]
    pub lease: Duration,
    /// Jobs in progress at once (uploading, submitted, running or downloading)
    #[arg(long, value_name = "N", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub concurrency: u32,
    /// Stop before sending anything if any line is invalid
    #[arg(long)]
    pub strict: bool,
    /// Submit again the jobs whose earlier submit outcome is unknown (their task
    /// may exist and be paid for twice)
    #[arg(long)]
    pub resubmit_ambiguous: bool,
    /// Submit again the jobs the service rejected before (no task exists for them)
    #[arg(long)]
    pub retry_rejected: bool,
    /// Submit again the jobs whose task failed (a new task, paid if it succeeds)
    #[arg(long)]
    pub retry_failed: bool,
    /// Submit as a new job (a new, paid task) every job whose manifest line
    /// changed since it was submitted; without it such jobs are reported and
    /// left as they were
    #[arg(long)]
    pub rerun_changed: bool,
    /// How long to wait for each task
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "30m")]
    pub timeout: Duration,
    /// The model for lines that name none (default: kling/ai-avatar-v1-pro)
    #[arg(long, value_name = "ID", value_parser = parse_model)]
    pub model: Option<Model>,
    #[command(flatten)]
    pub spend: Spend,
    #[command(flatten)]
    pub webhook: super::WebhookArgs,
}

impl BatchArgs {
    /// The output directory (absent only with `--status`, which writes nothing).
    pub fn out_dir(&self) -> &std::path::Path {
        self.out_dir.as_deref().unwrap_or(std::path::Path::new("."))
    }
}

fn parse_store(text: &str) -> Result<String, String> {
    if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        Ok(text.to_owned())
    } else {
        Err("give a postgres:// URL".into())
    }
}
