//! A fleet's store: the jobs of a batch in PostgreSQL, shared by every
//! worker (`kling_fleet::jobs`), with this CLI's journal events mapped to its
//! records and its rows read back as journal records.

use sqlx::PgPool;

use super::StoreError;
use crate::batch::journal::Event;
use kling_fleet::jobs::JobEvent;
pub use kling_fleet::jobs::{Claimed, LEASE, identity};
pub use schema::record_of;

/// The batch's jobs as one worker sees them.
pub type PgJobs = kling_fleet::jobs::JobStore;

/// Connects to the store at `url` and creates or migrates its tables.
pub async fn connect(url: &str) -> Result<PgPool, StoreError> {
    let pool = kling_fleet::pg::pool(url).map_err(StoreError::Limiter)?;
    // The whole `kling` schema, the rate limit's tables and the store's.
    kling_fleet::pg::migrate(&pool)
        .await
        .map_err(StoreError::Limiter)?;
    Ok(pool)
}

/// Records one journal event of a job this worker holds (an intent is
/// refused, [`StoreError::LeaseLost`], unless it still holds the job).
pub async fn record(store: &PgJobs, event: &Event) -> Result<(), StoreError> {
    let rejected;
    let job_event = match event {
        Event::Intent { input, nonce, .. } => JobEvent::Intent {
            input,
            nonce: nonce.as_deref(),
        },
        Event::Submitted { task_id, .. } => JobEvent::Created {
            task_id,
            recovered: false,
        },
        Event::Recovered { task_id, .. } => JobEvent::Created {
            task_id,
            recovered: true,
        },
        Event::Unknown { error, .. } => JobEvent::Unknown { error },
        Event::NotTaken { retrying, .. } => JobEvent::NotTaken {
            retrying: *retrying,
        },
        Event::Rejected {
            id,
            kind,
            message,
            input,
            ..
        } => {
            rejected = crate::batch::ResultLine::rejected(id, kind, message).to_value();
            JobEvent::Rejected {
                result: &rejected,
                input: input.as_deref(),
            }
        }
        Event::Found { task_id, nonce, .. } => JobEvent::Found { task_id, nonce },
        Event::Finished { result, .. } => JobEvent::Finished { result },
    };
    Ok(store.record(event.id(), job_event).await?)
}

mod schema;
#[cfg(test)]
mod tests;
