//! The poll loop behind [`Client::wait`]: one look at a time, each bounded by
//! the deadline and the token, the next one spent where the task is likely to
//! end, or at once when a callback says it did.

use std::time::Duration;

use tokio::time::Instant;

use super::callbacks::Woke;
use super::{CancellationToken, PollContext, WaitEvent, WaitOptions};
use crate::client::{Client, Polled};
use crate::error::{Error, Result};
use crate::lifecycle::{State, TaskId};
use crate::task::Task;

impl Client {
    pub(super) async fn wait_inner(&self, task_id: &TaskId, options: WaitOptions) -> Result<Task> {
        let started = Instant::now();
        let deadline = options.deadline.and_then(|d| started.checked_add(d));
        let mut context = PollContext {
            elapsed: Duration::ZERO,
            polls: 0,
            state: None,
            generating_since: None,
            expected_generation: options.expected_generation,
            expected_generation_range: options.expected_generation_range,
            expected_total: options.expected_total,
        };
        let mut seen_once = false;
        // Answers in a row that were well-formed but incomplete (`success`
        // without a result URL, `code: 200` without data).
        let mut incomplete_in_a_row = 0u32;
        // Status requests in a row that failed in transit: each lost a look at
        // the task, so the next comes sooner than the policy's delay.
        let grace = options.grace_for(task_id);
        let mut failed_in_a_row = 0u32;
        // Why the last look told nothing (said if the wait times out), and
        // whether any answer came that could not be read.
        let mut last_problem: Option<String> = None;
        let mut unreadable_seen = false;
        // With callbacks: the schedule is the safety poll's, `arrivals` counts
        // the callbacks acted on, `via_callback` says the next look confirms
        // one, and `rechecks` counts the quick looks after a confirmation
        // that showed the task still running.
        let policy = match &options.callbacks {
            Some(_) => options.safety.clone(),
            None => options.policy.clone(),
        };
        let mut arrivals = 0u32;
        let mut via_callback = false;
        let mut rechecks = 0u32;
        if options.callbacks.is_some() && !options.look_now {
            // A look right after createTask tells nothing: the first comes
            // with a callback (at once if one came already) or the safety poll.
            let wake = later(policy.next_delay(&context));
            let wake = deadline.map_or(wake, |d| wake.min(d));
            match self.pause(&options, wake, task_id, &mut arrivals).await {
                Woke::Cancelled => {
                    return Err(Error::Cancelled {
                        task_id: task_id.clone(),
                    });
                }
                Woke::Callback => via_callback = true,
                Woke::Time => {}
            }
        }
        loop {
            if options
                .cancel
                .as_ref()
                .is_some_and(CancellationToken::is_cancelled)
            {
                return Err(Error::Cancelled {
                    task_id: task_id.clone(),
                });
            }
            // The request timeout may be long or, with a caller's own reqwest
            // client, absent: the deadline and the token also bound the poll in
            // flight, not only the sleeps between polls.
            let now = Instant::now();
            let limit = deadline.map(|d| if now < d { d } else { now + FINAL_LOOK });
            let result =
                match bounded(self.poll_once(task_id), limit, options.cancel.as_ref()).await {
                    Ok(result) => result,
                    Err(Interrupted::Cancelled) => {
                        return Err(Error::Cancelled {
                            task_id: task_id.clone(),
                        });
                    }
                    Err(Interrupted::Deadline) => {
                        context.elapsed = started.elapsed();
                        return Err(timed_out(task_id, &context, last_problem));
                    }
                };
            context.polls += 1;
            context.elapsed = started.elapsed();
            let mut transient = None;
            let mut retry_after = None;
            let previous = context.state.clone();
            if !matches!(result, Ok(Polled::Incomplete { .. })) {
                incomplete_in_a_row = 0;
            }
            match result {
                Ok(Polled::Incomplete { state, error }) => {
                    seen_once = true;
                    incomplete_in_a_row += 1;
                    if let Some(state) = state {
                        context.state = Some(state);
                    }
                    if incomplete_in_a_row >= CONFIRM_POLLS {
                        let detail = match &error {
                            Error::UnexpectedResponse { detail, .. } => detail.clone(),
                            other => other.to_string(),
                        };
                        // Returned as ResultMissing: the caller reports it.
                        tracing::info!(task_id = %task_id, %detail, "the task's answer stays incomplete");
                        return Err(Error::ResultMissing {
                            task_id: task_id.clone(),
                            last_state: context.state.clone(),
                            polls: context.polls,
                            detail,
                        });
                    }
                    // Looked at again soon: a result being written may be
                    // complete a moment later.
                    transient = Some(format!("incomplete answer, confirming: {error}"));
                    failed_in_a_row += 1;
                }
                Ok(Polled::Task(task)) => {
                    seen_once = true;
                    last_problem = None;
                    if task.state == State::Generating && context.generating_since.is_none() {
                        context.generating_since = Some(context.elapsed);
                    }
                    context.state = Some(task.state.clone());
                    self.report(
                        &options,
                        task_id,
                        &context,
                        previous.as_ref(),
                        None,
                        via_callback,
                    );
                    if via_callback {
                        tracing::info!(task_id = %task_id, state = %task.state, "callback confirmed by recordInfo");
                    }
                    match task.state {
                        State::Success => {
                            tracing::info!(task_id = %task_id, polls = context.polls, "task succeeded");
                            // Generation time, from first seen generating to first
                            // seen ended (each within a poll interval of the truth).
                            if let (Some(audio), Some(since)) =
                                (options.audio, context.generating_since)
                            {
                                self.inner
                                    .durations
                                    .learn(audio, context.elapsed.saturating_sub(since));
                            }
                            return Ok(task);
                        }
                        State::Fail => {
                            return task.into_result_from(Some(crate::error::Operation::GetTask));
                        }
                        _ => {}
                    }
                }
                // Only a task that has a grace (created by this process just
                // now, or given one). Its first look counts as "right after
                // creation" however late it comes: with callbacks it may come
                // only with the safety poll, past the grace.
                Err(Error::Api {
                    kind: crate::error::ApiErrorKind::NotFound,
                    ..
                }) if !seen_once
                    && grace.is_some_and(|grace| context.elapsed < grace || context.polls == 1) =>
                {
                    transient = Some("not visible yet (recordInfo is null)".to_owned());
                    last_problem = None;
                }
                Err(error) if error.is_retryable() => {
                    retry_after = error.retry_after();
                    transient = Some(error.to_string());
                    unreadable_seen |= matches!(error, Error::UnexpectedResponse { .. });
                    last_problem = Some(match &error {
                        Error::UnexpectedResponse { .. } => {
                            format!("unreadable answers, last: {error}")
                        }
                        // "unreadable" first: the task was answered, only
                        // never readably (not "not visible").
                        _ if unreadable_seen => {
                            format!("unreadable answers, then failed looks, last: {error}")
                        }
                        _ => format!("failed looks, last: {error}"),
                    });
                    failed_in_a_row += 1;
                }
                Err(error) => return Err(error),
            }
            let lost_a_look = transient.is_some();
            if let Some(message) = transient {
                tracing::debug!(task_id = %task_id, error = %message, "transient; still waiting");
                self.report(
                    &options,
                    task_id,
                    &context,
                    previous.as_ref(),
                    Some(message),
                    via_callback,
                );
            }
            let mut delay = policy.next_delay(&context);
            // Still running although called back: 2, 4, 8 s, then the safety poll.
            rechecks = match (via_callback, rechecks) {
                (true, _) => 1,
                (false, 0) => 0,
                (false, n) if n < 3 => n + 1,
                _ => 0,
            };
            if rechecks > 0 {
                delay = delay.min(Duration::from_secs(2) * (1 << (rechecks - 1)));
            }
            if retry_after.is_none() && lost_a_look && failed_in_a_row > 0 {
                // 0.5 s, 1 s, 2 s... but never later than the policy would look.
                let quick =
                    RETRY_FIRST.saturating_mul(1 << failed_in_a_row.min(8).saturating_sub(1));
                delay = delay.min(quick);
            } else if !lost_a_look {
                failed_in_a_row = 0;
            }
            if let Some(after) = retry_after {
                delay = delay.max(after);
            }
            let mut wake = later(delay);
            if let Some(deadline) = deadline {
                if Instant::now() >= deadline {
                    return Err(timed_out(task_id, &context, last_problem));
                }
                // One last look exactly at the deadline.
                wake = wake.min(deadline);
            }
            via_callback = match self.pause(&options, wake, task_id, &mut arrivals).await {
                Woke::Cancelled => {
                    return Err(Error::Cancelled {
                        task_id: task_id.clone(),
                    });
                }
                Woke::Callback => true,
                Woke::Time => false,
            };
        }
    }

