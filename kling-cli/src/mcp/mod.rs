//! `kling mcp`: an MCP server over stdio, so that AI agents generate avatar
//! videos with the CLI's money guarantees, under a spend guard the server
//! enforces (never the model's good behaviour):
//!
//! - every paid call needs a cap (`max_credits`, or `--max-credits-per-task`);
//! - the daily budget is counted in the ledger every `kling` process shares,
//!   under a lock, before anything is uploaded (`crate::ledger`);
//! - the balance is read before anything is uploaded;
//! - above `--approve-above`, a call needs a human's approval: MCP
//!   elicitation where the client supports it, else a single-use plan that
//!   `kling mcp approve PLAN` approves (`plans`);
//! - a repeated identical call returns the first task instead of paying
//!   again (an idempotency key, by default a hash of the request).
//!
//! The tools' logic lives here and in `tools`, in plain types; `server` is
//! the only module that sees rmcp's. Nothing is written to stdout but the
//! protocol: messages and logs go to stderr.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use crate::cli::McpArgs;
use crate::context::Context;
use crate::error::CliError;
use crate::output::Failure;

mod guard;
mod inputs;
pub mod plans;
mod schema;
mod server;
mod tools;

/// Everything the tools share.
pub struct Server {
    pub ctx: Context,
    /// The directories local inputs may come from, canonical.
    pub roots: Vec<PathBuf>,
    /// Where videos are saved, canonical.
    pub out_dir: PathBuf,
    pub max_credits_per_task: Option<f64>,
    pub approve_above: Option<f64>,
    pub idempotency_window: Duration,
    pub plans: plans::Plans,
    /// One lock per idempotency key: a second identical call waits for the
    /// first, then finds its task.
    keys: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    pub hooks: Option<crate::webhook::Webhooks>,
    /// The paid calls in progress: each runs in a task of its own, so that a
    /// client's cancel or a closed connection never drops a createTask on
    /// the wire; the server waits for them before it exits.
    pub paid: tokio_util::task::TaskTracker,
}

/// A tool's refusal or failure, as the agent reads it (`isError` with this
/// as structured content): a stable `code`, a message that says why and
/// what to do, and details to act on.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ToolError {
    pub code: String,
    pub message: String,
    /// No createTask reached the service: nothing was paid for.
    pub nothing_sent: bool,
    #[serde(flatten)]
    pub details: serde_json::Map<String, Value>,
}

impl ToolError {
    /// A refusal before anything was sent.
    pub fn refused(code: &str, message: impl Into<String>) -> ToolError {
        ToolError {
            code: code.to_owned(),
            message: message.into(),
            nothing_sent: true,
            details: Default::default(),
        }
    }

    /// A failure after something may have been sent.
    pub fn failed(code: &str, message: impl Into<String>) -> ToolError {
        ToolError {
            nothing_sent: false,
            ..ToolError::refused(code, message)
        }
    }

    /// With one more detail.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> ToolError {
        self.details.insert(key.to_owned(), value.into());
        self
    }

    /// The SDK's error: its kind as the code, and whether it was sent.
    pub fn sdk(error: &kling_api_ext::Error, sent: bool) -> ToolError {
        let mut e = if sent && !error.is_not_taken() {
            ToolError::failed(error.kind(), error.to_string())
        } else {
            ToolError::refused(error.kind(), error.to_string())
        };
        if let Some(task) = error.task_id() {
            e = e.with("taskId", task.as_str());
        }
        if let kling_api_ext::Error::InvalidInput { field, .. } = error {
            e = e.with("field", field.to_string());
        }
        e
    }

    pub fn json(&self) -> Value {
        serde_json::to_value(self).unwrap_or_else(|_| json!({"code": self.code}))
    }
}

impl From<CliError> for ToolError {
    fn from(error: CliError) -> ToolError {
        match &error {
            CliError::Sdk(e) => ToolError::sdk(e, false),
            other => ToolError::refused(other.kind(), other.to_string()),
        }
    }
}

impl From<crate::ledger::LedgerError> for ToolError {
    fn from(error: crate::ledger::LedgerError) -> ToolError {
        ToolError::refused(error.kind(), error.to_string())
    }
}

impl Server {
    /// The lock of an idempotency key.
    fn key_lock(&self, key: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(key.to_owned())
            .or_default()
            .clone()
    }

