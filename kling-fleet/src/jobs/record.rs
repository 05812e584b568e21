//! Recording what happened to a job: [`JobEvent`]s, each one conditional
//! update that only the job's holder can make (the intent above all).

use super::{JobStore, JobStoreError, db, millis};

/// What happened to a job, as [`JobStore::record`] writes it.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum JobEvent<'a> {
    /// About to send createTask with these inputs (and this nonce in its
    /// callBackUrl): refused unless this worker holds the job.
    Intent {
        /// The inputs sent.
        input: &'a str,
        /// The intent's nonce, if callbacks are heard.
        nonce: Option<&'a str>,
    },
    /// createTask's answer named the task, or a lost answer was recovered
    /// (`recovered`: a job given up as unknown is taken back).
    Created {
        /// The task.
        task_id: &'a str,
        /// Found again after its answer was lost.
        recovered: bool,
    },
    /// createTask's outcome is unknown: the task may exist.
    Unknown {
        /// Why.
        error: &'a str,
    },
    /// createTask certainly created nothing; `retrying`: this worker sends
    /// it again at once (it keeps the job).
    NotTaken {
        /// Whether this worker tries again now.
        retrying: bool,
    },
    /// The request was refused: the job ends with this result.
    Rejected {
        /// The result to keep (JSON).
        result: &'a serde_json::Value,
        /// Its inputs, if they changed.
        input: Option<&'a str>,
    },
    /// One more task of the job, named by a callback on one of its nonces
    /// (not the job's state; from any worker).
    Found {
        /// The task.
        task_id: &'a str,
        /// The nonce it was found on.
        nonce: &'a str,
    },
    /// The job ended with this result (JSON).
    Finished {
        /// The result.
        result: &'a serde_json::Value,
    },
}

impl JobStore {
    /// Records one event of job `id`, which this worker holds. The intent is
    /// refused ([`JobStoreError::LeaseLost`]) unless this worker still holds
    /// the job.
    pub async fn record(&self, id: &str, event: JobEvent<'_>) -> Result<(), JobStoreError> {
        let base = |sql: &'static str| {
            sqlx::query(sql)
                .bind(&self.batch)
                .bind(id)
                .bind(&self.worker)
        };
        let (query, ends) = match event {
            JobEvent::Intent { input, nonce } => (
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
            JobEvent::Created { task_id, .. } => (
                base("UPDATE kling.jobs SET state = 'running', task_id = $4, task_ids = array_append(task_ids, $4), \
                      nonces = array_remove(nonces, nonce), \
                      error = NULL, updated_at = clock_timestamp(), lease_until = clock_timestamp() + $5 * interval '1 millisecond', \
                      owner = $3 WHERE batch = $1 AND id = $2 AND state IN ('submitting', 'unknown') \
                      AND (owner = $3 OR (owner IS NULL AND state = 'unknown'))")
                .bind(task_id)
                .bind(millis(self.lease)),
                false,
            ),
            JobEvent::Unknown { error } => (
                base("UPDATE kling.jobs SET state = 'unknown', error = $4, owner = NULL, lease_until = NULL, \
                      updated_at = clock_timestamp() WHERE batch = $1 AND id = $2 AND (owner = $3 OR owner IS NULL)")
                .bind(error),
                true,
            ),
            // Between two attempts: to do again, still this worker's (its
            // next intent follows); a kill now leaves it to do, not unknown.
            JobEvent::NotTaken { retrying: true } => (
                base("UPDATE kling.jobs SET state = 'todo', updated_at = clock_timestamp(), nonces = array_remove(nonces, nonce) \
                      WHERE batch = $1 AND id = $2 AND owner = $3 AND state = 'submitting'"),
                false,
            ),
            JobEvent::NotTaken { retrying: false } => (
                base("UPDATE kling.jobs SET state = 'todo', owner = NULL, lease_until = NULL, updated_at = clock_timestamp(), \
                      nonces = CASE WHEN state = 'submitting' THEN array_remove(nonces, nonce) ELSE nonces END \
                      WHERE batch = $1 AND id = $2 AND owner = $3 AND state IN ('submitting', 'todo')"),
                true,
            ),
            JobEvent::Rejected { result, input } => (
                base("UPDATE kling.jobs SET state = 'rejected', result = $4::jsonb, input = COALESCE($5, input), owner = NULL, \
                      nonces = CASE WHEN state = 'submitting' THEN array_remove(nonces, nonce) ELSE nonces END, \
                      lease_until = NULL, updated_at = clock_timestamp() WHERE batch = $1 AND id = $2 AND owner = $3")
                .bind(result.to_string())
                .bind(input),
                true,
            ),
            // Not the job's state: one more task of it, from any worker.
            JobEvent::Found { task_id, nonce } => (
                base("UPDATE kling.jobs SET task_ids = CASE WHEN $4 = ANY(task_ids) THEN task_ids ELSE array_append(task_ids, $4) END, \
                      nonces = array_remove(nonces, $5), updated_at = clock_timestamp() \
                      WHERE batch = $1 AND id = $2 AND ($3::text IS NOT NULL)")
                .bind(task_id)
                .bind(nonce),
                false,
            ),
            JobEvent::Finished { result } => (
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
            return Err(JobStoreError::LeaseLost { id: id.to_owned() });
        }
        if matches!(
            event,
            JobEvent::Created {
                recovered: true,
                ..
            }
        ) {
            // Given up as unknown, taken back with its task: renewed again.
            self.hold(id, true);
        }
        Ok(())
    }
}
