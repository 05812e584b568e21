//! `kling submit`: as `generate`, ending once the task id is known.

use crate::cli::SubmitArgs;
use crate::context::Context;
use crate::error::code;
use crate::output::Failure;
use serde_json::json;

use super::steps::*;

pub async fn submit_only(ctx: &Context, args: SubmitArgs) -> Result<u8, Failure> {
    let request = request(&args.inputs)?;
    describe(ctx, &request, !args.inputs.no_preflight);
    let reservation = match guard(
        ctx,
        &request,
        &args.spend,
        !args.inputs.no_preflight,
        "submit",
    )
    .await?
    {
        Guarded::Done(code) => return Ok(code),
        Guarded::Go(reservation) => reservation,
    };
    let id = submit(
        ctx,
        &request,
        None,
        "submit",
        None,
        std::time::Duration::ZERO,
        reservation.as_ref(),
    )
    .await?
    .id;
    if ctx.out.json {
        ctx.out.document(&json!({"taskId": id.as_str(), "estimatedCredits": ctx.client.estimate_credits(&request)}));
    } else {
        if ctx.simulated {
            ctx.out.say(&format!("submitted {SIM_ONLY}"));
        } else {
            ctx.out
                .say(&format!("submitted; follow with: kling wait {id}"));
        }
        ctx.out.text(id.as_str());
    }
    Ok(code::OK)
}
