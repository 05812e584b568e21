//! Waiting with callbacks: the safety poll that catches a callback that never
//! comes, and recovering a task whose createTask answer was lost.

use std::time::Duration;

use tokio::time::Instant;

use super::{PollContext, PollPolicy, WaitOptions};
use crate::client::Client;
use crate::error::{Error, Result};
use crate::lifecycle::TaskId;
use crate::task::Task;
use crate::webhook::CallbackHub;

/// The poll schedule of a wait that has callbacks ([`WaitOptions::callbacks`]):
/// callbacks end the wait, so these looks only catch one that never arrives
/// (the service sends each once; a receiver that was down, a proxy, a network
/// between them can lose it).
///
/// The first look comes when the task should have ended well before: its
/// longest expected generation time × `after_expected` + `grace` when the
/// client knows one (it learns from polled waits, and from other processes
/// through the `kling` CLI's samples), else `cold_first` (30 s). Then every
/// `then` (30 s), growing by `factor` to `cap` (2 min). A lost callback is so
/// found within about one of these delays.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct SafetyPoll {
    /// The first look when nothing is expected.
    pub cold_first: Duration,
    /// With an expectation, the first look at this × the longest expected
    /// generation time...
    pub after_expected: f64,
    /// ... plus this (the time queued, and the callback's way).
    pub grace: Duration,
    /// The delay after the first look.
    pub then: Duration,
    /// Growth between later looks.
    pub factor: f64,
    /// The longest delay.
    pub cap: Duration,
}

setters!(SafetyPoll {
    cold_first: Duration => "The first look when nothing is expected.",
    after_expected: f64 => "With an expectation, the first look at this × the longest expected generation time (plus `grace`).",
    grace: Duration => "Added to the expected time of the first look (the time queued, and the callback's way).",
    then: Duration => "The delay after the first look.",
    factor: f64 => "Growth between later looks.",
    cap: Duration => "The longest delay.",
});

/// The shortest delay between later looks, whatever the settings say
/// (`then(Duration::ZERO)`, `cap(Duration::ZERO)`): a safety poll never
/// turns into a busy loop of status requests.
const MIN_LATER_LOOK: Duration = Duration::from_secs(1);

impl Default for SafetyPoll {
    fn default() -> Self {
        SafetyPoll {
            cold_first: Duration::from_secs(30),
            after_expected: 1.25,
            grace: Duration::from_secs(15),
            then: Duration::from_secs(30),
            factor: 1.5,
            cap: Duration::from_secs(120),
        }
    }
}

impl SafetyPoll {
    /// When (as time waited) the first look is due.
    pub fn first_look(&self, context: &PollContext) -> Duration {
        let longest = context
            .expected_total
            .or(context
                .expected_generation_range
                .map(|(_, longest)| longest))
            .or(context.expected_generation);
        match longest {
            Some(longest) => {
                Duration::try_from_secs_f64(longest.as_secs_f64() * self.after_expected)
                    .unwrap_or(longest)
                    .saturating_add(self.grace)
            }
            None => self.cold_first,
        }
    }
}

impl PollPolicy for SafetyPoll {
    fn next_delay(&self, context: &PollContext) -> Duration {
        let first = self.first_look(context);
        if context.elapsed < first {
            return first - context.elapsed;
        }
        // Looks made since the first was due (a callback's confirmations count too).
        let later = context.polls.saturating_sub(1).min(32) as i32;
        // A factor below 1 (or NaN) would shrink the delays toward a busy loop.
        let factor = if self.factor >= 1.0 { self.factor } else { 1.0 };
        let grown = self.then.as_secs_f64() * factor.powi(later);
        Duration::try_from_secs_f64(grown.min(self.cap.as_secs_f64()))
            .unwrap_or(self.cap)
            .max(MIN_LATER_LOOK)
    }
}

/// What woke a wait that sleeps between looks.
pub(super) enum Woke {
    Time,
    Callback,
    Cancelled,
}

