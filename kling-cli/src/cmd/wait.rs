//! `kling wait TASK_ID`: wait for a task, then download its video.

use crate::cli::WaitArgs;
use crate::context::Context;
use crate::error::code;
use crate::output::Failure;
use kling_api_ext::Error;

use super::steps::*;

pub async fn wait_cmd(ctx: &Context, args: WaitArgs) -> Result<u8, Failure> {
    let id = task_id(&args.task_id)?;
    if let Some(out) = &args.out {
        check_out_path(out, args.force)?;
    }
    let resume = (!ctx.simulated).then(|| resume_command(&id, args.out.as_deref(), args.force));
    let after = |e: Error| Failure::after_submit(e, &id, resume.clone());
    let task = wait(ctx, &id, None, args.timeout, None)
        .await
        .map_err(after)?;
    let saved = match &args.out {
        // An expired result URL is replaced by a fresh link (the SDK asks once).
        Some(out) => Some(download(ctx, &task, out).await.map_err(after)?),
        None => None,
    };
    if ctx.out.json {
        ctx.out.document(&result_document(&task, saved.as_ref()));
    } else {
        match &saved {
            Some(saved) => ctx.out.text(&saved.path.display().to_string()),
            None => ctx.out.text(task.video_url().map_or("", |u| u.as_str())),
        }
    }
    Ok(code::OK)
}
