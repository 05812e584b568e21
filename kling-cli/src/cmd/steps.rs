//! The steps `generate`, `submit`, `wait` and `download` share: building and
//! describing the request, the spending guard, submit, wait, download, and
//! the resume command.

use std::path::Path;
use std::time::Duration;

use kling_api_ext::WaitOptions;
use kling_api_ext::{AvatarRequest, Error, Field, SubmitOptions, Task, TaskId};
use serde_json::json;

use crate::cli::Inputs;
use crate::context::Context;
use crate::error::CliError;
use crate::error::code;
use crate::ledger::Reservation;
use crate::output::size;
use crate::ui;
use crate::webhook::Webhooks;

pub(crate) use super::save::{
    check_out_path, default_out, download, result_document, resume_command,
};

/// Builds and checks the request: nothing is sent if this fails.
pub fn request(inputs: &Inputs) -> Result<AvatarRequest, CliError> {
    let prompt = match (&inputs.prompt, &inputs.prompt_file) {
        (Some(prompt), _) => prompt.clone(),
        (None, Some(path)) => {
            let read = if path.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())
            } else {
                std::fs::read_to_string(path)
            };
            let mut text = read.map_err(|e| CliError::Invalid {
                field: Field::Prompt,
                subject: Some(path.display().to_string()),
                reason: format!("the prompt file cannot be read: {e}"),
            })?;
            // Editors end files with a newline; it is not part of the prompt
            // (nor of its 5,000-character limit).
            if text.ends_with('\n') {
                text.pop();
                if text.ends_with('\r') {
                    text.pop();
                }
            }
            text
        }
        (None, None) => String::new(),
    };
    let mut builder = AvatarRequest::builder()
        .image(inputs.image.as_str())
        .audio(inputs.audio.as_str())
        .prompt(prompt);
    if let Some(url) = &inputs.callback_url {
        builder = builder.callback_url(url);
    }
    if let Some(model) = &inputs.model {
        builder = builder.model(model.clone());
    }
    for (key, value) in &inputs.set {
        builder = builder.extra_input(key, value.clone());
    }
    Ok(builder.build()?)
}

/// What the checks found, for a person: types, sizes, dimensions, duration,
/// the cost estimate and the warnings.
pub fn describe(ctx: &Context, request: &AvatarRequest, preflight: bool) {
    let out = &ctx.out;
    for (label, media) in [("image", request.image()), ("audio", request.audio())] {
        let source = media.source().to_string();
        let facts = media.facts().map(|f| {
            let mut parts = vec![f.mime.to_owned()];
            if let Some((w, h)) = f.dimensions {
                parts.push(format!("{w}x{h}"));
            }
            if let Some(d) = f.duration {
                parts.push(format!("{:.1} s", d.as_secs_f64()));
            }
            if let Some(b) = f.bytes {
                parts.push(size(b));
            }
            parts.join(", ")
        });
        out.say(&format!(
            "{label:>6}  {source}  {}",
            facts.unwrap_or_else(|| if preflight {
                "(checked before submitting)".into()
            } else {
                "(not checked: --no-preflight)".into()
            })
        ));
    }
    let rate = ctx.client.credits_per_second(ctx.client.model_for(request));
    match ctx.client.estimate_credits(request) {
        Some(credits) => out.say(&format!(
            "  cost  about {credits} credits ({} s of audio x {rate} credits/s, {}; Apikley's price may differ)",
            request.audio().facts().and_then(|f| f.duration).map_or(0.0, |d| d.as_secs_f64().ceil()),
            ctx.client.model_for(request)
        )),
        None => out.say(&format!("  cost  unknown: the audio's duration is not known ({rate} credits per generated second)")),
    }
    for warning in request.warnings() {
        out.warn(warning);
    }
}

/// A task createTask made.
pub(crate) struct Submitted {
    pub id: TaskId,
    /// createTask's answer was lost and the task's callback named it: the
    /// task as then read.
    pub recovered: Option<Task>,
}

