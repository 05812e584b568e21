//! Waiting for a task to end: polls that never hang, spent where the task is
//! likely to end.

pub use tokio_util::sync::CancellationToken;

use crate::client::Client;
use crate::error::Result;
use crate::lifecycle::TaskId;
use crate::task::Task;

mod callbacks;

mod options;
mod policy;
mod run;

#[cfg(doc)]
use crate::error::Error;
pub use crate::speed::DurationModel;
pub use callbacks::{CallbackSignal, SafetyPoll};
pub use options::{
    DEFAULT_DEADLINE, DEFAULT_NOT_VISIBLE_GRACE, ProgressCallback, WaitEvent, WaitOptions,
};
pub use policy::{AdaptivePoll, ExponentialPoll, PollContext, PollPolicy};

impl Client {
    /// What this client has learned about generation speed from the tasks it
    /// waited for; [`wait`](Self::wait) uses it to poll near a task's expected
    /// end (for waits given the task's audio length). Its samples can be kept
    /// between runs ([`DurationModel::samples`], [`DurationModel::extend_samples`])
    /// or shared between processes (the `kling-fleet` crate's `pg::share_speed`).
    pub fn duration_model(&self) -> &DurationModel {
        &self.inner.durations
    }

    /// Waits until the task ends: `Ok` with its result URLs when it succeeds,
    /// [`Error::GenerationFailed`] when it fails, [`Error::WaitTimedOut`] at the
    /// deadline (the task may still finish: call `wait` again),
    /// [`Error::Cancelled`] when the token is cancelled. Dropping the future
    /// stops polling too. The service has no cancel: the task keeps running.
    ///
    /// ```no_run
    /// # async fn demo(client: kling_api_ext::Client, id: kling_api_ext::TaskId) -> Result<(), kling_api_ext::Error> {
    /// use std::time::Duration;
    /// use kling_api_ext::{CancellationToken, WaitOptions};
    ///
    /// let stop = CancellationToken::new();
    /// let options = WaitOptions::new()
    ///     .deadline(Some(Duration::from_secs(20 * 60)))
    ///     .cancel_token(stop.clone())
    ///     .on_progress(|e| eprintln!("{} {:?} after {:.0?}", e.task_id, e.state, e.elapsed));
    /// let task = client.wait(&id, options).await?;
    /// println!("video: {}", task.video_url().expect("a success has a URL"));
    /// # Ok(()) }
    /// ```
    pub async fn wait(&self, task_id: &TaskId, mut options: WaitOptions) -> Result<Task> {
        use tracing::Instrument as _;
        if options.expected_generation.is_none()
            && let Some(audio) = options.audio
        {
            options.expected_generation = self.inner.durations.expected_generation(audio);
            options.expected_generation_range =
                self.inner.durations.expected_generation_range(audio);
        }
        let span = tracing::info_span!("kling_wait", task_id = %task_id);
        self.wait_inner(task_id, options).instrument(span).await
    }

    /// Submits the request and waits for its task (see [`wait`](Self::wait)).
    pub async fn submit_and_wait(
        &self,
        request: &crate::AvatarRequest,
        mut options: WaitOptions,
    ) -> Result<Task> {
        let task_id = self.submit(request).await?;
        if options.audio.is_none() {
            options.audio = request.audio_duration();
        }
        self.wait(&task_id, options).await
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_last_expectation_given_by_hand_wins() {
        let secs = Duration::from_secs;
        let o = WaitOptions::new().expect_generation_between(secs(90), secs(30));
        assert_eq!(o.expected_generation, Some(secs(60)));
        assert_eq!(o.expected_generation_range, Some((secs(30), secs(90))));
        let o = o.expect_generation(secs(50));
        assert_eq!(o.expected_generation, Some(secs(50)));
        assert_eq!(o.expected_generation_range, None);
    }
}
