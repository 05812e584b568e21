//! [`Call`]: a client call that runs when awaited, with its options set first.

use std::future::{Future, IntoFuture};
use std::pin::Pin;

use crate::error::Result;

type Run<'a, O, T> =
    Box<dyn FnOnce(O) -> Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>> + Send + 'a>;

/// A call to the service that runs when awaited: `client.submit(&request).await`.
/// Its options, if any, are set first, one way for every call:
/// `client.submit(&request).options(SubmitOptions::new().cancel_token(stop)).await`.
///
/// ```no_run
/// # async fn demo(client: kling_api_ext::Client, task: kling_api_ext::Task) -> Result<(), kling_api_ext::Error> {
/// use std::sync::Arc;
/// use kling_api_ext::upload::TransferOptions;
///
/// let progress = TransferOptions::new()
///     .progress(Arc::new(|done, total| eprintln!("{done} of {total:?} bytes")));
/// let saved = client.download(&task, "avatar.mp4").options(progress).await?;
/// # Ok(()) }
/// ```
#[must_use = "a call does nothing until it is awaited"]
pub struct Call<'a, O, T> {
    options: O,
    run: Run<'a, O, T>,
}

impl<O: std::fmt::Debug, T> std::fmt::Debug for Call<'_, O, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl<'a, O: Default + Send + 'a, T: 'a> Call<'a, O, T> {
    pub(crate) fn new<F, Fut>(run: F) -> Self
    where
        F: FnOnce(O) -> Fut + Send + 'a,
        Fut: Future<Output = Result<T>> + Send + 'a,
    {
        Call {
            options: O::default(),
            run: Box::new(move |options| Box::pin(run(options))),
        }
    }

    /// The call's options (replacing the defaults).
    pub fn options(mut self, options: O) -> Self {
        self.options = options;
        self
    }
}

impl<'a, O, T> IntoFuture for Call<'a, O, T> {
    type Output = Result<T>;
    type IntoFuture = Pin<Box<dyn Future<Output = Result<T>> + Send + 'a>>;

    fn into_future(self) -> Self::IntoFuture {
        (self.run)(self.options)
    }
}
