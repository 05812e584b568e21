//! [`FileLimiter`]: creation slots counted in a file that every process of
//! one host shares, under an OS file lock.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kling_api_ext::limit::window::{self, Entry};
use kling_api_ext::limit::{
    AccountKey, Acquire, CreationLimiter, LimiterError, LimiterFuture, RateLimit, SlotId,
};

/// How long an ask waits for another process to let go of the lock before it
/// gives up (a process stopped while holding it, say): the creation is then
/// not sent, rather than waiting forever.
const LOCK_PATIENCE: Duration = Duration::from_secs(10);

/// What the file holds: the slots of the last window, in milliseconds of the
/// system clock since 1970 (every process of a host reads the same clock).
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct FileState {
    #[serde(default)]
    next_id: u64,
    #[serde(default)]
    paused_until_ms: Option<u64>,
    #[serde(default)]
    slots: Vec<Entry<u64>>,
}

type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Counts creation slots in a file shared by every process of this host that
/// uses the same account, so that 30 `kling` processes started by one script
/// keep one window between them. The file is `ACCOUNT.json` in the directory
/// given (ACCOUNT is the [`AccountKey`]: no key is written), read and
/// rewritten under an exclusive lock on `ACCOUNT.lock` for each ask.
///
/// A process that dies holding a slot leaves it to its lease. A file that
/// cannot be read as a state (cut short, say) is taken as a full window from
/// now: slower for one window, never over the limit. A file that cannot be
/// written fails the ask, and the creation is not sent.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use kling_api_ext::limit::{AccountKey, Acquire, CreationLimiter, RateLimit};
/// use kling_fleet::FileLimiter;
/// use std::time::Duration;
///
/// let dir = tempfile::tempdir().unwrap();
/// let account = AccountKey::new("sk-example", "https://api.apikley.ru");
/// // Two processes' limiters: one window between them.
/// let one = FileLimiter::new(dir.path(), &account, RateLimit::new(1, Duration::from_secs(10)));
/// let other = FileLimiter::new(dir.path(), &account, RateLimit::new(1, Duration::from_secs(10)));
/// let lease = Duration::from_secs(60);
/// assert!(matches!(one.try_acquire(lease).await.unwrap(), Acquire::Slot(_)));
/// assert!(matches!(other.try_acquire(lease).await.unwrap(), Acquire::Wait { .. }));
/// # }
/// ```
#[derive(Clone)]
pub struct FileLimiter {
    limit: RateLimit,
    state: PathBuf,
    lock: PathBuf,
    clock: Clock,
}

impl std::fmt::Debug for FileLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileLimiter")
            .field("limit", &self.limit)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

fn system_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn add(at: u64, d: Duration) -> u64 {
    at.saturating_add(ms(d))
}

fn sub(later: u64, earlier: u64) -> Duration {
    Duration::from_millis(later.saturating_sub(earlier))
}

