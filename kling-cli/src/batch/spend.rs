//! The guard on a batch's spending: every job to submit estimated, the
//! total checked against the caps and the balance, and the dry run's report.

use serde_json::json;

use super::manifest::Job;
use crate::cli::BatchArgs;
use crate::context::Context;
use crate::error::code;
use crate::output::Failure;

/// The guard on spending over the jobs to submit; `Some(exit code)` for a dry
/// run (said), `None` to go on.
pub(super) async fn guard(
    ctx: &Context,
    args: &BatchArgs,
    submits: &[&Job],
    waits: usize,
    bad: usize,
) -> Result<Option<u8>, Failure> {
    // The guard on spending: the jobs to submit, estimated one by one.
    let estimates: Vec<(String, Option<f64>)> = submits
        .iter()
        .map(|job| (job.id.clone(), ctx.client.estimate_credits(&job.request)))
        .collect();
    let unknown = estimates.iter().filter(|(_, e)| e.is_none()).count();
    let total = estimates
        .iter()
        .filter_map(|(_, e)| *e)
        .reduce(|a, b| a + b)
        .map(|t| (t * 100.0).round() / 100.0);
    let what = format!("this batch ({} job(s) to submit)", submits.len());
    let (go, balance) = crate::guard::check(ctx, &args.spend, total, &what).await?;
    let out = ctx.out;
    if go == crate::guard::Go::DryRun {
        for (id, estimate) in &estimates {
            out.say(&format!(
                "job {id}: {}",
                estimate.map_or("cost unknown (no audio length)".to_owned(), |e| format!(
                    "about {e} credits"
                ))
            ));
        }
        let unknown_note = if unknown > 0 {
            format!(" ({unknown} job(s) of unknown cost not counted)")
        } else {
            String::new()
        };
        if out.json {
            out.document(&json!({
                "dryRun": true,
                "jobs": estimates.iter().map(|(id, e)| json!({"id": id, "estimatedCredits": e})).collect::<Vec<_>>(),
                "estimatedCredits": total,
                "unknownEstimates": unknown,
                "balance": balance,
                "toWait": waits,
                "invalidLines": bad,
            }));
        } else {
            out.text(&format!(
                "dry run: {} job(s) to submit, about {} credits in all{unknown_note}; {} to wait for; nothing was uploaded or submitted",
                submits.len(),
                total.unwrap_or(0.0),
                waits
            ));
        }
        return Ok(Some(if bad == 0 { code::OK } else { code::INVALID }));
    }
    Ok(None)
}
