//! Submitting a request: upload local files, check URLs, then create the task
//! without ever paying twice (see [`crate::retry`] for the rule).

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::call::Call;
use crate::client::Client;
use crate::error::{ApiErrorKind, Error, Field, Operation, Result};
use crate::interpret::Answer;
use crate::lifecycle::TaskId;
use crate::limit::LimitWait;
use crate::media::MediaKind;
use crate::request::{AvatarRequest, BuiltInput, Media, MediaSource};
use crate::retry::{Runner, Step};

mod options;
mod prepare;

pub use options::{SubmitOptions, SubmitWait, SubmitWaitReason};
pub use prepare::{PrepareEvent, PrepareOptions};

/// The createTask body: typed, or JSON when it carries an `input` field the
/// spec does not know.
enum CreateBody {
    Typed(kling_api::types::KlingAiAvatarV1ProBody),
    Json(serde_json::Value),
}

crate::interpret::envelope! {
    kling_api::types::KlingAiAvatarV1ProResponse => kling_api::types::KlingAiAvatarV1ProResponseData,
}

/// createTask's retry rule: a failed attempt is sent again only when the
/// service certainly did not take it; when nobody knows whether a task exists,
/// the answer is [`Error::SubmitOutcomeUnknown`], never a resend.
fn verdict(error: Error) -> Step {
    match &error {
        Error::Transport {
            may_have_reached_server: false,
            ..
        } => Step::Again(error),
        Error::Transport { .. } => outcome_unknown(error),
        Error::Api { kind, .. } => match kind {
            ApiErrorKind::RateLimited | ApiErrorKind::Maintenance => Step::Again(error),
            // "Server exception": the service failed somewhere while handling
            // it, maybe after the task was stored. Resending could pay twice.
            ApiErrorKind::ServerError => outcome_unknown(error),
            // Not taken, but a usage cap outlasts any retry; the other
            // refusals would be the same again; an unknown code is kept as
            // the service said it.
            _ => Step::Stop(error),
        },
        // A proxy page, an HTTP 5xx whatever its body, a truncated or foreign
        // body, a success without a task id.
        Error::UnexpectedResponse { .. } => outcome_unknown(error),
        _ => Step::Stop(error),
    }
}

fn outcome_unknown(error: Error) -> Step {
    // Returned, so the caller reports it: a warning too would say it twice.
    tracing::info!(error = %error, "createTask outcome unknown; not retried");
    Step::Stop(Error::SubmitOutcomeUnknown {
        cause: Box::new(error),
    })
}

impl Client {
    /// Uploads what needs uploading, checks URLs (if preflight is on), then
    /// creates the task. Returns its id.
    ///
    /// createTask is sent again only when the service certainly did not take it
    /// (no connection, 429/433, 455), within the rate limiter and the retry
    /// policy. When the request may have reached the service but no answer says
    /// what happened (a timeout or reset once sent, any HTTP 5xx, an envelope
    /// `code: 500` that is not a validation message, a body that is not the
    /// envelope), this returns [`Error::SubmitOutcomeUnknown`]: the task may
    /// exist, and submitting again could pay for it twice.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # // Run for real against the simulator (a dev-dependency), not the service.
    /// # let sim = kling_sim::Simulator::builder().start().await?;
    /// # let client = kling_api_ext::Client::builder()
    /// #     .api_key(sim.api_key())
    /// #     .base_url(sim.base_url())
    /// #     .upload_base_url(sim.upload_base_url())
    /// #     .build()?;
    /// # let assets = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/assets");
    /// use kling_api_ext::{AvatarRequest, Error};
    ///
    /// let request = AvatarRequest::builder()
    ///     .image(format!("{assets}/face.png")) // a local file, uploaded on submit, or a URL
    ///     .audio(format!("{assets}/hello.wav"))
    ///     .build()?;
    /// match client.submit(&request).await {
    ///     Ok(task_id) => println!("created {task_id}"),
    ///     Err(Error::SubmitOutcomeUnknown { cause }) => {
    ///         eprintln!("the task may exist ({cause}); check before submitting again")
    ///     }
    ///     Err(other) => return Err(other.into()),
    /// }
    /// # assert_eq!(sim.stats().tasks_created, 1);
    /// # Ok(()) }
    /// ```
    ///
    /// [`SubmitOptions`] (`.options(..)`) add a cancel token and wait
    /// reports; a cancel during the uploads stops before createTask.
    pub fn submit<'a>(&'a self, request: &'a AvatarRequest) -> Call<'a, SubmitOptions, TaskId> {
        Call::new(move |options| async move {
            let prepared = self.prepare(request).await?;
            self.create_task_inner(&prepared, options).await
        })
    }

