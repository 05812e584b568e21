//! Where a batch keeps its jobs: the journal file in the output directory
//! (the default, one process per directory) or a PostgreSQL database shared
//! by a fleet of workers (`--store postgres://…`).

// What only a fleet's store produces is unused without `postgres`.
#![cfg_attr(not(feature = "postgres"), allow(dead_code))]

#[cfg(feature = "postgres")]
pub mod postgres;

use super::journal::{Event, Journal};
#[cfg(feature = "postgres")]
pub use postgres::{Claimed, PgJobs};

/// A store that could not record or read.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The journal file.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A database statement.
    #[cfg(feature = "postgres")]
    #[error("{what}: {source}")]
    Db {
        what: &'static str,
        #[source]
        source: sqlx::Error,
    },
    /// The connection or the schema (`kling_fleet::pg`).
    #[error("{0}")]
    Limiter(#[source] kling_api_ext::limit::LimiterError),
    /// This worker no longer holds the job: its lease ran out and another
    /// worker may have it. Nothing is sent for it from here.
    #[error("job {id}: this worker's lease on it ran out; another worker has it")]
    LeaseLost { id: String },
}

#[cfg(feature = "postgres")]
impl From<kling_fleet::jobs::JobStoreError> for StoreError {
    fn from(error: kling_fleet::jobs::JobStoreError) -> Self {
        use kling_fleet::jobs::JobStoreError;
        match error {
            JobStoreError::Db { what, source } => StoreError::Db { what, source },
            JobStoreError::LeaseLost { id } => StoreError::LeaseLost { id },
            // A kind this CLI does not know yet: its message kept.
            other => StoreError::Io(std::io::Error::other(other.to_string())),
        }
    }
}

/// The store a run records its events in.
pub enum Store {
    Journal(Journal),
    #[cfg(feature = "postgres")]
    Postgres(PgJobs),
}

impl Store {
    /// Records an event before the run acts on it.
    pub async fn record(&self, event: &Event) -> Result<(), StoreError> {
        match self {
            Store::Journal(journal) => Ok(journal.record(event)?),
            #[cfg(feature = "postgres")]
            Store::Postgres(jobs) => postgres::record(jobs, event).await,
        }
    }

    /// What to call it in messages.
    pub fn describe(&self) -> String {
        match self {
            Store::Journal(journal) => format!("the journal {}", journal.path().display()),
            #[cfg(feature = "postgres")]
            Store::Postgres(jobs) => format!("the job store (worker {})", jobs.worker()),
        }
    }
}

/// A store error as the run's failure, with its whole chain of causes.
pub fn store_error(error: impl Into<StoreError>) -> crate::output::Failure {
    let error: StoreError = error.into();
    // The whole chain: "cannot migrate" says little without "connection refused".
    let mut message = error.to_string();
    let mut cause = std::error::Error::source(&error);
    while let Some(inner) = cause {
        let text = inner.to_string();
        if !message.contains(&text) {
            message = format!("{message}: {text}");
        }
        cause = inner.source();
    }
    crate::error::CliError::Store { message }.into()
}
