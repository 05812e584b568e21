//! The jobs of a batch in PostgreSQL (`kling.jobs`), shared by every worker
//! of a fleet. A worker claims a job with `FOR UPDATE SKIP LOCKED` and holds
//! it under a lease on the database's clock, renewed while it works; the
//! intent to submit is a conditional update that only the lease holder can
//! make, so at most one createTask is sent per intent across every host. A
//! `submitting` job whose lease ran out (its worker died between intent and
//! answer) becomes `unknown`, never to do again.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use sqlx::PgPool;

use super::StoreError;
use crate::batch::journal::Event;
pub use schema::Row;

/// How long a claim lasts without renewal: a worker killed mid-job frees its
/// jobs this long after its last renewal.
pub const LEASE: Duration = Duration::from_secs(30);

/// A job a worker claimed.
#[derive(Clone, Debug, PartialEq)]
pub enum Claimed {
    /// To submit, with the inputs the store has for it.
    Submit(String, String),
    /// Its task exists: to wait for (and download).
    Wait(String, String),
}

/// Connects to the store at `url` and creates or migrates its tables.
pub async fn connect(url: &str) -> Result<PgPool, StoreError> {
    let pool = kling_fleet::pg::pool(url).map_err(StoreError::Limiter)?;
    // The whole `kling` schema, the rate limit's tables and the store's.
    kling_fleet::pg::migrate(&pool)
        .await
        .map_err(StoreError::Limiter)?;
    Ok(pool)
}

/// A batch's jobs in the database, as one worker sees them.
pub struct PgJobs {
    pool: PgPool,
    batch: String,
    worker: String,
    /// The jobs this worker holds a lease on.
    held: Arc<Mutex<BTreeSet<String>>>,
    lease: Duration,
    renewer: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for PgJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgJobs")
            .field("batch", &self.batch)
            .field("worker", &self.worker)
            .finish_non_exhaustive()
    }
}

impl Drop for PgJobs {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub(super) fn db(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Db { what, source }
}

impl PgJobs {
    /// Connects to the store at `url` (creating or migrating its tables) for
    /// `batch`, with `lease` (renewed every third of it).
    #[cfg(test)]
    pub async fn open_with(
        url: &str,
        batch: &str,
        worker: &str,
        lease: Duration,
    ) -> Result<PgJobs, StoreError> {
        Ok(PgJobs::with_pool(connect(url).await?, batch, worker, lease))
    }

    /// The batch `batch` of the store `pool` ([`connect`]), as `worker` sees it.
    pub fn with_pool(pool: PgPool, batch: &str, worker: &str, lease: Duration) -> PgJobs {
        let held: Arc<Mutex<BTreeSet<String>>> = Arc::default();
        let renewer = tokio::spawn(renew(
            pool.clone(),
            batch.to_owned(),
            worker.to_owned(),
            held.clone(),
            lease,
        ));
        PgJobs {
            pool,
            batch: batch.to_owned(),
            worker: worker.to_owned(),
            held,
            lease,
            renewer,
        }
    }

    fn hold(&self, id: &str, held: bool) {
        let mut set = self.held.lock().unwrap_or_else(PoisonError::into_inner);
        if held {
            set.insert(id.to_owned());
        } else {
            set.remove(id);
        }
    }

    /// Adds the manifest's jobs that are not in the store yet, as to do (one
    /// statement: many workers loading the same manifest add each job once).
    pub async fn load(&self, jobs: &[(String, usize, String)]) -> Result<u64, StoreError> {
        let ids: Vec<&str> = jobs.iter().map(|j| j.0.as_str()).collect();
        let lines: Vec<i32> = jobs
            .iter()
            .map(|j| i32::try_from(j.1).unwrap_or(i32::MAX))
            .collect();
        let inputs: Vec<&str> = jobs.iter().map(|j| j.2.as_str()).collect();
        let added = sqlx::query(
            "INSERT INTO kling.jobs (batch, id, line, input, state) \
             SELECT $1, id, line, input, 'todo' FROM UNNEST($2::text[], $3::integer[], $4::text[]) AS m(id, line, input) \
             ON CONFLICT (batch, id) DO NOTHING",
        )
        .bind(&self.batch)
        .bind(&ids)
        .bind(&lines)
        .bind(&inputs)
        .execute(&self.pool)
        .await
        .map_err(db("cannot load the manifest"))?;
        Ok(added.rows_affected())
    }

    /// A `submitting` job whose lease ran out: its worker died between the
    /// intent and the answer, so its task may exist. It becomes `unknown`.
    pub async fn sweep(&self) -> Result<u64, StoreError> {
        let swept = sqlx::query(
            "UPDATE kling.jobs SET state = 'unknown', owner = NULL, lease_until = NULL, updated_at = clock_timestamp(), \
             error = 'the worker ' || COALESCE(owner, '?') || ' stopped while its createTask was out: the task may exist' \
             WHERE batch = $1 AND state = 'submitting' AND lease_until < clock_timestamp()",
        )
        .bind(&self.batch)
        .execute(&self.pool)
        .await
        .map_err(db("cannot sweep stale submits"))?;
        Ok(swept.rows_affected())
    }