    /// Where a video is saved: `name` (a plain `.mp4` file name) or the task
    /// id's, in the output directory.
    fn out_path(
        &self,
        name: Option<&str>,
        task: &kling_api_ext::TaskId,
    ) -> Result<PathBuf, ToolError> {
        match name {
            None => Ok(self.out_dir.join(crate::cmd::steps::default_out(task))),
            Some(name) => {
                let plain = !name.is_empty()
                    && Path::new(name).file_name().is_some_and(|f| f == name)
                    && name != ".."
                    && name.ends_with(".mp4");
                if !plain {
                    return Err(ToolError::refused(
                        "invalid_input",
                        format!(
                            "file_name {name:?}: give a plain file name ending in .mp4 (no directory); it is saved in the server's output directory"
                        ),
                    )
                    .with("field", "file_name"));
                }
                Ok(self.out_dir.join(name))
            }
        }
    }
}

/// Runs the server until the client closes stdin.
pub async fn serve(ctx: Context, args: McpArgs) -> Result<u8, Failure> {
    let canonical = |what: &str, dir: &Path| {
        std::fs::canonicalize(dir)
            .ok()
            .filter(|d| d.is_dir())
            .ok_or_else(|| {
                CliError::config(
                    Some(dir.display().to_string()),
                    format!("{what}: not a directory that exists"),
                )
            })
    };
    let roots = args
        .root
        .iter()
        .map(|r| canonical("--root", r))
        .collect::<Result<Vec<_>, _>>()?;
    let out_dir = args.out_dir.as_deref().ok_or_else(|| {
        CliError::config(
            None,
            "--out-dir DIR is required: where generate and download save videos",
        )
    })?;
    let out_dir = canonical("--out-dir", out_dir)?;
    let hooks = crate::webhook::start(&ctx.out, &args.webhook, None, ctx.client.base_url()).await?;
    let plans = plans::Plans::default_place(&ctx.budget.service)
        .map_err(|e| CliError::config(None, format!("the approval plans: {e}")))?;
    let server = Server {
        roots,
        out_dir,
        max_credits_per_task: args.max_credits_per_task,
        approve_above: Some(args.approve_above),
        idempotency_window: args.idempotency_window,
        plans,
        keys: Mutex::default(),
        hooks,
        paid: tokio_util::task::TaskTracker::new(),
        ctx,
    };
    tracing::info!(roots = ?server.roots, out_dir = %server.out_dir.display(), "kling mcp serving on stdio");
    use std::io::IsTerminal as _;
    if std::io::stdin().is_terminal() {
        // A person who typed it: stdin is where the MCP client's messages come.
        server.ctx.out.say(
            "kling mcp speaks MCP on stdin and stdout: start it from an MCP client (Claude Code, Claude Desktop, Cursor; see docs/mcp.md). Ctrl-C stops it",
        );
    }
    server::run(Arc::new(server))
        .await
        .map_err(|e| CliError::config(None, format!("the MCP connection: {e}")))?;
    Ok(crate::error::code::OK)
}

/// `kling mcp approve PLAN`: a person approves an agent's plan, at a
/// terminal, after reading what it pays for. An agent with a shell cannot
/// approve its own plan by running the command: without a terminal it is
/// refused.
pub fn approve(out: &crate::output::Out, plan: &str) -> u8 {
    use std::io::IsTerminal as _;
    let plans = match plans::Plans::default_place("") {
        Ok(plans) => plans,
        Err(reason) => return out.error(&CliError::config(None, reason)),
    };
    let refuse = |reason: String| out.error(&CliError::config(Some(plan.to_owned()), reason));
    if !(std::io::stdin().is_terminal() && std::io::stderr().is_terminal()) {
        return refuse(
            "approving spending needs a person at a terminal (standard input and error are not one): run this command yourself, in a terminal".into(),
        );
    }
    let found = match plans.peek(plan.trim()) {
        Ok(found) => found,
        Err(e) => return refuse(e.to_string()),
    };
    out.say(&format!(
        "plan {}: {} on {}, at most {} credits.\nType yes to approve it (anything else refuses):",
        found.id, found.summary, found.service, found.credits
    ));
    let mut answer = String::new();
    if std::io::stdin().read_line(&mut answer).is_err() || answer.trim() != "yes" {
        return refuse("not approved: nothing changed".into());
    }
    match plans.approve(&found.id) {
        Ok(plan) => {
            out.say(&format!(
                "approved {}: the agent may now make that call once, with plan_id {}, before the plan expires",
                plan.id, plan.id
            ));
            crate::error::code::OK
        }
        Err(e) => refuse(e.to_string()),
    }
}