impl FileLimiter {
    /// What [`ClientBuilder::rate_limiter_per_account`](kling_api_ext::ClientBuilder::rate_limiter_per_account)
    /// takes: a limiter in `dir` for the client's account and limit.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let client = kling_api_ext::Client::builder()
    ///     .api_key("sk-example")
    ///     .rate_limiter_per_account(kling_fleet::FileLimiter::per_account(dir.path()))
    ///     .build()?;
    /// # Ok::<(), kling_api_ext::Error>(())
    /// ```
    pub fn per_account(
        dir: impl Into<PathBuf>,
    ) -> impl Fn(&AccountKey, RateLimit) -> Result<Arc<dyn CreationLimiter>, LimiterError>
    + Send
    + Sync
    + 'static {
        let dir = dir.into();
        move |account, limit| {
            Ok(Arc::new(FileLimiter::new(&dir, account, limit)) as Arc<dyn CreationLimiter>)
        }
    }

    /// A limiter keeping `limit` for `account`, in `dir` (created if missing).
    pub fn new(dir: impl AsRef<Path>, account: &AccountKey, limit: RateLimit) -> Self {
        let dir = dir.as_ref();
        FileLimiter {
            limit,
            state: dir.join(format!("{account}.json")),
            lock: dir.join(format!("{account}.lock")),
            clock: Arc::new(system_ms),
        }
    }

    /// The file the slots are kept in.
    pub fn path(&self) -> &Path {
        &self.state
    }

    #[cfg(test)]
    fn with_clock(mut self, clock: impl Fn() -> u64 + Send + Sync + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Runs `change` on the state under the lock, on a blocking thread, and
    /// writes the state back if it says so.
    async fn with_state<T: Send + 'static>(
        &self,
        change: impl FnOnce(&mut FileState, u64) -> (T, bool) + Send + 'static,
    ) -> Result<T, LimiterError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.locked(change))
            .await
            .map_err(|e| LimiterError::with_source("the rate-limit file task failed", e))?
    }

    fn locked<T>(
        &self,
        change: impl FnOnce(&mut FileState, u64) -> (T, bool),
    ) -> Result<T, LimiterError> {
        let io = |what: &str, path: &Path, e: std::io::Error| {
            LimiterError::with_source(format!("rate-limit file {}: {what}", path.display()), e)
        };
        if let Some(dir) = self.state.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io("cannot create its folder", dir, e))?;
        }
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&self.lock)
            .map_err(|e| io("cannot open the lock", &self.lock, e))?;
        take_lock(&lock).map_err(|e| io("cannot take the lock", &self.lock, e))?;
        let now = (self.clock)();
        let mut repaired = false;
        let mut state = match std::fs::read(&self.state) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|error| {
                tracing::warn!(path = %self.state.display(), %error, "rate-limit file unreadable; counting a full window from now");
                repaired = true;
                self.full_window(now)
            }),
            Err(e) if e.kind() == ErrorKind::NotFound => FileState::default(),
            Err(e) => return Err(io("cannot read it", &self.state, e)),
        };
        let (answer, changed) = change(&mut state, now);
        // A repaired state is written even when nothing else changed: the
        // full window counts from the first time it was found unreadable.
        if changed || repaired {
            let dir = self.state.parent().unwrap_or(Path::new("."));
            let mut file = tempfile::NamedTempFile::new_in(dir)
                .map_err(|e| io("cannot write it", &self.state, e))?;
            let bytes = serde_json::to_vec(&state).unwrap_or_default();
            file.write_all(&bytes)
                .map_err(|e| io("cannot write it", &self.state, e))?;
            file.persist(&self.state)
                .map_err(|e| io("cannot replace it", &self.state, e.error))?;
        }
        // The lock goes with `lock`, after the new state is in place.
        drop(lock);
        Ok(answer)
    }

    /// A state saying `max` creations were answered at `now`.
    fn full_window(&self, now: u64) -> FileState {
        let slots = (0..u64::from(self.limit.max))
            .map(|id| Entry {
                id,
                answered: Some(now),
                lease_until: now,
            })
            .collect();
        FileState {
            next_id: u64::from(self.limit.max),
            paused_until_ms: None,
            slots,
        }
    }
}

/// One ask: a slot (the state changed: write it) or a wait (nothing to write).
fn take(state: &mut FileState, now: u64, limit: RateLimit, lease: Duration) -> (Acquire, bool) {
    let answer = window::decide(
        &mut state.slots,
        state.paused_until_ms,
        now,
        limit.max,
        limit.window,
        state.next_id,
        add(now, lease),
        add,
        sub,
    );
    let granted = matches!(answer, Acquire::Slot(_));
    if granted {
        state.next_id += 1;
    }
    (answer, granted)
}

/// An exclusive lock on `file`, trying for [`LOCK_PATIENCE`].
fn take_lock(file: &File) -> std::io::Result<()> {
    let start = Instant::now();
    let mut nap = Duration::from_millis(1);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) if start.elapsed() < LOCK_PATIENCE => {
                std::thread::sleep(nap);
                nap = (nap * 2).min(Duration::from_millis(20));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(std::io::Error::new(
                    ErrorKind::TimedOut,
                    format!(
                        "another process has held it for {} s",
                        LOCK_PATIENCE.as_secs()
                    ),
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e),
        }
    }
}

impl CreationLimiter for FileLimiter {
    fn limit(&self) -> RateLimit {
        self.limit
    }

    fn try_acquire(&self, lease: Duration) -> LimiterFuture<'_, Acquire> {
        let limit = self.limit;
        Box::pin(self.with_state(move |state, now| take(state, now, limit, lease)))
    }

    fn release(&self, slot: SlotId) -> LimiterFuture<'_, ()> {
        Box::pin(self.with_state(move |state, now| {
            let entry = state.slots.iter_mut().find(|e| e.id == slot.get());
            let found = entry.is_some();
            if let Some(entry) = entry {
                entry.answered.get_or_insert(now);
            }
            ((), found)
        }))
    }

    fn pause(&self, pause: Duration) -> LimiterFuture<'_, ()> {
        Box::pin(self.with_state(move |state, now| {
            let until = add(now, pause);
            let longer = state.paused_until_ms.is_none_or(|current| current < until);
            if longer {
                state.paused_until_ms = Some(until);
            }
            ((), longer)
        }))
    }

    fn rest_of_window(&self) -> LimiterFuture<'_, Duration> {
        let window = self.limit.window;
        Box::pin(self.with_state(move |state, now| {
            (window::rest(&state.slots, now, window, add, sub), false)
        }))
    }
}

#[cfg(test)]
mod tests;