    /// Every job of the batch, by id.
    pub async fn rows(&self) -> Result<BTreeMap<String, Row>, StoreError> {
        type Tuple = (
            String,
            i32,
            String,
            String,
            Option<String>,
            Vec<String>,
            Option<String>,
            Option<String>,
            Option<String>,
            bool,
            Option<String>,
            Vec<String>,
        );
        let rows: Vec<Tuple> = sqlx::query_as(
            "SELECT id, line, state, input, task_id, task_ids, result::text, error, owner, \
             COALESCE(lease_until > clock_timestamp(), false), nonce, nonces FROM kling.jobs WHERE batch = $1 ORDER BY line",
        )
        .bind(&self.batch)
        .fetch_all(&self.pool)
        .await
        .map_err(db("cannot read the jobs"))?;
        Ok(rows
            .into_iter()
            .map(
                |(
                    id,
                    line,
                    state,
                    input,
                    task_id,
                    task_ids,
                    result,
                    error,
                    owner,
                    leased,
                    nonce,
                    nonces,
                )| {
                    let result = result.and_then(|r| serde_json::from_str(&r).ok());
                    (
                        id,
                        Row {
                            line,
                            state,
                            input,
                            task_id,
                            task_ids,
                            result,
                            error,
                            owner,
                            leased,
                            nonce,
                            nonces,
                        },
                    )
                },
            )
            .collect())
    }

    /// Makes a job to do again (a rerun flag, a changed line), if it is still
    /// in `state` and nobody holds it; `input` replaces its inputs.
    pub async fn again(&self, id: &str, state: &str, input: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE kling.jobs SET state = 'todo', input = $4, result = NULL, error = NULL, owner = NULL, \
             lease_until = NULL, updated_at = clock_timestamp() \
             WHERE batch = $1 AND id = $2 AND state = $3 AND (lease_until IS NULL OR lease_until < clock_timestamp())",
        )
        .bind(&self.batch)
        .bind(id)
        .bind(state)
        .bind(input)
        .execute(&self.pool)
        .await
        .map_err(db("cannot set a job to do again"))?;
        Ok(done.rows_affected() == 1)
    }

    /// Claims the next job nobody holds: a running one first (its task
    /// exists), else one to do if `submit`; none of `skip`.
    pub async fn claim(
        &self,
        skip: &[String],
        submit: bool,
    ) -> Result<Option<Claimed>, StoreError> {
        let claimed: Option<(String, String, Option<String>, String)> = sqlx::query_as(
            // A scalar subquery runs once: joined in FROM instead, the
            // planner may rescan it per row and claim many jobs at once.
            "UPDATE kling.jobs SET owner = $2, lease_until = clock_timestamp() + $3 * interval '1 millisecond' \
             WHERE batch = $1 AND id = (SELECT id FROM kling.jobs \
                   WHERE batch = $1 AND (state = 'running' OR (state = 'todo' AND $5)) \
                     AND (lease_until IS NULL OR lease_until < clock_timestamp()) AND NOT (id = ANY($4)) \
                   ORDER BY state = 'running' DESC, line LIMIT 1 FOR UPDATE SKIP LOCKED) \
             RETURNING id, state, task_id, input",
        )
        .bind(&self.batch)
        .bind(&self.worker)
        .bind(millis(self.lease))
        .bind(skip)
        .bind(submit)
        .fetch_optional(&self.pool)
        .await
        .map_err(db("cannot claim a job"))?;
        Ok(claimed.map(|(id, state, task_id, input)| {
            self.hold(&id, true);
            match (state.as_str(), task_id) {
                ("running", Some(task_id)) => Claimed::Wait(id, task_id),
                _ => Claimed::Submit(id, input),
            }
        }))
    }

    /// Jobs not ended that this worker could still get: to do (if
    /// `submit`), running or submitting, none of `skip`.
    pub async fn open_jobs(&self, skip: &[String], submit: bool) -> Result<i64, StoreError> {
        let (count,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM kling.jobs WHERE batch = $1 AND NOT (id = ANY($2)) \
             AND (state IN ('running', 'submitting') OR (state = 'todo' AND $3))",
        )
        .bind(&self.batch)
        .bind(skip)
        .bind(submit)
        .fetch_one(&self.pool)
        .await
        .map_err(db("cannot count the jobs left"))?;
        Ok(count)
    }

