//! `kling mcp`'s flags.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::{WebhookArgs, parse_credits, parse_duration};

/// An MCP server over stdio, for AI agents.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct McpArgs {
    #[command(subcommand)]
    pub command: Option<McpCommand>,
    /// A directory whose files agents may give as inputs (repeatable; symlinks
    /// are followed before the check). Without one, inputs are URLs only
    #[arg(long, value_name = "DIR")]
    pub root: Vec<PathBuf>,
    /// Where generate and download save videos (required to serve)
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// The cap of a paid call that gives no max_credits; without it, every
    /// paid call must give one
    #[arg(long, value_name = "N", value_parser = parse_credits)]
    pub max_credits_per_task: Option<f64>,
    /// A paid call counted above N credits needs a human's approval: asked
    /// through the client (MCP elicitation), else a plan approved with `kling
    /// mcp approve PLAN`
    #[arg(long, value_name = "N", value_parser = parse_credits, default_value_t = 500.0)]
    pub approve_above: f64,
    /// How long a repeated identical call returns the first call's task
    /// instead of paying again
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "24h")]
    pub idempotency_window: Duration,
    #[command(flatten)]
    pub webhook: WebhookArgs,
}

#[derive(Debug, Subcommand)]
pub enum McpCommand {
    /// Approve a plan an agent's call was refused with (a person, at a terminal)
    Approve {
        /// The plan's id (plan-…)
        plan: String,
    },
}
