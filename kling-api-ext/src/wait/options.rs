//! What a wait is told: its deadline, policy, cancellation and progress
//! report, and the events it reports.

use crate::lifecycle::{State, TaskId};
use serde::Serialize;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
pub use tokio_util::sync::CancellationToken;

use super::*;
#[cfg(doc)]
use crate::error::Error;

/// The default overall deadline: 30 minutes.
///
/// kie.ai suggests giving up after 10 to 15 minutes, but that is generic:
/// avatar videos last as long as their audio (up to 5 minutes by some
/// accounts) and generation runs slower than real time, so a long-audio task
/// may legitimately take more than 15 minutes (kie-go waits 20 for avatar
/// models). 30 minutes covers that with margin and still ends every wait.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(30 * 60);

/// How long `recordInfo is null` right after this process created the task
/// counts as "not visible yet" rather than "no such task".
pub const DEFAULT_NOT_VISIBLE_GRACE: Duration = Duration::from_secs(30);

/// Something the wait reports as it goes.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct WaitEvent {
    /// The task.
    pub task_id: TaskId,
    /// The state after this poll (`None` while the task is not visible yet).
    pub state: Option<State>,
    /// Whether the state differs from the previous poll's.
    pub state_changed: bool,
    /// Time since the wait started.
    #[serde(serialize_with = "crate::serde_secs::serialize")]
    pub elapsed: Duration,
    /// Status requests so far.
    pub polls: u32,
    /// A transient error this poll met (the wait goes on).
    pub transient_error: Option<String>,
    /// This poll confirms a callback ([`WaitOptions::callbacks`]).
    pub via_callback: bool,
}

/// Called on every poll with what it found.
pub type ProgressCallback = Arc<dyn Fn(&WaitEvent) + Send + Sync>;

/// How [`Client::wait`] waits.
///
/// likely to end.
///
/// [`Client::wait`] polls recordInfo until the task succeeds or fails, with:
///
/// - a [`PollPolicy`] deciding each delay (the default, [`AdaptivePoll`], is
///   chosen by the polling benchmark: `cargo bench -p kling-api-ext --bench polling`);
/// - an overall deadline, on by default ([`DEFAULT_DEADLINE`]), after which
///   [`Error::WaitTimedOut`] carries the task id so the wait can be resumed; it
///   bounds the status request in flight too, so a service that stops answering
///   cannot hold a wait more than 10 s past its deadline, whatever the request
///   timeout;
/// - cancellation by dropping the future, or from elsewhere with a
///   [`CancellationToken`] (which also abandons a status request in flight);
/// - progress events ([`WaitEvent`]) on every poll and state change;
/// - unknown states counted as still running, `recordInfo is null` right after
///   creation counted as "not visible yet" for a grace period, and transient
///   errors retried inside the deadline, sooner than the policy would look again
///   (0.5 s, doubling while they keep failing, unless the service says when).
#[derive(Clone)]
pub struct WaitOptions {
    pub(super) deadline: Option<Duration>,
    pub(super) policy: Arc<dyn PollPolicy>,
    /// `None`: [`DEFAULT_NOT_VISIBLE_GRACE`] for tasks this process just
    /// created, none for others. `Some`: that grace for any task.
    pub(super) not_visible_grace: Option<Duration>,
    pub(super) cancel: Option<CancellationToken>,
    pub(super) progress: Option<ProgressCallback>,
    pub(super) expected_generation: Option<Duration>,
    pub(super) expected_generation_range: Option<(Duration, Duration)>,
    pub(super) expected_total: Option<Duration>,
    pub(super) audio: Option<Duration>,
    pub(super) callbacks: Option<Arc<dyn CallbackSignal>>,
    pub(super) safety: Arc<dyn PollPolicy>,
    pub(super) look_now: bool,
}

impl fmt::Debug for WaitOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WaitOptions")
            .field("deadline", &self.deadline)
            .field("policy", &self.policy)
            .field("not_visible_grace", &self.not_visible_grace)
            .field("cancellable", &self.cancel.is_some())
            .field("progress", &self.progress.is_some())
            .field("expected_generation", &self.expected_generation)
            .field("expected_generation_range", &self.expected_generation_range)
            .field("expected_total", &self.expected_total)
            .field("audio", &self.audio)
            .field("callbacks", &self.callbacks.is_some())
            .field("safety", &self.safety)
            .field("look_now", &self.look_now)
            .finish()
    }
}

impl Default for WaitOptions {
    fn default() -> Self {
        WaitOptions {
            deadline: Some(DEFAULT_DEADLINE),
            policy: Arc::new(AdaptivePoll::default()),
            not_visible_grace: None,
            cancel: None,
            progress: None,
            expected_generation: None,
            expected_generation_range: None,
            expected_total: None,
            audio: None,
            callbacks: None,
            safety: Arc::new(SafetyPoll::default()),
            look_now: false,
        }
    }
}