    /// Gives a held job back as it stands (its wait did not end here).
    pub async fn release(&self, id: &str) -> Result<(), StoreError> {
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

    /// Records one event of a job this worker holds. The intent is refused
    /// ([`StoreError::LeaseLost`]) unless this worker still holds the job.
    pub async fn record(&self, event: &Event) -> Result<(), StoreError> {
        let id = event.id();
        let base = |sql: &'static str| {
            sqlx::query(sql)
                .bind(&self.batch)
                .bind(id)
                .bind(&self.worker)
        };
        let (query, ends) = match event {
            Event::Intent { input, nonce, .. } => (
                base("UPDATE kling.jobs SET state = 'submitting', input = $4, nonce = $6, updated_at = clock_timestamp(), \
                      nonces = CASE WHEN $6::text IS NULL OR $6 = ANY(nonces) THEN nonces ELSE array_append(nonces, $6) END, \
                      lease_until = clock_timestamp() + $5 * interval '1 millisecond' \
                      WHERE batch = $1 AND id = $2 AND owner = $3 AND state = 'todo' AND lease_until > clock_timestamp()")
                .bind(input)
                .bind(millis(self.lease))
                .bind(nonce),
                false,
            ),
            // The owner's answer wins over a sweep that found it slow.
            Event::Submitted { task_id, .. } | Event::Recovered { task_id, .. } => (
                base("UPDATE kling.jobs SET state = 'running', task_id = $4, task_ids = array_append(task_ids, $4), \
                      nonces = array_remove(nonces, nonce), \
                      error = NULL, updated_at = clock_timestamp(), lease_until = clock_timestamp() + $5 * interval '1 millisecond', \
                      owner = $3 WHERE batch = $1 AND id = $2 AND state IN ('submitting', 'unknown') \
                      AND (owner = $3 OR (owner IS NULL AND state = 'unknown'))")
                .bind(task_id)
                .bind(millis(self.lease)),
                false,
            ),
            Event::Unknown { error, .. } => (
                base("UPDATE kling.jobs SET state = 'unknown', error = $4, owner = NULL, lease_until = NULL, \
                      updated_at = clock_timestamp() WHERE batch = $1 AND id = $2 AND (owner = $3 OR owner IS NULL)")
                .bind(error),
                true,
            ),
            // Between two attempts: to do again, still this worker's (its
            // next intent follows); a kill now leaves it to do, not unknown.
            Event::NotTaken { retrying: true, .. } => (
                base("UPDATE kling.jobs SET state = 'todo', updated_at = clock_timestamp(), nonces = array_remove(nonces, nonce) \
                      WHERE batch = $1 AND id = $2 AND owner = $3 AND state = 'submitting'"),
                false,
            ),
            Event::NotTaken { .. } => (
                base("UPDATE kling.jobs SET state = 'todo', owner = NULL, lease_until = NULL, updated_at = clock_timestamp(), \
                      nonces = CASE WHEN state = 'submitting' THEN array_remove(nonces, nonce) ELSE nonces END \
                      WHERE batch = $1 AND id = $2 AND owner = $3 AND state IN ('submitting', 'todo')"),
                true,
            ),
            Event::Rejected { kind, message, input, .. } => (
                base("UPDATE kling.jobs SET state = 'rejected', result = $4::jsonb, input = COALESCE($5, input), owner = NULL, \
                      nonces = CASE WHEN state = 'submitting' THEN array_remove(nonces, nonce) ELSE nonces END, \
                      lease_until = NULL, updated_at = clock_timestamp() WHERE batch = $1 AND id = $2 AND owner = $3")
                .bind(crate::batch::ResultLine::rejected(id, kind, message).to_value().to_string())
                .bind(input.clone()),
                true,
            ),
            // Not the job's state: one more task of it, from any worker.
            Event::Found { task_id, nonce, .. } => (
                base("UPDATE kling.jobs SET task_ids = CASE WHEN $4 = ANY(task_ids) THEN task_ids ELSE array_append(task_ids, $4) END, \
                      nonces = array_remove(nonces, $5), updated_at = clock_timestamp() \
                      WHERE batch = $1 AND id = $2 AND ($3::text IS NOT NULL)")
                .bind(task_id)
                .bind(nonce),
                false,
            ),
            Event::Finished { result, .. } => (
                base("UPDATE kling.jobs SET state = 'finished', result = $4::jsonb, owner = NULL, lease_until = NULL, \
                      updated_at = clock_timestamp() WHERE batch = $1 AND id = $2 AND owner = $3")
                .bind(result.to_string()),
                true,
            ),
        };
        let done = query
            .execute(&self.pool)
            .await
            .map_err(db("cannot record a job's event"))?;
        if ends {
            self.hold(id, false);
        }
        if done.rows_affected() == 0 {
            self.hold(id, false);
            return Err(StoreError::LeaseLost { id: id.to_owned() });
        }
        if matches!(event, Event::Recovered { .. }) {
            // Given up as unknown, taken back with its task: renewed again.
            self.hold(id, true);
        }
        Ok(())
    }

    /// Whether this worker still holds `id` (its lease was renewed in time).
    pub async fn holds(&self, id: &str) -> Result<bool, StoreError> {
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

    /// The worker's name in the store.
    pub fn worker(&self) -> &str {
        &self.worker
    }
}

/// Renews every lease `held` names, every third of the lease, in one statement.
async fn renew(
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

pub mod identity;
mod schema;
mod speed;
#[cfg(test)]
mod tests;
