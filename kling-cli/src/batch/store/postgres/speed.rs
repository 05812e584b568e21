//! The fleet's learned generation speed, shared through the store
//! (`kling_fleet::pg::share_speed`).

use kling_api_ext::wait::DurationModel;

use super::{PgJobs, db};
use crate::batch::store::StoreError;

impl PgJobs {
    /// Adds this worker's new samples for `service`, then gives `model` the
    /// other workers' samples newer than `seen`. Returns how many it took.
    pub async fn share_speed(
        &self,
        service: &str,
        model: &DurationModel,
        seen: &mut i64,
    ) -> Result<usize, StoreError> {
        kling_fleet::pg::share_speed(&self.pool, &self.worker, service, model, seen)
            .await
            .map_err(db("cannot share the generation speed"))
    }
}
