//! Which batch of the store a fleet run is (the rule is written in
//! `store::postgres::identity`), decided under the store's resolution lock.

use super::manifest::Job;
use super::mode::{self, StoreMark};
use super::store::postgres::identity;
use super::store::store_error;
use crate::cli::BatchArgs;
use crate::error::CliError;
use crate::output::Failure;

/// The batch this run is, by the rule in `store::postgres::identity`.
pub(super) async fn resolve_batch(
    pool: &sqlx::PgPool,
    args: &BatchArgs,
    jobs: &[Job],
    store_id: &str,
    mark: Option<&StoreMark>,
) -> Result<String, Failure> {
    if let Some(mark) = mark {
        if mark.store_id != store_id {
            return Err(mode::refuse_other_store(args, mark).into());
        }
        if let Some(name) = &args.batch_name
            && *name != mark.batch
        {
            return Err(CliError::Invalid {
                field: kling_api_ext::Field::File,
                subject: Some(args.out_dir().display().to_string()),
                reason: format!(
                    "this directory holds batch {:?} of this store, not {name:?}: two batches in one directory would mix their videos and results; nothing was sent. Give --batch-name {:?}, or another --out-dir",
                    mark.batch, mark.batch
                ),
            }
            .into());
        }
        return Ok(mark.batch.clone());
    }
    if let Some(name) = &args.batch_name {
        return Ok(name.clone());
    }
    let pairs: Vec<(String, String)> = jobs
        .iter()
        .map(|j| (j.id.clone(), j.input.clone()))
        .collect();
    let found = identity::batches_holding(pool, &pairs)
        .await
        .map_err(store_error)?;
    match found.as_slice() {
        [] => {
            // No batch holds any of these lines as they are. One holding
            // most of these ids with other lines (another --model or
            // profile, every line edited) may be this manifest's: a new
            // batch would pay for every job again, so a person says which.
            let ids: Vec<String> = jobs.iter().map(|j| j.id.clone()).collect();
            let sharing = identity::batches_sharing_ids(pool, &ids)
                .await
                .map_err(store_error)?;
            if let Some((other, n)) = sharing.first()
                && (*n as usize) * 2 > ids.len()
            {
                return Err(CliError::Invalid {
                    field: kling_api_ext::Field::File,
                    subject: Some(args.manifest.display().to_string()),
                    reason: format!(
                        "batch {other:?} of the store holds {n} of this manifest's {} job id(s), each with another line (another --model or profile, or edited lines); nothing was sent. If this manifest is that batch's, give --batch-name {other:?} (its changed lines are then reported, not paid again); if it is another project's, give it a --batch-name of its own",
                        ids.len()
                    ),
                }
                .into());
            }
            let file = args
                .manifest
                .file_name()
                .map_or_else(|| "batch".to_owned(), |n| n.to_string_lossy().into_owned());
            Ok(identity::new_batch_key(&file, &pairs))
        }
        [(one, _)] => Ok(one.clone()),
        [(first, n), (_, m), ..] if n > m => Ok(first.clone()),
        tied => {
            let top = tied[0].1;
            let tied: Vec<(String, i64)> =
                tied.iter().filter(|(_, n)| *n == top).cloned().collect();
            Err(mode::refuse_ambiguous_batch(args, &tied).into())
        }
    }
}
