//! The client-side limit on task creation, and where its slots are counted.
//!
//! The service limits creations per account, so every process and host using
//! one key has to count in one place. [`CreationLimiter`] is that place: this
//! process ([`ProcessLimiter`], the default), or, from the `kling-fleet`
//! crate, a file every process of one host shares (`FileLimiter`) or a
//! database every host shares (`PgLimiter`). The rule is the same everywhere: a creation
//! holds a slot from before its request until its answer arrives, and keeps
//! counting for one window after that.

mod local;
pub mod window;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};

pub use local::ProcessLimiter;
pub(crate) use local::shared;

/// How many tasks may be created per window.
///
/// The service accepts 20 new generation requests per 10 seconds per account and
/// rejects (does not queue) the rest (`docs/service-notes.md` §7). Whether it counts in fixed or
/// sliding windows is not documented, so the limiter assumes the strictest: at
/// most `max` requests in *any* window of `window`. It counts a request from when
/// its answer arrived (a request still in flight holds its slot), so however the
/// network reorders them, the service never sees more than `max` arrivals in one
/// window.
///
/// Why not `governor`: its GCRA lets a burst of 20 through and then one request
/// every 500 ms, which puts up to 40 requests in the first 10 s: a sliding-window
/// service would reject half of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RateLimit {
    /// Requests allowed per window.
    pub max: u32,
    /// The window.
    pub window: Duration,
}

impl RateLimit {
    /// At most `max` creations in any `window`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let limit = kling_api_ext::RateLimit::new(5, Duration::from_secs(10));
    /// assert_eq!((limit.max, limit.window), (5, Duration::from_secs(10)));
    /// ```
    pub const fn new(max: u32, window: Duration) -> Self {
        RateLimit { max, window }
    }

    /// The service's documented limit: 20 creations per 10 s.
    pub const DEFAULT: RateLimit = RateLimit {
        max: 20,
        window: Duration::from_secs(10),
    };
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit::DEFAULT
    }
}

/// Which account a shared limiter counts for: a digest of the API key and the
/// service's base URL (the key itself is never stored or shown).
///
/// ```
/// use kling_api_ext::limit::AccountKey;
/// let a = AccountKey::new("key-1", "https://api.apikley.ru");
/// assert_eq!(a, AccountKey::new("key-1", "https://api.apikley.ru/"));
/// assert_ne!(a, AccountKey::new("key-2", "https://api.apikley.ru"));
/// assert_eq!(a.as_str().len(), 32);
/// assert!(!format!("{a:?}").contains("key-1"));
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct AccountKey(String);

impl AccountKey {
    /// The account of `api_key` on the service at `base_url` (a trailing `/`
    /// does not make another account).
    pub fn new(api_key: &str, base_url: &str) -> Self {
        let mut digest = Sha256::new();
        digest.update(api_key.as_bytes());
        digest.update(b"\n");
        digest.update(base_url.trim_end_matches('/').as_bytes());
        let digest = digest.finalize();
        AccountKey(digest[..16].iter().map(|b| format!("{b:02x}")).collect())
    }

    /// The digest, as 32 hex digits: safe in file names, tables and logs.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountKey({})", self.0)
    }
}

impl fmt::Display for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A slot a [`CreationLimiter`] granted: give it back with
/// [`CreationLimiter::release`] when the creation's answer has arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SlotId(u64);

impl SlotId {
    /// A slot with this number (unique within its limiter).
    pub const fn new(id: u64) -> Self {
        SlotId(id)
    }

    /// Its number.
    pub const fn get(self) -> u64 {
        self.0
    }
}

/// Why a creation waits for the limiter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LimitWait {
    /// The service answered 429: all creation pauses.
    Paused,
    /// The window is full.
    Window,
}

/// What [`CreationLimiter::try_acquire`] answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Acquire {
    /// A slot: the creation may be sent now.
    Slot(SlotId),
    /// No slot now; none can free sooner than `wait` from now.
    Wait {
        /// How long at least.
        wait: Duration,
        /// Why.
        why: LimitWait,
    },
}

/// A limiter that could not be asked (its file cannot be written, its
/// database is unreachable): the creation is not sent.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct LimiterError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl LimiterError {
    /// An error saying `message`.
    ///
    /// ```
    /// let error = kling_api_ext::limit::LimiterError::new("the database is read-only");
    /// assert_eq!(error.to_string(), "the database is read-only");
    /// ```
    pub fn new(message: impl Into<String>) -> Self {
        LimiterError {
            message: message.into(),
            source: None,
        }
    }

    /// An error saying `message`, caused by `source`.
    pub fn with_source(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        LimiterError {
            message: message.into(),
            source: Some(source.into()),
        }
    }
}

