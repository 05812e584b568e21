//! The client-side limit on task creation.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use sha2::{Digest, Sha256};

use tokio::sync::Notify;
use tokio::time::Instant;

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

#[derive(Debug)]
struct Entry {
    id: u64,
    /// When the answer arrived; `None` while in flight.
    done: Option<Instant>,
}

#[derive(Debug, Default)]
struct State {
    entries: VecDeque<Entry>,
    paused_until: Option<Instant>,
    next_id: u64,
}

/// The limiter for one API key on one service, shared by every client of this
/// process built with that key, base URL and limit (the service counts per
/// key, not per client). Only a SHA-256 of the key is kept, and a limiter goes
/// away with the last client using it.
pub(crate) fn shared(key: &str, base_url: &str, limit: RateLimit) -> Arc<Limiter> {
    type Key = ([u8; 32], String, u32, Duration);
    static REGISTRY: OnceLock<Mutex<HashMap<Key, Weak<Limiter>>>> = OnceLock::new();
    let digest: [u8; 32] = Sha256::digest(key.as_bytes()).into();
    let id = (digest, base_url.to_owned(), limit.max, limit.window);
    let mut registry = REGISTRY
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    registry.retain(|_, limiter| limiter.strong_count() > 0);
    if let Some(limiter) = registry.get(&id).and_then(Weak::upgrade) {
        return limiter;
    }
    let limiter = Arc::new(Limiter::new(limit));
    registry.insert(id, Arc::downgrade(&limiter));
    limiter
}

/// What a creation waits for in the limiter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LimiterWait {
    /// The service answered 429: all creation pauses.
    Paused,
    /// The window is full.
    Window,
}

/// A sliding-window limiter shared by every clone of a client.
#[derive(Debug)]
pub(crate) struct Limiter {
    limit: RateLimit,
    state: Mutex<State>,
    freed: Notify,
}

/// A slot in the window; dropping it records when the request ended.
#[derive(Debug)]
pub(crate) struct Permit<'a> {
    limiter: &'a Limiter,
    id: u64,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        let now = Instant::now();
        let mut state = self.limiter.lock();
        if let Some(entry) = state.entries.iter_mut().find(|e| e.id == self.id) {
            entry.done = Some(now);
        }
        drop(state);
        self.limiter.freed.notify_waiters();
    }
}