/// Uploads, checks URLs, submits. Returns the task id. Ctrl-C stops the
/// uploads and any wait before createTask is sent (nothing created); a
/// createTask on the wire is always answered first, so its task id is never
/// lost. With `hooks`, the request's callBackUrl carries a fresh nonce,
/// recorded with the intent, and a lost answer is recovered from the task's
/// callback for up to `recover_for`.
pub(crate) async fn submit(
    ctx: &Context,
    request: &AvatarRequest,
    output: Option<&Path>,
    by: &str,
    hooks: Option<&Webhooks>,
    recover_for: Duration,
    reservation: Option<&Reservation>,
) -> Result<Submitted, Error> {
    let submitted = submit_counted(ctx, request, output, by, hooks, recover_for).await;
    if let Some(reservation) = reservation {
        match &submitted {
            Ok(submitted) => reservation.found(submitted.id.as_str()),
            // Failed before createTask (an upload, a URL check): not sent.
            Err((_, false)) => reservation.not_sent(),
            Err((e, true)) if e.is_not_taken() => reservation.not_sent(),
            // Maybe taken: its estimate stays counted.
            Err(_) => {}
        }
    }
    submitted.map_err(|(e, _)| e)
}

/// [`submit`], before the ledger hears its outcome; an error says whether
/// createTask was reached.
async fn submit_counted(
    ctx: &Context,
    request: &AvatarRequest,
    output: Option<&Path>,
    by: &str,
    hooks: Option<&Webhooks>,
    recover_for: Duration,
) -> Result<Submitted, (Error, bool)> {
    let (request, nonce) = match hooks {
        Some(hooks) => {
            let (nonce, url) = hooks.new_intent();
            (
                request
                    .clone()
                    .with_callback_url(url)
                    .map_err(|e| (e, false))?,
                Some(nonce),
            )
        }
        None => (request.clone(), None),
    };
    let request = &request;
    let cancel = ctx.interrupt.token();
    let line = ui::PrepareLine::new(&ctx.out);
    let prepared = tokio::select! {
        prepared = ctx.client.prepare(request).options(line.options()) => prepared,
        _ = cancel.cancelled() => Err(Error::NotSent { operation: kling_api_ext::error::Operation::CreateTask }),
    };
    line.finish();
    let prepared = prepared.map_err(|e| (e, false))?;
    // Preflight may have learnt sizes and types of URL inputs.
    for warning in prepared.warnings().iter().skip(request.warnings().len()) {
        ctx.out.warn(warning);
    }
    let line = ui::SubmitLine::new(&ctx.out);
    let options = SubmitOptions::new()
        .cancel_token(cancel)
        .on_wait(line.callback());
    // Recorded before it is sent: a crash or a lost answer still leaves what
    // was asked for, when, to find the task on the dashboard.
    let reference = ctx.history.intent(
        ctx.client.base_url().as_str(),
        request,
        output.map(|o| o.display().to_string()),
        by.to_owned(),
        nonce.as_deref(),
    );
    let created = {
        let _sending = ctx.interrupt.sending();
        ctx.client.create_task(&prepared).options(options).await
    };
    ctx.history.outcome(&reference, &created);
    line.finish();
    match (created, hooks, nonce) {
        (Err(lost @ Error::SubmitOutcomeUnknown { .. }), Some(hooks), Some(nonce)) => {
            recover(ctx, hooks, &nonce, &reference, lost, recover_for)
                .await
                .map_err(|e| (e, true))
        }
        (created, ..) => created
            .map(|id| Submitted {
                id,
                recovered: None,
            })
            .map_err(|e| (e, true)),
    }
}

/// After a lost createTask answer: waits for the callback that names the
/// task (the service calls back when it ends), or gives `lost` back.
async fn recover(
    ctx: &Context,
    hooks: &Webhooks,
    nonce: &str,
    reference: &str,
    lost: Error,
    recover_for: Duration,
) -> Result<Submitted, Error> {
    ctx.out.warn(&format!(
        "{lost}; listening for the task's callback (up to {}) to find it",
        humantime::format_duration(recover_for)
    ));
    let line = ui::spinner(&ctx.out, "recover", "waiting for the task's callback");
    let options = WaitOptions::new()
        .deadline(Some(recover_for))
        .cancel_token(ctx.interrupt.token());
    let found = hooks.hub.recover(&ctx.client, nonce, &options).await;
    line.finish_and_clear();
    match found {
        Ok(Some(task)) => {
            ctx.history.recovered(reference, task.task_id.as_str());
            ctx.out.notice(&format!(
                "  recovered  task {} (createTask's answer was lost; its callback named it)",
                task.task_id
            ));
            Ok(Submitted {
                id: task.task_id.clone(),
                recovered: Some(task),
            })
        }
        Ok(None) => Err(lost),
        Err(e) => {
            let (named, said) = hooks.unconfirmed(nonce, &e);
            ctx.history.named(reference, &named, &e.to_string());
            ctx.out.warn(&said);
            Err(lost)
        }
    }
}