/// What a [`CreationLimiter`]'s methods return.
pub type LimiterFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, LimiterError>> + Send + 'a>>;

/// Where creation slots are counted, for every client that creates tasks
/// with one account. Give one to [`crate::ClientBuilder::rate_limiter`].
///
/// The contract, which [`crate::Client::submit`] relies on:
/// - [`try_acquire`](Self::try_acquire) grants a slot only while fewer than
///   [`RateLimit::max`] slots are in flight or were released less than
///   [`RateLimit::window`] ago, and never during a [`pause`](Self::pause). A
///   slot not released within its `lease` counts as released when the lease
///   ended (its holder died), so it frees itself.
/// - The time between an answer and the end of its window is measured on
///   one clock for everyone sharing the limiter.
/// - When no slot is free, the `wait` it answers is never longer than the
///   time until one could free: the caller sleeps that long and asks again.
///
/// ```
/// use std::sync::Arc;
/// use kling_api_ext::{Client, RateLimit};
/// use kling_api_ext::limit::ProcessLimiter;
///
/// let limiter = Arc::new(ProcessLimiter::new(RateLimit::DEFAULT));
/// let client = Client::builder().api_key("sk-example").rate_limiter(limiter).build()?;
/// # Ok::<(), kling_api_ext::Error>(())
/// ```
pub trait CreationLimiter: Send + Sync + fmt::Debug {
    /// The limit it keeps.
    fn limit(&self) -> RateLimit;

    /// A slot now, or how long to wait before asking again. `lease` is the
    /// longest the creation can take (its request timeout and some margin).
    fn try_acquire(&self, lease: Duration) -> LimiterFuture<'_, Acquire>;

    /// The creation holding `slot` got its answer (or ended without one) now.
    fn release(&self, slot: SlotId) -> LimiterFuture<'_, ()>;

    /// The service answered 429: no slot is granted for `pause` from now.
    fn pause(&self, pause: Duration) -> LimiterFuture<'_, ()>;

    /// How long until the oldest answer in the window leaves it (the window
    /// when there is none): how long "the rest of the window" is, for a 429
    /// without `Retry-After`.
    fn rest_of_window(&self) -> LimiterFuture<'_, Duration>;
}

/// A granted slot; dropping it without [`Permit::release`] releases it in the
/// background (a cancelled creation), or, outside a runtime, lets its lease
/// free it.
#[derive(Debug)]
pub(crate) struct Permit {
    limiter: Arc<dyn CreationLimiter>,
    slot: Option<SlotId>,
}

impl Permit {
    /// Gives the slot back now: the answer has arrived.
    pub(crate) async fn release(mut self) {
        if let Some(slot) = self.slot.take() {
            release_logged(&*self.limiter, slot).await;
        }
    }
}

async fn release_logged(limiter: &dyn CreationLimiter, slot: SlotId) {
    if let Err(error) = limiter.release(slot).await {
        // The slot stays taken until its lease ends: slower, never over the limit.
        tracing::warn!(%error, slot = slot.get(), "could not release a rate-limit slot; its lease will free it");
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let (Some(slot), Ok(runtime)) = (self.slot.take(), tokio::runtime::Handle::try_current())
        {
            let limiter = self.limiter.clone();
            runtime.spawn(async move { release_logged(&*limiter, slot).await });
        }
    }
}

/// The shortest sleep between two asks, so a limiter answering a zero wait
/// cannot spin.
const MIN_RECHECK: Duration = Duration::from_millis(5);

/// Waits for a slot, telling `on_wait` before each wait how long it will be
/// at least, and why; `Ok(None)` if `on_wait` answers `false` (the caller will
/// not wait that long). Dropping the wait while it sleeps takes no slot.
pub(crate) async fn acquire(
    limiter: &Arc<dyn CreationLimiter>,
    lease: Duration,
    mut on_wait: impl FnMut(Duration, LimitWait) -> bool,
) -> Result<Option<Permit>, LimiterError> {
    loop {
        match limiter.try_acquire(lease).await? {
            Acquire::Slot(slot) => {
                return Ok(Some(Permit {
                    limiter: limiter.clone(),
                    slot: Some(slot),
                }));
            }
            Acquire::Wait { wait, why } => {
                if !on_wait(wait, why) {
                    return Ok(None);
                }
                tokio::time::sleep(wait.max(MIN_RECHECK)).await;
            }
        }
    }
}
