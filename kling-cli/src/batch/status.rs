//! `kling batch MANIFEST --store URL --status`: every job's state across the
//! fleet, from the store alone.

use serde_json::json;

use super::fleet::worker_name;
use super::mode;
use super::resolve::resolve_batch;
use super::store::PgJobs;
use super::store::postgres::{self, identity};
use super::store::store_error;
use crate::cli::BatchArgs;
use crate::error::{CliError, code};
use crate::output::{Failure, Out};

/// `kling batch MANIFEST --store URL --status`: every job's state across the
/// fleet, from the store alone (no key, nothing sent).
pub async fn status(out: Out, args: &BatchArgs) -> Result<u8, Failure> {
    let url = args.store.clone().unwrap_or_default();
    let text = std::fs::read_to_string(&args.manifest).map_err(|e| CliError::Invalid {
        field: kling_api_ext::Field::File,
        subject: Some(args.manifest.display().to_string()),
        reason: format!("the manifest cannot be read: {e}"),
    })?;
    let (jobs, _) = super::manifest::parse(&args.manifest, &text, args.model.clone());
    let mark = match &args.out_dir {
        Some(dir) => mode::read_mark(dir)?,
        None => None,
    };
    let pool = postgres::connect(&url).await.map_err(store_error)?;
    let store_id = identity::store_id(&pool).await.map_err(store_error)?;
    // Read only, and from a host that may lack the media files or the
    // workers' options: the batch the lines name, else the one holding most
    // of the manifest's ids (read from every line that has one).
    let batch = match (&mark, &args.batch_name) {
        (Some(_), _) | (_, Some(_)) => {
            resolve_batch(&pool, args, &jobs, &store_id, mark.as_ref()).await?
        }
        (None, None) => {
            let pairs: Vec<(String, String)> = jobs
                .iter()
                .map(|j| (j.id.clone(), j.input.clone()))
                .collect();
            let ids: Vec<String> = text
                .lines()
                .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
                .filter_map(|v| v["id"].as_str().map(str::to_owned))
                .collect();
            let by_lines = identity::batches_holding(&pool, &pairs)
                .await
                .map_err(store_error)?;
            let by_ids = identity::batches_sharing_ids(&pool, &ids)
                .await
                .map_err(store_error)?;
            match by_lines.first().or(by_ids.first()) {
                Some((batch, _)) => batch.clone(),
                None => {
                    out.say(&format!(
                        "no batch of this store holds the jobs of {} yet",
                        args.manifest.display()
                    ));
                    if out.json {
                        out.document(&json!({"batch": null, "counts": {}, "jobs": []}));
                    }
                    return Ok(code::OK);
                }
            }
        }
    };
    let pg = PgJobs::with_pool(pool, &batch, &worker_name(), postgres::LEASE);
    let rows = pg.rows().await.map_err(store_error)?;
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    let mut jobs = Vec::new();
    let mut in_order: Vec<_> = rows.iter().collect();
    in_order.sort_by_key(|(_, row)| row.line);
    for (id, row) in in_order {
        *counts.entry(row.state.as_str()).or_default() += 1;
        let output = row
            .result
            .as_ref()
            .and_then(|r| r["output"].as_str())
            .map(str::to_owned);
        jobs.push(json!({
            "id": id,
            "line": row.line,
            "state": row.state,
            "taskId": row.task_id,
            "tasks": row.task_ids,
            "worker": row.leased.then_some(row.owner.clone()).flatten(),
            "output": output,
            "error": row.error.as_deref().map(kling_api_ext::redact),
            "status": row.result.as_ref().and_then(|r| r["status"].as_str()),
        }));
    }
    if out.json {
        out.document(&json!({"batch": batch, "counts": counts, "jobs": jobs}));
    } else {
        for job in &jobs {
            let detail = match job["state"].as_str() {
                Some("finished") => format!(
                    "{} {}",
                    job["status"].as_str().unwrap_or("?"),
                    job["output"].as_str().unwrap_or("")
                ),
                Some("unknown") => job["error"].as_str().unwrap_or("").to_owned(),
                Some("todo" | "submitting" | "running") => job["worker"]
                    .as_str()
                    .map_or(String::new(), |w| format!("held by {w}")),
                _ => String::new(),
            };
            out.text(&format!(
                "{:<24} {:<10} {:<28} {detail}",
                job["id"].as_str().unwrap_or(""),
                job["state"].as_str().unwrap_or(""),
                job["taskId"].as_str().unwrap_or("-"),
            ));
        }
        let line: Vec<String> = counts
            .iter()
            .map(|(state, n)| format!("{state} {n}"))
            .collect();
        out.text(&format!(
            "batch {:?}: {} job(s): {}",
            batch,
            rows.len(),
            line.join(" · ")
        ));
    }
    Ok(code::OK)
}