impl Limiter {
    pub(crate) fn new(limit: RateLimit) -> Self {
        Limiter {
            limit,
            state: Mutex::new(State::default()),
            freed: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked: every update is
        // a single push, pop or assignment.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Waits for a slot. Cancel-safe: a dropped wait takes no slot.
    #[cfg(test)]
    pub(crate) async fn acquire(&self) -> Permit<'_> {
        self.acquire_with(|_, _| true).await.expect("never refused")
    }

    /// Waits for a slot, telling `on_wait` before each wait how long it will be
    /// at least, and why; `None` if `on_wait` answers `false` (the caller will
    /// not wait that long). Cancel-safe: a dropped wait takes no slot.
    pub(crate) async fn acquire_with(
        &self,
        mut on_wait: impl FnMut(Duration, LimiterWait) -> bool,
    ) -> Option<Permit<'_>> {
        loop {
            // Registered before checking, so a slot freed in between is not missed.
            let notified = self.freed.notified();
            let wait = {
                let mut state = self.lock();
                let now = Instant::now();
                let window = self.limit.window;
                state
                    .entries
                    .retain(|e| e.done.is_none_or(|done| done + window > now));
                match state.paused_until {
                    Some(until) if until > now => Some((until - now, LimiterWait::Paused)),
                    _ => {
                        state.paused_until = None;
                        if state.entries.len() < self.limit.max as usize {
                            let id = state.next_id;
                            state.next_id += 1;
                            state.entries.push_back(Entry { id, done: None });
                            return Some(Permit { limiter: self, id });
                        }
                        // Full: the earliest finished entry frees a slot; if all
                        // are in flight, wait for one to finish.
                        state
                            .entries
                            .iter()
                            .filter_map(|e| e.done)
                            .min()
                            .map(|done| (done + window - now, LimiterWait::Window))
                    }
                }
            };
            // All in flight: a slot frees a window after the first answer, so
            // at least a window from now.
            let (shown, why) = wait.unwrap_or((self.limit.window, LimiterWait::Window));
            if !on_wait(shown, why) {
                return None;
            }
            match wait.map(|(wait, _)| wait) {
                Some(wait) => {
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = notified => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    /// Stops all creation for `pause` (the service said 429).
    pub(crate) fn pause(&self, pause: Duration) {
        let Some(until) = Instant::now().checked_add(pause) else {
            return;
        };
        let mut state = self.lock();
        if state.paused_until.is_none_or(|current| current < until) {
            state.paused_until = Some(until);
        }
    }

    /// The limit it keeps.
    pub(crate) fn limit(&self) -> RateLimit {
        self.limit
    }

    /// How long until the oldest request in the window leaves it: "the rest of
    /// the window", for a 429 without `Retry-After`.
    pub(crate) fn rest_of_window(&self) -> Duration {
        let state = self.lock();
        let now = Instant::now();
        state
            .entries
            .iter()
            .filter_map(|e| e.done)
            .min()
            .map(|oldest| (oldest + self.limit.window).saturating_duration_since(now))
            .filter(|d| !d.is_zero())
            .unwrap_or(self.limit.window)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(max: u32, secs: u64) -> Limiter {
        Limiter::new(RateLimit {
            max,
            window: Duration::from_secs(secs),
        })
    }

    #[tokio::test(start_paused = true)]
    async fn twenty_pass_then_the_twenty_first_waits_for_the_window() {
        let limiter = limiter(20, 10);
        let start = Instant::now();
        for _ in 0..20 {
            drop(limiter.acquire().await);
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        drop(limiter.acquire().await);
        assert_eq!(start.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn never_more_than_max_in_any_window() {
        let limiter = limiter(5, 10);
        let start = Instant::now();
        let mut times = Vec::new();
        for i in 0..23u64 {
            let permit = limiter.acquire().await;
            times.push(start.elapsed());
            // Requests take varying time in flight.
            tokio::time::sleep(Duration::from_millis(100 * (i % 4))).await;
            drop(permit);
        }
        for (i, t) in times.iter().enumerate().skip(5) {
            assert!(
                *t >= times[i - 5] + Duration::from_secs(10),
                "request {i} at {t:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn in_flight_requests_hold_their_slot() {
        let limiter = std::sync::Arc::new(limiter(1, 10));
        let first = limiter.acquire().await;
        let second = {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                let start = Instant::now();
                drop(limiter.acquire().await);
                start.elapsed()
            })
        };
        tokio::time::sleep(Duration::from_secs(30)).await;
        drop(first); // answered at t = 30 s: the slot frees at 40 s
        assert_eq!(second.await.unwrap(), Duration::from_secs(40));
    }

    #[tokio::test(start_paused = true)]
    async fn pause_stops_creation() {
        let limiter = limiter(20, 10);
        let start = Instant::now();
        limiter.pause(Duration::from_secs(3));
        drop(limiter.acquire().await);
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn rest_of_window_counts_from_the_oldest_answer() {
        let limiter = limiter(20, 10);
        assert_eq!(limiter.rest_of_window(), Duration::from_secs(10));
        drop(limiter.acquire().await);
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(limiter.rest_of_window(), Duration::from_secs(6));
    }

    #[tokio::test(start_paused = true)]
    async fn each_wait_is_reported_with_why_and_how_long() {
        let limiter = std::sync::Arc::new(limiter(1, 10));
        let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
        let held = limiter.acquire().await;
        let waiter = {
            let (limiter, seen) = (limiter.clone(), seen.clone());
            tokio::spawn(async move {
                let permit = limiter
                    .acquire_with(|wait, why| {
                        seen.lock().unwrap().push((wait, why));
                        true
                    })
                    .await;
                assert!(permit.is_some());
            })
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        // In flight: a slot frees a window after its answer at the earliest.
        assert_eq!(
            seen.lock().unwrap().first(),
            Some(&(Duration::from_secs(10), LimiterWait::Window))
        );
        drop(held);
        waiter.await.unwrap();
        assert_eq!(
            seen.lock().unwrap().last(),
            Some(&(Duration::from_secs(10), LimiterWait::Window)),
            "answered at t = 1 s: 10 s to go"
        );
        limiter.pause(Duration::from_secs(30));
        let refused = limiter
            .acquire_with(|wait, why| {
                assert_eq!((wait, why), (Duration::from_secs(30), LimiterWait::Paused));
                false
            })
            .await;
        assert!(refused.is_none(), "the caller would not wait that long");
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_wait_takes_no_slot() {
        let limiter = limiter(1, 10);
        let held = limiter.acquire().await;
        let attempt = tokio::time::timeout(Duration::from_secs(1), limiter.acquire()).await;
        assert!(attempt.is_err());
        drop(held);
        assert_eq!(limiter.lock().entries.len(), 1);
    }
}
