//! The jobs of a batch in PostgreSQL (`kling.jobs`), shared by every worker
//! of a fleet. A worker claims a job with `FOR UPDATE SKIP LOCKED` and holds
//! it under a lease on the database's clock, renewed while it works; the
//! intent to submit is a conditional update that only the lease holder can
//! make, so at most one createTask is sent per intent across every host. A
//! `submitting` job whose lease ran out (its worker died between intent and
//! answer) becomes `unknown`, never to do again.
//!
//! The `kling` CLI's `batch --store` runs on it; the states are its
//! journal's (`todo`, `submitting`, `running`, `unknown`, `rejected`,
//! `finished`), and a job's inputs and results are the caller's JSON.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sqlx::PgPool;

use kling_api_ext::wait::DurationModel;

pub mod identity;
mod lease;
mod record;

pub use record::JobEvent;

/// A job store that could not record or read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobStoreError {
    /// A database statement failed.
    #[error("{what}: {source}")]
    Db {
        /// What it was doing.
        what: &'static str,
        /// The database's error.
        #[source]
        source: sqlx::Error,
    },
    /// This worker no longer holds the job: its lease ran out and another
    /// worker may have it. Nothing is to be sent for it from here.
    #[error("job {id}: this worker's lease on it ran out; another worker has it")]
    LeaseLost {
        /// The job.
        id: String,
    },
}

/// One job's row, as planning reads it.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Row {
    /// Its line in the manifest (from 1).
    pub line: i32,
    /// `todo`, `submitting`, `running`, `unknown`, `rejected` or `finished`.
    pub state: String,
    /// Its inputs, as the caller stored them.
    pub input: String,
    /// Its current task.
    pub task_id: Option<String>,
    /// Every task created for it.
    pub task_ids: Vec<String>,
    /// Its result (finished or rejected).
    pub result: Option<serde_json::Value>,
    /// Why its outcome is unknown.
    pub error: Option<String>,
    /// The worker that holds or held it.
    pub owner: Option<String>,
    /// Whether `owner`'s lease is still running.
    pub leased: bool,
    /// The nonce of its last intent (webhook mode).
    pub nonce: Option<String>,
    /// The nonces of its intents whose outcome is still unknown.
    pub nonces: Vec<String>,
}

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

/// A batch's jobs in the database, as one worker sees them.
pub struct JobStore {
    pool: PgPool,
    batch: String,
    worker: String,
    /// The jobs this worker holds a lease on.
    held: Arc<Mutex<BTreeSet<String>>>,
    lease: Duration,
    renewer: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for JobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobStore")
            .field("batch", &self.batch)
            .field("worker", &self.worker)
            .finish_non_exhaustive()
    }
}

impl Drop for JobStore {
    fn drop(&mut self) {
        self.renewer.abort();
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

pub(crate) fn db(what: &'static str) -> impl FnOnce(sqlx::Error) -> JobStoreError {
    move |source| JobStoreError::Db { what, source }
}

impl JobStore {
    /// The batch `batch` of the store `pool` (migrated: [`crate::pg::migrate`]),
    /// as `worker` sees it, holding its claims for `lease` (renewed every
    /// third of it while held). Needs a tokio runtime (the renewals run on it).
    pub fn with_pool(pool: PgPool, batch: &str, worker: &str, lease: Duration) -> JobStore {
        let held: Arc<Mutex<BTreeSet<String>>> = Arc::default();
        let renewer = tokio::spawn(lease::renew(
            pool.clone(),
            batch.to_owned(),
            worker.to_owned(),
            held.clone(),
            lease,
        ));
        JobStore {
            pool,
            batch: batch.to_owned(),
            worker: worker.to_owned(),
            held,
            lease,
            renewer,
        }
    }

    /// Adds the manifest's jobs that are not in the store yet, as to do (one
    /// statement: many workers loading the same manifest add each job once).
    pub async fn load(&self, jobs: &[(String, usize, String)]) -> Result<u64, JobStoreError> {
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
    pub async fn sweep(&self) -> Result<u64, JobStoreError> {
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
    pub async fn rows(&self) -> Result<BTreeMap<String, Row>, JobStoreError> {
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
    pub async fn again(&self, id: &str, state: &str, input: &str) -> Result<bool, JobStoreError> {
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
    ) -> Result<Option<Claimed>, JobStoreError> {
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
    pub async fn open_jobs(&self, skip: &[String], submit: bool) -> Result<i64, JobStoreError> {
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

    /// The worker's name in the store.
    pub fn worker(&self) -> &str {
        &self.worker
    }

    /// The pool it uses.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Adds this worker's new samples of generation speed for `service`,
    /// then gives `model` the other workers' samples newer than `seen`
    /// ([`crate::pg::share_speed`]). Returns how many it took.
    pub async fn share_speed(
        &self,
        service: &str,
        model: &DurationModel,
        seen: &mut i64,
    ) -> Result<usize, JobStoreError> {
        crate::pg::share_speed(&self.pool, &self.worker, service, model, seen)
            .await
            .map_err(db("cannot share the generation speed"))
    }
}
