//! `kling generate`: check, guard, upload, submit, wait, download.

use crate::cli::GenerateArgs;
use crate::context::Context;
use crate::error::code;
use crate::output::{Failure, size};
use kling_api_ext::Error;
use serde_json::json;

use super::steps::*;

/// What to do after a simulated video.
const NEXT_STEPS: &str = "  next  a real video: `kling login` (your Apikley key), then the same command without --sim
        tasks that outlive a command: `kling sim` in another terminal, then --base-url (docs/cli.md)
        from Rust: the SDK guide, kling-api-ext/README.md; for AI agents: `kling mcp` (docs/mcp.md)";

pub async fn generate(ctx: &Context, args: GenerateArgs) -> Result<u8, Failure> {
    let request = request(&args.inputs)?;
    if let Some(out) = &args.out {
        check_out_path(out, args.force)?;
    }
    describe(ctx, &request, !args.inputs.no_preflight);
    // The webhook flags are checked before the guard reads the balance:
    // nothing is sent with a receiver the service could not call.
    let hooks = crate::webhook::start(
        &ctx.out,
        &args.webhook,
        args.inputs.callback_url.as_deref(),
        ctx.client.base_url(),
    )
    .await?;
    let reservation = match guard(
        ctx,
        &request,
        &args.spend,
        !args.inputs.no_preflight,
        "generate",
    )
    .await?
    {
        Guarded::Done(code) => return Ok(code),
        Guarded::Go(reservation) => reservation,
    };
    let submitted = submit(
        ctx,
        &request,
        args.out.as_deref(),
        "generate",
        hooks.as_ref(),
        args.timeout,
        reservation.as_ref(),
    )
    .await?;
    let id = submitted.id.clone();
    let out_path = args.out.clone().unwrap_or_else(|| default_out(&id));
    let resume = (!ctx.simulated).then(|| resume_command(&id, Some(&out_path), args.force));
    match &resume {
        // Even with -q: the task is paid for, and this is how to get it back.
        Some(resume) => ctx.out.notice(&format!(
            "  task  {id} (if interrupted, resume with: {resume})"
        )),
        None => ctx.out.say(&format!("  task  {id} {SIM_ONLY}")),
    }
    if args.no_wait {
        if ctx.out.json {
            ctx.out
                .document(&json!({"taskId": id.as_str(), "resume": resume}));
        } else {
            ctx.out.text(id.as_str());
        }
        return Ok(code::OK);
    }
    // From here on every failure names the task and how to pick it up again.
    let after = |e: Error| Failure::after_submit(e, &id, resume.clone());
    // A recovered task was just read: when it has ended, no wait.
    let task = match submitted.recovered.clone() {
        Some(task) if task.state.is_terminal() => {
            let ended = task.into_result();
            ctx.budget.ended(id.as_str(), &ended);
            ended
        }
        _ => {
            wait(
                ctx,
                &id,
                request.audio_duration(),
                args.timeout,
                hooks.as_ref(),
            )
            .await
        }
    }
    .map_err(after)?;
    let saved = download(ctx, &task, &out_path).await.map_err(after)?;
    if ctx.simulated {
        ctx.out.say(
            "  note  SIMULATED: this video is the simulator's placeholder, not a generated avatar",
        );
        // The try-it run's next steps (stderr: the result stays the path).
        ctx.out.say(NEXT_STEPS);
    }
    if args.open {
        open_with_system(ctx, &saved.path);
    }
    if ctx.out.json {
        let mut document = result_document(&task, Some(&saved));
        document["recovered"] = json!(submitted.recovered.is_some());
        ctx.out.document(&document);
    } else {
        ctx.out.say(&format!(
            "  done  {} ({}, sha256 {})",
            saved.path.display(),
            size(saved.bytes),
            &saved.sha256[..16]
        ));
        ctx.out.text(&saved.path.display().to_string());
    }
    Ok(code::OK)
}
