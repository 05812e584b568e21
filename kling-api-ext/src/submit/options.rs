//! What a submit reports while it waits, and the hooks that stop it or
//! record its intent before its request is sent.

use std::time::Duration;

/// What a submit reports while it waits, and how it can be stopped before its
/// request is sent.
///
/// ```
/// use kling_api_ext::SubmitOptions;
/// use kling_api_ext::CancellationToken;
///
/// let stop = CancellationToken::new();
/// let options = SubmitOptions::new()
///     .cancel_token(stop.clone())
///     .on_wait(|w| eprintln!("waiting {:.0?}: {}", w.wait, w.reason));
/// # let _ = options;
/// ```
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct SubmitOptions {
    pub(super) cancel: Option<tokio_util::sync::CancellationToken>,
    on_wait: Option<WaitReport>,
    pub(super) before_send: Option<BeforeSend>,
    pub(super) after_not_taken: Option<AfterNotTaken>,
}

type WaitReport = std::sync::Arc<dyn Fn(&SubmitWait) + Send + Sync>;
type HookFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = std::result::Result<(), String>> + Send>>;
type AfterNotTaken = std::sync::Arc<dyn Fn(&crate::Error) -> HookFuture + Send + Sync>;
type BeforeSend = std::sync::Arc<
    dyn Fn() -> std::pin::Pin<
            Box<dyn std::future::Future<Output = std::result::Result<(), String>> + Send>,
        > + Send
        + Sync,
>;

impl std::fmt::Debug for SubmitOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubmitOptions")
            .field("cancel", &self.cancel)
            .field("on_wait", &self.on_wait.as_ref().map(|_| "Fn"))
            .field("before_send", &self.before_send.as_ref().map(|_| "Fn"))
            .field(
                "after_not_taken",
                &self.after_not_taken.as_ref().map(|_| "Fn"),
            )
            .finish()
    }
}

impl SubmitOptions {
    /// No token, no reports.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancelling the token stops the submit *before* its request is sent
    /// (while it waits for the rate limiter or between attempts):
    /// [`Error::NotSent`](crate::Error::NotSent), nothing created. A request already on the wire is
    /// never abandoned: its answer is awaited (within the request timeout), so
    /// a task it created is never lost.
    pub fn cancel_token(mut self, token: tokio_util::sync::CancellationToken) -> Self {
        self.cancel = Some(token);
        self
    }

    /// Called before each wait of the submit (the rate-limit window, a pause
    /// the service asked for, a retry's backoff), with why and for how long.
    pub fn on_wait(mut self, report: impl Fn(&SubmitWait) + Send + Sync + 'static) -> Self {
        self.on_wait = Some(std::sync::Arc::new(report));
        self
    }

    /// Called before every createTask request, once the rate limiter has
    /// granted its slot: the place to record the intent to create (a journal
    /// line, a database row), so that a crash while the submit waits for the
    /// limiter or a retry leaves no intent behind. An error stops the submit
    /// with [`Error::NotSent`](crate::Error::NotSent): nothing was sent.
    ///
    /// ```
    /// let options = kling_api_ext::SubmitOptions::new().before_send(|| async {
    ///     // write and sync "about to create" here
    ///     Ok(())
    /// });
    /// # let _ = options;
    /// ```
    pub fn before_send<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = std::result::Result<(), String>> + Send + 'static,
    {
        self.before_send = Some(std::sync::Arc::new(move || Box::pin(hook())));
        self
    }

    /// Called after each createTask attempt the service certainly did not
    /// take (no connection made, 429, 455), before the submit waits to try
    /// again: the place to record that no task exists yet, so that a crash
    /// during that wait leaves the job to do rather than "outcome unknown".
    /// [`before_send`](Self::before_send) runs again before the next attempt.
    /// An error is logged; the submit goes on.
    ///
    /// ```
    /// let options = kling_api_ext::SubmitOptions::new().after_not_taken(|error| {
    ///     let why = error.kind();
    ///     async move {
    ///         // write and sync "not taken ({why}), none exists" here
    ///         let _ = why;
    ///         Ok(())
    ///     }
    /// });
    /// # let _ = options;
    /// ```
    pub fn after_not_taken<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(&crate::Error) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = std::result::Result<(), String>> + Send + 'static,
    {
        self.after_not_taken = Some(std::sync::Arc::new(move |error| Box::pin(hook(error))));
        self
    }

    pub(super) fn cancelled(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(tokio_util::sync::CancellationToken::is_cancelled)
    }

    pub(super) fn report(&self, wait: Duration, reason: SubmitWaitReason, attempt: u32) {
        if let Some(report) = &self.on_wait {
            report(&SubmitWait {
                wait,
                reason,
                attempt,
            });
        }
    }
}

/// One wait of a submit, as [`SubmitOptions::on_wait`] reports it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SubmitWait {
    /// How long (at least) it waits.
    pub wait: Duration,
    /// Why.
    pub reason: SubmitWaitReason,
    /// The attempt about to be made (1 for the first).
    pub attempt: u32,
}

/// Why a submit waits.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SubmitWaitReason {
    /// The client's own limit (so many creations per window) is reached.
    RateLimitWindow {
        /// Creations allowed per window.
        max: u32,
        /// The window.
        window: Duration,
    },
    /// The service answered 429: creation pauses for what it asked
    /// (`Retry-After`) or the rest of the window.
    ServicePause,
    /// The last attempt was certainly not taken (this error); it is sent again.
    Retry {
        /// The error, as text.
        error: String,
    },
}

impl std::fmt::Display for SubmitWaitReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubmitWaitReason::RateLimitWindow { max, window } => write!(
                f,
                "rate limit: {max} creations per {} s",
                window.as_secs_f64()
            ),
            SubmitWaitReason::ServicePause => {
                f.write_str("the service answered 429 (rate limited): pausing creation")
            }
            SubmitWaitReason::Retry { error } => write!(f, "not taken ({error}); sending again"),
        }
    }
}
