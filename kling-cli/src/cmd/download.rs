//! `kling download TASK_ID`: the video of a task that has ended.

use crate::cli::DownloadArgs;
use crate::context::Context;
use crate::error::CliError;
use crate::error::code;
use crate::output::{Failure, shell_quote};
use kling_api_ext::{Error, Field};

use super::steps::*;

pub async fn download_cmd(ctx: &Context, args: DownloadArgs) -> Result<u8, Failure> {
    let id = task_id(&args.task_id)?;
    check_out_path(&args.out, args.force)?;
    let resume = (!ctx.simulated).then(|| {
        format!(
            "kling download {} --out {}{}",
            shell_quote(id.as_str()),
            shell_quote(&args.out.display().to_string()),
            if args.force { " --force" } else { "" }
        )
    });
    let after = |e: Error| Failure::after_submit(e, &id, resume.clone());
    let task = ctx.client.get(&id).await.map_err(after)?;
    if !task.state.is_terminal() {
        // Nothing to download yet: the command that waits is the one to run.
        return Err(Failure {
            unresumable: ctx.simulated,
            error: CliError::Invalid {
                field: Field::TaskId,
                subject: Some(id.to_string()),
                reason: format!(
                    "the task has not finished yet (state {}): there is no video to download",
                    task.state
                ),
            },
            resume: (!ctx.simulated).then(|| resume_command(&id, Some(&args.out), args.force)),
        });
    }
    let task = task.into_result().map_err(after)?;
    // An expired result URL is replaced by a fresh link (the SDK asks once).
    let saved = download(ctx, &task, &args.out).await.map_err(after)?;
    if ctx.out.json {
        ctx.out.document(&result_document(&task, Some(&saved)));
    } else {
        ctx.out.text(&saved.path.display().to_string());
    }
    Ok(code::OK)
}