    fn report(
        &self,
        options: &WaitOptions,
        task_id: &TaskId,
        context: &PollContext,
        previous: Option<&State>,
        transient_error: Option<String>,
        via_callback: bool,
    ) {
        let Some(progress) = &options.progress else {
            return;
        };
        progress(&WaitEvent {
            task_id: task_id.clone(),
            state: context.state.clone(),
            state_changed: context.state.as_ref() != previous,
            elapsed: context.elapsed,
            polls: context.polls,
            transient_error,
            via_callback,
        });
    }
}

/// `delay` from now; a policy may return anything, and an overflowing
/// wake-up means "much later".
fn later(delay: Duration) -> Instant {
    Instant::now()
        .checked_add(delay)
        .unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400))
}

/// The first delay after a status request failed in transit (it doubles while
/// they keep failing, up to the policy's own delay).
const RETRY_FIRST: Duration = Duration::from_millis(500);

/// How many answers in a row must be incomplete (`success` without a result
/// URL, `code: 200` without data) before a wait ends with
/// [`Error::ResultMissing`]: the first and two confirming looks.
const CONFIRM_POLLS: u32 = 3;

/// How long the last look, sent at the deadline, may take: a wait ends at most
/// this long after its deadline, even if the service stops answering (a poll
/// sent before the deadline is cut at the deadline).
const FINAL_LOOK: Duration = Duration::from_secs(10);

enum Interrupted {
    Deadline,
    Cancelled,
}

/// Runs `future` unless the token is cancelled or `limit` passes first.
async fn bounded<F: std::future::Future>(
    future: F,
    limit: Option<Instant>,
    cancel: Option<&CancellationToken>,
) -> std::result::Result<F::Output, Interrupted> {
    let limit = async {
        match limit {
            Some(at) => tokio::time::sleep_until(at).await,
            None => std::future::pending().await,
        }
    };
    let cancelled = async {
        match cancel {
            Some(token) => token.cancelled().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        biased;
        () = cancelled => Err(Interrupted::Cancelled),
        output = future => Ok(output),
        () = limit => Err(Interrupted::Deadline),
    }
}

fn timed_out(task_id: &TaskId, context: &PollContext, last_problem: Option<String>) -> Error {
    let never_read = context.state.is_none()
        && last_problem
            .as_deref()
            .is_some_and(|p| p.starts_with("unreadable"));
    Error::WaitTimedOut {
        task_id: task_id.clone(),
        elapsed: context.elapsed,
        last_state: context.state.clone().unwrap_or(State::Unknown(
            if never_read {
                "never read"
            } else {
                "not visible"
            }
            .into(),
        )),
        polls: context.polls,
        last_problem,
    }
}
