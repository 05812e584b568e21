//! `kling status TASK_ID`: what the service says of a task.

use crate::cli::TaskArgs;
use crate::context::Context;
use crate::error::code;
use kling_api_ext::Error;

use super::steps::*;

pub async fn status(ctx: &Context, args: TaskArgs) -> Result<u8, Error> {
    let task = ctx.client.get(&task_id(&args.task_id)?).await?;
    if ctx.out.json {
        let mut doc = serde_json::to_value(&task).expect("serializable");
        // The service's echo of the callBackUrl (a token in its query) and a
        // failure message quoting inputs (presigned URLs) are shown safely;
        // the result URLs are the user's to fetch, and stay whole.
        for field in ["callbackUrl", "failMsg"] {
            if let Some(text) = doc[field].as_str() {
                doc[field] = kling_api_ext::redact(text).into();
            }
        }
        ctx.out.document(&doc);
    } else {
        let mut text = format!("{} {}", task.task_id, task.state);
        if let Some(url) = task.video_url() {
            text.push_str(&format!("\nvideo: {url}"));
        }
        if let Some(t) = task.cost_time {
            text.push_str(&format!("\ntook: {:.0} s", t.as_secs_f64()));
        }
        if let (Some(code), msg) = (&task.fail_code, &task.fail_msg) {
            text.push_str(&format!(
                "\nfailed: {code} {}",
                kling_api_ext::redact(msg.as_deref().unwrap_or(""))
            ));
        }
        ctx.out.text(&text);
    }
    Ok(code::OK)
}
