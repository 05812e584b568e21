//! The CLI's own errors, beside the SDK's: what the CLI itself checks (its
//! settings, files and spending guard) is said here, never dressed up as an
//! SDK call that was not made.

use std::path::PathBuf;

use kling_api_ext::{Error, Field, TaskId};

/// Exit statuses (documented in `--help` and the README).
pub mod code {
    pub const OK: u8 = 0;
    pub const LOCAL: u8 = 1;
    /// `kling spec check`: the published document differs from the vendored one.
    pub const DIFFERS: u8 = 1;
    pub const INVALID: u8 = 2;
    pub const SERVICE: u8 = 3;
    pub const TASK_FAILED: u8 = 4;
    pub const TIMED_OUT: u8 = 5;
    pub const OUTCOME_UNKNOWN: u8 = 6;
    pub const INTERRUPTED: u8 = 130;
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// An SDK call failed.
    #[error(transparent)]
    Sdk(#[from] Error),

    /// A setting, flag or input file the CLI read is not acceptable; nothing
    /// was sent.
    #[error("invalid {field}{}: {reason}", subject.as_ref().map(|s| format!(" `{s}`")).unwrap_or_default())]
    Invalid {
        /// What it is about.
        field: Field,
        /// The file or value concerned.
        subject: Option<String>,
        /// What is wrong and what is allowed.
        reason: String,
    },

    /// A file the CLI keeps (journal, results, history) could not be read or
    /// written.
    #[error("{}: {source}", path.display())]
    Local {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// The job store (`batch --store`) could not be reached or used; nothing
    /// more was sent.
    #[error("the job store: {message}")]
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Store {
        /// What went wrong, with its cause (never the URL's password).
        message: String,
    },

    /// The daily budget refused the request, or could not be counted;
    /// nothing was uploaded or submitted.
    #[error("{0}")]
    Budget(#[from] crate::ledger::LedgerError),

    /// The balance is below what the run is estimated to cost; nothing was
    /// uploaded or submitted.
    #[error(
        "the balance is {balance} credits, below the {estimate} {what} is estimated at; nothing was uploaded or submitted"
    )]
    BalanceTooLow {
        /// The account's balance.
        balance: f64,
        /// The estimate.
        estimate: f64,
        /// What was estimated ("this video", "this batch (3 job(s) to submit)").
        what: String,
    },
}

impl CliError {
    /// A setting or flag that is not acceptable.
    pub fn config(subject: Option<String>, reason: impl Into<String>) -> CliError {
        CliError::Invalid {
            field: Field::Config,
            subject,
            reason: reason.into(),
        }
    }

    /// `what` (a flag or a command) needs a feature this build was made
    /// without.
    #[cfg_attr(
        all(feature = "postgres", feature = "webhooks", feature = "mcp"),
        allow(dead_code)
    )]
    pub fn missing_feature(what: &str, feature: &str) -> CliError {
        CliError::config(
            Some(what.to_owned()),
            format!(
                "this kling was built without the `{feature}` feature; nothing was sent. Build it with the feature: cargo install --path kling-cli --features {feature} (the default features include it)"
            ),
        )
    }

    /// A file the CLI keeps that could not be read or written.
    pub fn local(path: impl Into<PathBuf>, source: std::io::Error) -> CliError {
        CliError::Local {
            path: path.into(),
            source,
        }
    }

    /// The SDK's error, if it is one.
    pub fn sdk(&self) -> Option<&Error> {
        match self {
            CliError::Sdk(error) => Some(error),
            _ => None,
        }
    }

    /// The stable name of the kind of error (`--json`'s `error.kind`): the
    /// SDK's kinds, and the CLI's with the same names for the same meaning.
    pub fn kind(&self) -> &'static str {
        match self {
            CliError::Sdk(error) => error.kind(),
            CliError::Invalid { .. } => "invalid_input",
            CliError::Local { .. } => "io",
            CliError::Store { .. } => "store",
            CliError::BalanceTooLow { .. } => "insufficient_credits",
            CliError::Budget(e) => e.kind(),
        }
    }

    /// The task the error is about, where known.
    pub fn task_id(&self) -> Option<&TaskId> {
        self.sdk().and_then(Error::task_id)
    }

    /// The same error, about `task_id` where it names none yet.
    pub fn with_task_id(self, task_id: &TaskId) -> CliError {
        match self {
            CliError::Sdk(error) => CliError::Sdk(error.with_task_id(task_id)),
            other => other,
        }
    }

    /// The exit status (the table in `--help` and the README).
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Sdk(error) => match error {
                Error::InvalidInput { .. } => code::INVALID,
                Error::NotSent { .. } | Error::Cancelled { .. } => code::INTERRUPTED,
                Error::GenerationFailed { .. } => code::TASK_FAILED,
                Error::WaitTimedOut { .. } => code::TIMED_OUT,
                Error::SubmitOutcomeUnknown { .. } => code::OUTCOME_UNKNOWN,
                Error::Io { .. } | Error::Limiter { .. } => code::LOCAL,
                _ => code::SERVICE,
            },
            CliError::Invalid { .. } => code::INVALID,
            CliError::Local { .. } | CliError::Store { .. } => code::LOCAL,
            CliError::BalanceTooLow { .. } => code::SERVICE,
            CliError::Budget(crate::ledger::LedgerError::Io { .. }) => code::LOCAL,
            CliError::Budget(_) => code::INVALID,
        }
    }
}