    /// Creates the task for a request whose image and audio are URLs (see
    /// [`prepare`](Self::prepare)). The rule for repeats is [`submit`](Self::submit)'s.
    /// [`SubmitOptions`] (`.options(..)`) add a cancel token and wait reports.
    ///
    /// A pause the service asked for (a 429's `Retry-After`, shared by every
    /// client of the key) is waited out only within the retry policy's time
    /// budget: a longer one returns [`ApiErrorKind::RateLimited`] at once, nothing
    /// sent. Errors that say "not taken" (nothing created, safe to submit again
    /// later) are [`Error::NotSent`], an [`Error::Api`] of kind
    /// [`ApiErrorKind::RateLimited`], [`ApiErrorKind::UsageLimited`] or
    /// [`ApiErrorKind::Maintenance`], and a
    /// [`Error::Transport`] whose request was not sent.
    pub fn create_task<'a>(
        &'a self,
        request: &'a AvatarRequest,
    ) -> Call<'a, SubmitOptions, TaskId> {
        Call::new(move |options| self.create_task_inner(request, options))
    }

    async fn create_task_inner(
        &self,
        request: &AvatarRequest,
        options: SubmitOptions,
    ) -> Result<TaskId> {
        let url = |media: &Media, kind: MediaKind| match media.source() {
            MediaSource::Url(url) => Ok(url.to_string()),
            MediaSource::Path(path) => Err(Error::invalid(
                kind.field(),
                Some(path.display().to_string()),
                "a local file must be uploaded first: use submit() or prepare()",
            )),
        };
        // Through the generated builders, never struct literals: a field the
        // spec gains is optional to them, so this keeps compiling.
        let input = crate::request::build_input(
            url(&request.image, MediaKind::Image)?,
            url(&request.audio, MediaKind::Audio)?,
            &request.prompt,
            &request.extra_input,
        )?;
        let body = kling_api::types::KlingAiAvatarV1ProBody::builder()
            .model(self.model_for(request).wire())
            .call_back_url(request.callback_url.as_ref().map(ToString::to_string));
        let body = match input {
            BuiltInput::Typed(input) => CreateBody::Typed(
                kling_api::types::KlingAiAvatarV1ProBody::try_from(body.input(Some(input)))
                    .map_err(|e| Error::invalid(Field::Input, None, e.to_string()))?,
            ),
            // A field the spec does not know: the typed body cannot carry it.
            BuiltInput::Json(input) => {
                let body = kling_api::types::KlingAiAvatarV1ProBody::try_from(body)
                    .map_err(|e| Error::invalid(Field::Input, None, e.to_string()))?;
                let mut body = serde_json::to_value(body).unwrap_or_default();
                body["input"] = input;
                CreateBody::Json(body)
            }
        };

        let policy = &self.inner.retry;
        let limiter = self.inner.limiter.as_ref();
        let started = Instant::now();
        let attempt = AtomicU32::new(1);
        let not_sent = || Error::NotSent {
            operation: Operation::CreateTask,
        };
        // With a limiter, a 429 pauses it and the next acquire waits; without
        // one, the loop waits.
        let delay = |error: &Error, backoff: Duration| match (limiter, error.api_kind()) {
            (Some(_), Some(ApiErrorKind::RateLimited)) => Duration::ZERO,
            _ => error.retry_after().unwrap_or(backoff),
        };
        let notify = |error: &Error, delay: Duration, next: u32| {
            attempt.store(next, Ordering::Relaxed);
            tracing::info!(attempt = next - 1, error = %error, "createTask not taken by the service; sending again");
            if !delay.is_zero() {
                options.report(
                    delay,
                    SubmitWaitReason::Retry {
                        error: error.to_string(),
                    },
                    next,
                );
            }
        };
        Runner::new(policy, Operation::CreateTask)
            .delay(&delay)
            .notify(&notify)
            .cancel(options.cancel.clone())
            .run(|| async {
                if options.cancelled() {
                    return Err(Step::Stop(not_sent()));
                }
                let permit = match limiter {
                    Some(limiter) => {
                        let attempt = attempt.load(Ordering::Relaxed);
                        let mut too_long = None;
                        let limit = limiter.limit();
                        // One submit of this client asks the limiter at a time (the
                        // others queue here, in order): a shared limiter is asked
                        // once per process per freed slot, not once per waiting job.
                        let gate = &self.inner.limiter_gate;
                        let ask = crate::limit::acquire(limiter, self.inner.create_lease, |wait, why| {
                            if why == LimitWait::Paused
                                && started.elapsed().saturating_add(wait) > policy.time_budget
                            {
                                // Waiting this out would hold the caller past the budget.
                                too_long = Some(wait);
                                return false;
                            }
                            let reason = match why {
                                LimitWait::Paused => SubmitWaitReason::ServicePause,
                                _ => SubmitWaitReason::RateLimitWindow {
                                    max: limit.max,
                                    window: limit.window,
                                },
                            };
                            options.report(wait, reason, attempt);
                            true
                        });
                        // Waiting for a slot sends nothing: safe to stop.
                        let acquire = async {
                            let _turn = gate.lock().await;
                            ask.await
                        };
                        let permit = match &options.cancel {
                            Some(token) => tokio::select! {
                                permit = acquire => permit,
                                _ = token.cancelled() => return Err(Step::Stop(not_sent())),
                            },
                            None => acquire.await,
                        };
                        let permit = permit.map_err(|source| {
                            Step::Stop(Error::Limiter {
                                operation: Operation::CreateTask,
                                source,
                            })
                        })?;
                        let Some(permit) = permit else {
                            let wait = too_long.unwrap_or_default();
                            return Err(Step::Stop(Error::Api {
                                operation: Operation::CreateTask,
                                task_id: None,
                                code: 429,
                                kind: ApiErrorKind::RateLimited,
                                msg: format!(
                                    "creation is paused for {:.0} s after the service answered 429, longer than the retry budget ({:.0} s); nothing was sent",
                                    wait.as_secs_f64(),
                                    policy.time_budget.as_secs_f64()
                                ),
                                retry_after: Some(wait),
                            }));
                        };
                        Some(permit)
                    }
                    None => None,
                };
                if let Some(hook) = &options.before_send
                    && let Err(reason) = hook().await
                {
                    tracing::warn!(%reason, "createTask not sent: the intent could not be recorded");
                    return Err(Step::Stop(not_sent()));
                }
                // Once sent, the request is never abandoned: its answer (or
                // its timeout) decides, so a task it created is never lost.
                let outcome = self.create_once(&body).await;
                if let (Some(limiter), Err(Error::Api { kind: ApiErrorKind::RateLimited, retry_after, .. })) =
                    (limiter, &outcome)
                {
                    let paused = async {
                        let pause = match retry_after {
                            Some(pause) => *pause,
                            None => limiter.rest_of_window().await?,
                        };
                        limiter.pause(pause).await
                    };
                    if let Err(error) = paused.await {
                        // The next ask most likely fails the same way and stops the submit.
                        tracing::warn!(%error, "could not pause the rate limiter after a 429");
                    }
                }
                // The slot is given back now that the answer has arrived.
                if let Some(permit) = permit {
                    permit.release().await;
                }
                match outcome {
                    Ok(task_id) => Ok(task_id),
                    Err(error) => {
                        let step = verdict(error);
                        if let (Step::Again(error), Some(hook)) = (&step, &options.after_not_taken)
                            && let Err(reason) = hook(error).await
                        {
                            tracing::warn!(%reason, "could not record that createTask was not taken");
                        }
                        Err(step)
                    }
                }
            })
            .await
    }

    async fn create_once(&self, body: &CreateBody) -> Result<TaskId> {
        let operation = Operation::CreateTask;
        let data = self
            .send_once(operation, None, async {
                match body {
                    CreateBody::Typed(body) => self
                        .inner
                        .api_create
                        .kling_ai_avatar_v1_pro()
                        .body(body.clone())
                        .send()
                        .await
                        .into(),
                    CreateBody::Json(body) => {
                        let path = operation.endpoint().map_or("", |e| e.path);
                        let request = self
                            .inner
                            .create_http
                            .post(self.api_url_for(path))
                            .headers(self.inner.auth_headers.clone())
                            .json(body)
                            .send();
                        Answer::Raw(request.await)
                    }
                }
            })
            .await?;
        let id = data.task_id.ok_or_else(|| Error::UnexpectedResponse {
            operation,
            task_id: None,
            status: 200,
            detail: "code 200 but no taskId: the task may exist".into(),
            body: String::new(),
            retry_after: None,
        })?;
        let id = TaskId::new(id).map_err(|e| Error::UnexpectedResponse {
            operation,
            task_id: None,
            status: 200,
            detail: format!("code 200 but the taskId is not usable: {e}"),
            body: String::new(),
            retry_after: None,
        })?;
        tracing::info!(task_id = %id, "task created");
        // Fresh: a wait gives it a moment to become visible.
        Ok(id.created_now())
    }
}
