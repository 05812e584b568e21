//! A worker's leases: the jobs it holds, renewed on the database's clock while
//! it works, and given back when its wait does not end here.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sqlx::PgPool;

use super::{JobStore, JobStoreError, db, millis};

impl JobStore {
    pub(super) fn hold(&self, id: &str, held: bool) {
        let mut set = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if held {
            set.insert(id.to_owned());
        } else {
            set.remove(id);
        }
    }

    /// Gives a held job back as it stands (its wait did not end here).
    pub async fn release(&self, id: &str) -> Result<(), JobStoreError> {
        self.hold(id, false);
        sqlx::query("UPDATE kling.jobs SET owner = NULL, lease_until = NULL WHERE batch = $1 AND id = $2 AND owner = $3 AND state IN ('todo', 'running')")
            .bind(&self.batch)
            .bind(id)
            .bind(&self.worker)
            .execute(&self.pool)
            .await
            .map_err(db("cannot release a job"))?;
        Ok(())
    }

    /// Whether this worker still holds `id` (its lease was renewed in time).
    pub async fn holds(&self, id: &str) -> Result<bool, JobStoreError> {
        let (holds,): (bool,) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM kling.jobs WHERE batch = $1 AND id = $2 AND owner = $3 AND lease_until > clock_timestamp())",
        )
        .bind(&self.batch)
        .bind(id)
        .bind(&self.worker)
        .fetch_one(&self.pool)
        .await
        .map_err(db("cannot check a lease"))?;
        Ok(holds)
    }

    /// Lets go of every job this worker still holds (a clean stop): their
    /// waits are anyone's at once instead of after the lease.
    pub async fn release_all(&self) {
        let ids: Vec<String> =
            std::mem::take(&mut *self.held.lock().unwrap_or_else(PoisonError::into_inner))
                .into_iter()
                .collect();
        let released = sqlx::query(
            "UPDATE kling.jobs SET owner = NULL, lease_until = NULL WHERE batch = $1 AND owner = $2 AND id = ANY($3) AND state IN ('todo', 'running')",
        )
        .bind(&self.batch)
        .bind(&self.worker)
        .bind(&ids)
        .execute(&self.pool)
        .await;
        if let Err(error) = released {
            tracing::warn!(%error, "cannot release this worker's jobs; their leases end in {} s", self.lease.as_secs());
        }
    }
}

/// Renews every lease `held` names, every third of the lease, in one statement.
pub(super) async fn renew(
    pool: PgPool,
    batch: String,
    worker: String,
    held: Arc<Mutex<BTreeSet<String>>>,
    lease: Duration,
) {
    let mut every = tokio::time::interval(lease / 3);
    every.tick().await;
    loop {
        every.tick().await;
        let ids: Vec<String> = held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .cloned()
            .collect();
        if ids.is_empty() {
            continue;
        }
        let renewed = sqlx::query(
            "UPDATE kling.jobs SET lease_until = clock_timestamp() + $4 * interval '1 millisecond' \
             WHERE batch = $1 AND owner = $2 AND id = ANY($3) AND state IN ('todo', 'submitting', 'running')",
        )
        .bind(&batch)
        .bind(&worker)
        .bind(&ids)
        .bind(millis(lease))
        .execute(&pool)
        .await;
        if let Err(error) = renewed {
            tracing::warn!(%error, "cannot renew this worker's leases");
        }
    }
}
