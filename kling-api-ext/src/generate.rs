//! The whole job in one call: submit, wait, download.

use std::path::Path;

use crate::client::Client;
use crate::download::Downloaded;
use crate::error::Result;
use crate::request::AvatarRequest;
use crate::task::Task;
use crate::wait::WaitOptions;

/// What [`Client::generate`] made: the task as it ended, and the video saved.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Generated {
    /// The task, ended in success (its id, result URLs and cost time).
    pub task: Task,
    /// The video on disk: its path, size and SHA-256.
    pub video: Downloaded,
}

impl Client {
    /// Makes the video and saves it at `path`, in one call: uploads the
    /// request's local files, creates the task (never twice: see
    /// [`submit`](Self::submit)), waits for it with the default
    /// [`WaitOptions`] (a 30-minute deadline, polls placed by the audio's
    /// length), and downloads the result atomically (the file at `path` is
    /// never partial).
    ///
    /// Once the task exists, every error names it
    /// ([`Error::task_id`](crate::Error::task_id)), so nothing paid for is
    /// lost: [`wait`](Self::wait) and [`download`](Self::download) take it up
    /// again. For a deadline, cancellation or progress of your own, call
    /// those three yourself.
    ///
    /// ```no_run
    /// # async fn demo() -> Result<(), kling_api_ext::Error> {
    /// use kling_api_ext::{AvatarRequest, Client};
    ///
    /// let client = Client::from_env()?;
    /// let request = AvatarRequest::builder()
    ///     .image("face.png")
    ///     .audio("hello.wav")
    ///     .prompt("A friendly presenter")
    ///     .build()?;
    /// let made = client.generate(&request, "avatar.mp4").await?;
    /// println!("task {}: {} bytes", made.task.task_id, made.video.bytes);
    /// # Ok(()) }
    /// ```
    pub async fn generate(
        &self,
        request: &AvatarRequest,
        path: impl AsRef<Path>,
    ) -> Result<Generated> {
        let task = self.submit_and_wait(request, WaitOptions::new()).await?;
        let video = self.download(&task, path.as_ref()).await?;
        Ok(Generated { task, video })
    }
}