/// Waits with a live status line; Ctrl-C stops polling (the task keeps
/// running). With `hooks`, the task's callback ends the wait. `audio`, the
/// task's audio length when known, places the polls.
pub(super) async fn wait(
    ctx: &Context,
    id: &TaskId,
    audio: Option<Duration>,
    timeout: Duration,
    hooks: Option<&Webhooks>,
) -> Result<Task, Error> {
    let status = ui::StatusLine::new(&ctx.out, id.as_str());
    let mut options = WaitOptions::new()
        .deadline(Some(timeout))
        .cancel_token(ctx.interrupt.token())
        .on_progress(status.callback());
    if let Some(audio) = audio {
        options = options.audio_duration(audio);
    }
    // An id this machine created moments ago (`kling submit`, then `kling
    // wait`) may not be visible yet; any other unknown id fails at once.
    if id.created_ago().is_none() && crate::history::created_recently(id.as_str()) {
        options = options.not_visible_grace(kling_api_ext::wait::DEFAULT_NOT_VISIBLE_GRACE);
    }
    let options = match hooks {
        Some(hooks) => {
            status.waiting_for_callback();
            hooks.wait_options(options)
        }
        None => options,
    };
    let result = ctx.client.wait(id, options).await;
    status.finish();
    ctx.budget.ended(id.as_str(), &result);
    result
}

/// Opens `path` with the desktop's opener (`xdg-open`, `open`, `start`),
/// without waiting for the viewer; a failure only warns (the video is saved).
pub(super) fn open_with_system(ctx: &Context, path: &Path) {
    let mut command = if cfg!(target_os = "macos") {
        std::process::Command::new("open")
    } else if cfg!(windows) {
        let mut c = std::process::Command::new("cmd");
        c.args(["/C", "start", ""]);
        c
    } else {
        std::process::Command::new("xdg-open")
    };
    let spawned = command
        .arg(path)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Err(e) = spawned {
        ctx.out.warn(&format!(
            "cannot open {} with the system's opener: {e}",
            path.display()
        ));
    }
}

/// Said instead of a resume command under `--sim`, where none can work.
pub(super) const SIM_ONLY: &str = "(simulated: this task lives only in this process's simulator and ends with it; to follow tasks across commands, run `kling sim` in another terminal and point the CLI at it)";

/// What the guard on spending decided.
pub(super) enum Guarded {
    /// Nothing more to do (a dry run): the exit code.
    Done(u8),
    /// Go ahead; the request is counted in the ledger (where there is one).
    Go(Option<Reservation>),
}

/// The guard on spending (the daily budget first: a refused call reads
/// nothing), then, with `--dry-run`, the URL checks and the report.
pub(super) async fn guard(
    ctx: &Context,
    request: &AvatarRequest,
    spend: &crate::cli::Spend,
    preflight: bool,
    by: &str,
) -> Result<Guarded, CliError> {
    let estimate = ctx.client.estimate_credits(request);
    // Counted at its estimate, else at its cap.
    let counted = estimate.or(spend.max_credits);
    let budget_left = ctx.budget.check(counted)?;
    let (go, balance) = crate::guard::check(ctx, spend, estimate, "this video").await?;
    if go == crate::guard::Go::Ahead {
        return Ok(Guarded::Go(ctx.budget.reserve(counted, None, by)?));
    }
    // Every check but the upload: what URL inputs serve, too.
    let checked = if preflight {
        let line = ui::spinner(&ctx.out, "check", "what the URL inputs serve");
        let checked = ctx.client.preflight(request).await;
        line.finish_and_clear();
        checked?
    } else {
        request.clone()
    };
    for warning in checked.warnings().iter().skip(request.warnings().len()) {
        ctx.out.warn(warning);
    }
    if ctx.out.json {
        ctx.out.document(&json!({
            "dryRun": true,
            "estimatedCredits": estimate,
            "balance": balance,
            "dailyBudgetLeft": budget_left,
            "warnings": checked.warnings(),
        }));
    } else {
        let balance = balance.map_or(String::new(), |b| format!(" (balance: {b} credits)"));
        if let Some(left) = budget_left {
            ctx.out
                .say(&format!("  budget  {left} credits left today (UTC)"));
        }
        ctx.out.say(&format!(
            "dry run: every check passed{balance}; nothing was uploaded or submitted"
        ));
    }
    Ok(Guarded::Done(code::OK))
}

/// A task id given on the command line.
pub fn task_id(text: &str) -> Result<TaskId, Error> {
    Ok(TaskId::new(text.trim())?)
}