impl WaitOptions {
    /// The defaults: 30 min deadline, [`AdaptivePoll`], 30 s grace.
    pub fn new() -> Self {
        WaitOptions::default()
    }

    /// The deadline set ([`deadline`](Self::deadline)): for code that waits
    /// on something else under the same options (a recovery by nonce).
    pub fn get_deadline(&self) -> Option<Duration> {
        self.deadline
    }

    /// The cancellation token set ([`cancel_token`](Self::cancel_token)).
    pub fn get_cancel_token(&self) -> Option<&CancellationToken> {
        self.cancel.as_ref()
    }

    /// The overall deadline; `None` waits until the task ends (it still stops
    /// on cancellation or a final error).
    pub fn deadline(mut self, deadline: Option<Duration>) -> Self {
        self.deadline = deadline;
        self
    }

    /// The poll schedule.
    pub fn policy(mut self, policy: impl PollPolicy + 'static) -> Self {
        self.policy = Arc::new(policy);
        self
    }

    /// How long `recordInfo is null` counts as "not visible yet", for any
    /// task id. By default only a task this process just created (an id
    /// `submit` returned) gets [`DEFAULT_NOT_VISIBLE_GRACE`]; an id the
    /// service does not know fails at once with
    /// [`ApiErrorKind::NotFound`](crate::ApiErrorKind::NotFound). Give a grace
    /// for an id another process created moments ago.
    pub fn not_visible_grace(mut self, grace: Duration) -> Self {
        self.not_visible_grace = Some(grace);
        self
    }

    /// The grace `task` gets: what was set, else the default for a task
    /// created by this process moments ago, else none.
    pub(super) fn grace_for(&self, task: &crate::TaskId) -> Option<Duration> {
        match (self.not_visible_grace, task.created_ago()) {
            (Some(grace), _) => Some(grace),
            (None, Some(ago)) => Some(DEFAULT_NOT_VISIBLE_GRACE.saturating_sub(ago)),
            (None, None) => None,
        }
    }

    /// Stops the wait when `token` is cancelled ([`Error::Cancelled`]).
    pub fn cancel_token(mut self, token: CancellationToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// Called on every poll.
    pub fn on_progress(mut self, callback: impl Fn(&WaitEvent) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(callback));
        self
    }

    /// How long generation is expected to take once the task is `generating`
    /// (the policy polls densely around then).
    pub fn expect_generation(mut self, expected: Duration) -> Self {
        self.expected_generation = Some(expected);
        // A point given by hand replaces any range set before it.
        self.expected_generation_range = None;
        self
    }

    /// The shortest and longest generation times to expect once the task is
    /// `generating`: the policy polls densely between them.
    pub fn expect_generation_between(mut self, shortest: Duration, longest: Duration) -> Self {
        let (shortest, longest) = (shortest.min(longest), shortest.max(longest));
        self.expected_generation = Some((shortest + longest) / 2);
        self.expected_generation_range = Some((shortest, longest));
        self
    }

    /// How long the whole task is expected to take from the start of the wait.
    pub fn expect_total(mut self, expected: Duration) -> Self {
        self.expected_total = Some(expected);
        self
    }

    /// The length of the task's audio: the client expects a generation time
    /// from what it learned, and learns from this task when it ends. The
    /// client keeps nothing between calls about the tasks it submitted, so
    /// give it here ([`AvatarRequest::audio_duration`](crate::AvatarRequest::audio_duration));
    /// [`Client::submit_and_wait`](crate::Client::submit_and_wait) and
    /// [`Client::generate`](crate::Client::generate) do.
    pub fn audio_duration(mut self, audio: Duration) -> Self {
        self.audio = Some(audio);
        self
    }

    /// Ends the wait on the task's callback, as `signal` hears it (the
    /// `kling-fleet` crate's `CallbackHub`, or your own): the first
    /// look comes when a callback arrives (one recordInfo confirms it: the
    /// body is not signed, so it is never trusted alone), and the safety poll
    /// ([`safety_poll`](Self::safety_poll), [`SafetyPoll`] by default)
    /// replaces the [`policy`](Self::policy) to catch a callback that never
    /// comes. A callback whose confirmation shows the task still running (a
    /// replay, or a record a moment behind) is looked at again after 2, 4 and
    /// 8 s, then left to the safety poll.
    pub fn callbacks(mut self, signal: impl CallbackSignal + 'static) -> Self {
        self.callbacks = Some(Arc::new(signal));
        self
    }

    /// With [`callbacks`](Self::callbacks), look once at the start anyway: for
    /// a task whose callback may have come while nobody listened (one
    /// submitted by an earlier run, or before the receiver started).
    pub fn first_look_now(mut self) -> Self {
        self.look_now = true;
        self
    }

    /// The schedule of looks while waiting for a callback (see [`callbacks`](Self::callbacks)).
    pub fn safety_poll(mut self, policy: impl PollPolicy + 'static) -> Self {
        self.safety = Arc::new(policy);
        self
    }
}
