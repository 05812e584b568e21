//! Waiting with callbacks: what tells a wait that a callback came
//! ([`CallbackSignal`]), and the safety poll that catches one that never
//! comes.

use std::time::Duration;

use tokio::time::Instant;

use std::future::Future;
use std::pin::Pin;

use super::{PollContext, PollPolicy, WaitOptions};
use crate::client::Client;
use crate::lifecycle::TaskId;

/// Where a wait with callbacks ([`WaitOptions::callbacks`]) hears that a
/// callback for its task came. The `kling-fleet` crate's `CallbackHub`, fed
/// by its receiver, is one; code with its own web server can implement it
/// (a counter per task and a [`tokio::sync::Notify`] are enough).
pub trait CallbackSignal: Send + Sync {
    /// Resolves once more than `seen` callbacks for `task` have been
    /// received, with how many there are now. Cancel-safe: a wait drops it
    /// when its next look is due.
    fn callback_after<'a>(
        &'a self,
        task: &'a TaskId,
        seen: u32,
    ) -> Pin<Box<dyn Future<Output = u32> + Send + 'a>>;
}

/// The poll schedule of a wait that has callbacks ([`WaitOptions::callbacks`]):
/// callbacks end the wait, so these looks only catch one that never arrives
/// (the service sends each once; a receiver that was down, a proxy, a network
/// between them can lose it).
///
/// The first look comes when the task should have ended well before: its
/// longest expected generation time × `after_expected` + `grace` when the
/// client knows one (it learns from polled waits, and from other processes
/// from samples it is given), else `cold_first` (30 s). Then every
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
                Some(signal) => signal.callback_after(task_id, *arrivals).await,
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
