//! `kling history`: every paid request, newest first; `--refresh` asks the
//! service about the ones not ended.

use crate::context::Context;
use crate::error::code;
use crate::output::Out;
use kling_api_ext::Error;

pub(super) fn select(
    records: Vec<crate::history::Record>,
    args: &crate::cli::HistoryArgs,
) -> Vec<crate::history::Record> {
    records
        .into_iter()
        .filter(|r| args.state.as_ref().is_none_or(|s| &r.state == s))
        .take(args.limit)
        .collect()
}

/// `kling history`: the paid requests, newest first.
pub fn history(out: &Out, args: &crate::cli::HistoryArgs) -> u8 {
    crate::history::show(out, &select(crate::history::read(), args));
    code::OK
}

/// `kling history --refresh`: reads the state of unfinished tasks first (of
/// this service only), records it, then lists.
pub async fn refresh_history(ctx: &Context, args: &crate::cli::HistoryArgs) -> Result<u8, Error> {
    // As the history keeps it (redacted).
    let base = kling_api_ext::redact(ctx.client.base_url().as_str())
        .trim_end_matches('/')
        .to_owned();
    for record in crate::history::read()
        .iter()
        .filter(|r| crate::history::unfinished(r) && r.base_url.trim_end_matches('/') == base)
        .take(args.limit.max(1) * 4)
    {
        let Some(id) = record
            .task_id
            .as_deref()
            .and_then(|t| kling_api_ext::TaskId::new(t).ok())
        else {
            continue;
        };
        match ctx.client.get(&id).await {
            Ok(task) => ctx.history.state(&record.reference, task.state.as_str()),
            Err(e) => ctx.out.warn(&format!("task {id}: {e}")),
        }
    }
    crate::history::show(&ctx.out, &select(crate::history::read(), args));
    Ok(code::OK)
}