impl Client {
    /// Sleeps until `until`, a callback for the task (when the wait has a
    /// hub) or cancellation. `arrivals` is how many callbacks the wait has
    /// acted on; a callback that came before the sleep wakes it at once.
    pub(super) async fn pause(
        &self,
        options: &WaitOptions,
        until: Instant,
        task_id: &crate::TaskId,
        arrivals: &mut u32,
    ) -> Woke {
        let callback = async {
            match &options.callbacks {
                Some(hub) => hub.callback_after(task_id, *arrivals).await,
                None => std::future::pending().await,
            }
        };
        let cancelled = async {
            match &options.cancel {
                Some(token) => token.cancelled().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = cancelled => Woke::Cancelled,
            n = callback => {
                *arrivals = n;
                Woke::Callback
            }
            () = tokio::time::sleep_until(until) => Woke::Time,
        }
    }

    /// Finds the task a createTask left when its answer was lost
    /// ([`Error::SubmitOutcomeUnknown`](crate::Error::SubmitOutcomeUnknown)):
    /// the service calls back when the task ends, at the `callBackUrl` the
    /// request carried, so a callback on the nonce's URL
    /// ([`callback_url`](crate::callback_url)) names it. Waits for one
    /// until `options`' deadline or cancellation (`Ok(None)`), reads the task
    /// from the service, and checks that it was created with this nonce's URL
    /// when the service echoes it: a callback naming another task (a replay,
    /// a forgery) is passed over and the wait goes on. A task named but not
    /// readable (an outage, a record not visible yet) is read again, every 2 s
    /// growing to 30 s, while other callbacks are still heard; if none was
    /// confirmed by the deadline, the last read's error comes back, naming
    /// its task: every task named stays in
    /// [`CallbackHub::tasks_for_nonce`], so a paid task's id is never lost.
    /// `options.deadline(None)` with no cancellation waits as long as it takes.
    ///
    /// ```no_run
    /// # async fn demo(client: kling_api_ext::Client, request: kling_api_ext::AvatarRequest) -> Result<(), kling_api_ext::Error> {
    /// use kling_api_ext::{CallbackHub, Error, WaitOptions, callback_url};
    ///
    /// let hub = CallbackHub::new(); // fed by a receiver (feature `webhook-receiver`)
    /// let nonce = hub.issue_nonce(); // expected by the hub from now on
    /// let public = "https://hooks.example.com/kling".parse().unwrap();
    /// let request = request.with_callback_url(callback_url(&public, &nonce))?;
    /// let task_id = match client.submit(&request).await {
    ///     Ok(id) => id,
    ///     Err(Error::SubmitOutcomeUnknown { .. }) => {
    ///         match client.recover(&hub, &nonce, &WaitOptions::new()).await? {
    ///             Some(task) => task.task_id, // recovered: paid once, found again
    ///             None => return Ok(()),      // no callback came: look on the dashboard
    ///         }
    ///     }
    ///     Err(e) => return Err(e),
    /// };
    /// let task = client.wait(&task_id, WaitOptions::new().callbacks(hub.clone())).await?;
    /// # Ok(()) }
    /// ```
    pub async fn recover(
        &self,
        hub: &CallbackHub,
        nonce: &str,
        options: &WaitOptions,
    ) -> Result<Option<Task>> {
        let deadline = options.deadline.and_then(|d| Instant::now().checked_add(d));
        let limit = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let cancelled = async {
            match &options.cancel {
                Some(token) => token.cancelled().await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(limit, cancelled);
        // Tasks read and found created with another callBackUrl.
        let mut passed_over: Vec<TaskId> = Vec::new();
        // Tasks named but not read yet (the read failed): read again later,
        // never forgotten, and given back in the error at the end.
        let mut unread: Vec<(TaskId, Error)> = Vec::new();
        let mut again_in = Duration::from_secs(2);
        loop {
            let seen: Vec<TaskId> = passed_over
                .iter()
                .chain(unread.iter().map(|(t, _)| t))
                .cloned()
                .collect();
            let retry = async {
                if unread.is_empty() {
                    std::future::pending::<()>().await;
                }
                tokio::time::sleep(again_in).await;
            };
            let task_id = tokio::select! {
                biased;
                () = &mut cancelled => return give_back(unread),
                task = hub.nonce_names_another(nonce, &seen) => task,
                () = retry => {
                    again_in = (again_in * 2).min(Duration::from_secs(30));
                    unread.remove(0).0
                }
                () = &mut limit => return give_back(unread),
            };
            let task = match self.get(&task_id).await {
                Ok(task) => task,
                Err(error) => {
                    tracing::warn!(%task_id, nonce, %error, "a callback named this task, which cannot be read yet: read again later");
                    unread.push((task_id, error));
                    continue;
                }
            };
            let ours = match &task.callback_url {
                Some(url) => {
                    crate::webhook::hub::nonce_in_path(
                        url::Url::parse(url)
                            .map(|u| u.path().to_owned())
                            .as_deref()
                            .unwrap_or(url),
                    )
                    .as_deref()
                        == Some(nonce)
                }
                // The service did not echo the request: the callback came to
                // the nonce's URL and the task exists in this account.
                None => true,
            };
            if ours {
                tracing::info!(%task_id, nonce, "recovered the task of a lost createTask answer from its callback");
                return Ok(Some(task));
            }
            tracing::warn!(%task_id, nonce, "a callback on this nonce's URL names a task created with another callBackUrl: passed over");
            passed_over.push(task_id);
        }
    }
}

/// The end of a recovery that confirmed nothing: `None` when no callback
/// named a task that could not be read, else the last read's error, which
/// carries that task's id ([`Error::task_id`]); every task named is in
/// [`CallbackHub::tasks_for_nonce`].
fn give_back(unread: Vec<(TaskId, Error)>) -> Result<Option<Task>> {
    match unread.into_iter().last() {
        Some((_, error)) => Err(error),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_look_waits_for_the_expected_end_then_looks_rarely() {
        let p = SafetyPoll::default();
        let cold = PollContext::new(Duration::ZERO, 0);
        assert_eq!(p.next_delay(&cold), Duration::from_secs(30));
        let learned = PollContext::new(Duration::from_secs(10), 0).with_expected_generation_range(
            Some((Duration::from_secs(40), Duration::from_secs(80))),
        );
        // 80 s × 1.25 + 15 s = 115 s after the start, 105 s from now.
        assert_eq!(p.next_delay(&learned), Duration::from_secs(105));
        let after = PollContext::new(Duration::from_secs(120), 1);
        assert_eq!(p.next_delay(&after), Duration::from_secs(30));
        let later = PollContext::new(Duration::from_secs(600), 9);
        assert_eq!(p.next_delay(&later), Duration::from_secs(120));
    }

    #[test]
    fn settings_that_would_spin_still_wait_a_second() {
        let after = PollContext::new(Duration::from_secs(120), 3);
        for p in [
            SafetyPoll::default().then(Duration::ZERO),
            SafetyPoll::default().cap(Duration::ZERO),
            SafetyPoll::default().factor(0.0),
            SafetyPoll::default().factor(f64::NAN),
        ] {
            assert!(p.next_delay(&after) >= Duration::from_secs(1), "{p:?}");
        }
        // A factor below 1 keeps the delay, never shrinks it.
        let p = SafetyPoll::default().factor(0.5);
        assert_eq!(p.next_delay(&after), Duration::from_secs(30));
    }
}
