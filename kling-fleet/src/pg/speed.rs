//! Learned generation speed shared by every worker of a fleet: each adds what
//! its waits learn and takes what the others learned, so their polls improve
//! together (`kling.speed_samples`).

use kling_api_ext::wait::DurationModel;
use sqlx::PgPool;

/// Samples taken from the others at most per exchange (the model keeps 32).
const TAKE: i64 = 32;

/// Adds `worker`'s new samples for `service` (what `model` learned since the
/// last call, [`DurationModel::take_learned`]), then gives `model` the other
/// workers' samples newer than `seen` (the newest 32 at first, earlier runs
/// included) and moves `seen` past them. Returns how many it took.
///
/// `service` names the service the samples are for (its base URL, without a
/// key): speeds on the simulator and on the service are kept apart.
pub async fn share_speed(
    pool: &PgPool,
    worker: &str,
    service: &str,
    model: &DurationModel,
    seen: &mut i64,
) -> Result<usize, sqlx::Error> {
    let mine = model.take_learned();
    if !mine.is_empty() {
        sqlx::query(
            "INSERT INTO kling.speed_samples (service, worker, ratio) SELECT $1, $2, r FROM UNNEST($3::float8[]) AS s(r)",
        )
        .bind(service)
        .bind(worker)
        .bind(&mine)
        .execute(pool)
        .await?;
    }
    let mut theirs: Vec<(i64, f64)> = sqlx::query_as(
        "SELECT id, ratio FROM kling.speed_samples WHERE service = $1 AND worker <> $2 AND id > $3 \
         ORDER BY id DESC LIMIT $4",
    )
    .bind(service)
    .bind(worker)
    .bind(*seen)
    .bind(TAKE)
    .fetch_all(pool)
    .await?;
    theirs.reverse();
    if let Some((last, _)) = theirs.last() {
        *seen = *last;
    }
    model.extend_samples(theirs.iter().map(|(_, ratio)| *ratio));
    Ok(theirs.len())
}
