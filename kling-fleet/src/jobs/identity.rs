//! Which store this is, and which of its batches a manifest's jobs belong to,
//! by the `kling` CLI's rule (what the helpers here find is for it to apply).
//!
//! A batch is not named by its manifest's file name alone: the same jobs from
//! a renamed or copied manifest are the same batch, and two manifests that
//! merely share a name are two batches. The rule, in order:
//! 1. `--batch-name NAME`: that batch.
//! 2. The output directory's `store.json`, written by the fleet run that used
//!    it: that batch (the directory belongs to it).
//! 3. The batch holding the most of the manifest's jobs, each with the same id
//!    and the same inputs (a renamed copy, or an edited manifest).
//! 4. Otherwise a new batch, `FILE-HASH`: the manifest's file name and a hash
//!    of its jobs, so that workers starting at once agree on it.

use sha2::{Digest, Sha256};
use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};

use super::{JobStoreError, db};

/// This database's identity (made on first use): kept in `store.json` so that
/// a directory of one store is not taken for another's.
pub async fn store_id(pool: &PgPool) -> Result<String, JobStoreError> {
    let fresh = format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
    sqlx::query("INSERT INTO kling.identity (singleton, id) VALUES (true, $1) ON CONFLICT (singleton) DO NOTHING")
        .bind(&fresh)
        .execute(pool)
        .await
        .map_err(db("cannot record the store's identity"))?;
    let (id,): (String,) = sqlx::query_as("SELECT id FROM kling.identity")
        .fetch_one(pool)
        .await
        .map_err(db("cannot read the store's identity"))?;
    Ok(id)
}

/// The batches holding any of `jobs` (id, inputs) unchanged, with how many,
/// most first.
pub async fn batches_holding(
    pool: &PgPool,
    jobs: &[(String, String)],
) -> Result<Vec<(String, i64)>, JobStoreError> {
    let ids: Vec<&str> = jobs.iter().map(|j| j.0.as_str()).collect();
    let inputs: Vec<&str> = jobs.iter().map(|j| j.1.as_str()).collect();
    sqlx::query_as(
        "SELECT j.batch, count(*) FROM kling.jobs j \
         JOIN UNNEST($1::text[], $2::text[]) AS m(id, input) \
           ON j.id = m.id AND md5(j.input) = md5(m.input) AND j.input = m.input \
         GROUP BY j.batch ORDER BY count(*) DESC, j.batch",
    )
    .bind(&ids)
    .bind(&inputs)
    .fetch_all(pool)
    .await
    .map_err(db("cannot look for the manifest's batch"))
}

/// The batches holding any of `ids` (whatever their lines), with how many,
/// most first.
pub async fn batches_sharing_ids(
    pool: &PgPool,
    ids: &[String],
) -> Result<Vec<(String, i64)>, JobStoreError> {
    sqlx::query_as(
        "SELECT batch, count(*) FROM kling.jobs WHERE id = ANY($1) \
         GROUP BY batch ORDER BY count(*) DESC, batch",
    )
    .bind(ids)
    .fetch_all(pool)
    .await
    .map_err(db("cannot look for the manifest's batch"))
}

/// Holds the store's batch-resolution lock on one connection until
/// [`unlock`]: workers starting at once decide their batch (and load its
/// jobs) one after the other, so none of them creates a second batch for
/// jobs another has just loaded. A killed worker's connection closes, and
/// the lock with it.
pub async fn lock(pool: &PgPool) -> Result<PoolConnection<Postgres>, JobStoreError> {
    let mut conn = pool
        .acquire()
        .await
        .map_err(db("cannot connect to decide the batch"))?;
    sqlx::query("SELECT pg_advisory_lock(hashtext('kling.batch-resolution'))")
        .execute(&mut *conn)
        .await
        .map_err(db("cannot lock the batch resolution"))?;
    Ok(conn)
}

/// Lets the next worker decide its batch.
pub async fn unlock(mut conn: PoolConnection<Postgres>) {
    let unlocked = sqlx::query("SELECT pg_advisory_unlock(hashtext('kling.batch-resolution'))")
        .execute(&mut *conn)
        .await;
    if let Err(error) = unlocked {
        // Dropped with its connection: closed, so the lock goes too.
        tracing::warn!(%error, "cannot unlock the batch resolution; closing its connection");
        let _ = conn.close().await;
    }
}

/// The service `batch`'s tasks are created on: `service` if this is the
/// batch's first worker (recorded), else what its first worker recorded.
pub async fn service_of(
    pool: &PgPool,
    batch: &str,
    service: &str,
) -> Result<String, JobStoreError> {
    sqlx::query(
        "INSERT INTO kling.batches (batch, service) VALUES ($1, $2) ON CONFLICT (batch) DO NOTHING",
    )
    .bind(batch)
    .bind(service)
    .execute(pool)
    .await
    .map_err(db("cannot record the batch's service"))?;
    let (recorded,): (String,) =
        sqlx::query_as("SELECT service FROM kling.batches WHERE batch = $1")
            .bind(batch)
            .fetch_one(pool)
            .await
            .map_err(db("cannot read the batch's service"))?;
    Ok(recorded)
}

/// A new batch's key: the manifest's file name and a hash of its jobs.
pub fn new_batch_key(file_name: &str, jobs: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = jobs.iter().collect();
    sorted.sort();
    let mut hash = Sha256::new();
    for (id, input) in sorted {
        hash.update(id.as_bytes());
        hash.update([0]);
        hash.update(input.as_bytes());
        hash.update([0]);
    }
    let digest = hash.finalize();
    let short: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("{file_name}-{short}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_key_depends_on_the_jobs_not_their_order() {
        let a = ("a".to_owned(), "{}".to_owned());
        let b = ("b".to_owned(), "{\"x\":1}".to_owned());
        let key = new_batch_key("jobs.jsonl", &[a.clone(), b.clone()]);
        assert!(key.starts_with("jobs.jsonl-"), "{key}");
        assert_eq!(key, new_batch_key("jobs.jsonl", &[b.clone(), a.clone()]));
        let other = ("a".to_owned(), "{\"y\":2}".to_owned());
        assert_ne!(key, new_batch_key("jobs.jsonl", &[other, b]));
    }
}
