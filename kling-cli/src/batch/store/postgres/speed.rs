//! The fleet's learned generation speed: each worker adds what its waits
//! learn and takes what the others learned, so their polls improve together.

use kling_api_ext::wait::DurationModel;

use super::{PgJobs, db};
use crate::batch::store::StoreError;

/// Samples taken from the others at most per exchange (the model keeps 32).
const TAKE: i64 = 32;

impl PgJobs {
    /// Adds this worker's new samples for `service`, then gives `model` the
    /// other workers' samples newer than `seen` (the newest 32 at first,
    /// earlier runs included). Returns how many it took.
    pub async fn share_speed(
        &self,
        service: &str,
        model: &DurationModel,
        seen: &mut i64,
    ) -> Result<usize, StoreError> {
        let mine = model.take_learned();
        if !mine.is_empty() {
            sqlx::query(
                "INSERT INTO kling.speed_samples (service, worker, ratio) SELECT $1, $2, r FROM UNNEST($3::float8[]) AS s(r)",
            )
            .bind(service)
            .bind(&self.worker)
            .bind(&mine)
            .execute(&self.pool)
            .await
            .map_err(db("cannot share the generation speed"))?;
        }
        let mut theirs: Vec<(i64, f64)> = sqlx::query_as(
            "SELECT id, ratio FROM kling.speed_samples WHERE service = $1 AND worker <> $2 AND id > $3 \
             ORDER BY id DESC LIMIT $4",
        )
        .bind(service)
        .bind(&self.worker)
        .bind(*seen)
        .bind(TAKE)
        .fetch_all(&self.pool)
        .await
        .map_err(db("cannot read the fleet's generation speed"))?;
        theirs.reverse();
        if let Some((last, _)) = theirs.last() {
            *seen = *last;
        }
        model.extend_samples(theirs.iter().map(|(_, ratio)| *ratio));
        Ok(theirs.len())
    }
}
