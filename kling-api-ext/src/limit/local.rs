//! [`ProcessLimiter`]: creation slots counted in this process.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::Duration;

use tokio::time::Instant;

use super::window::{self, Entry};
use super::{AccountKey, Acquire, CreationLimiter, LimiterFuture, RateLimit, SlotId};

#[derive(Debug, Default)]
struct State {
    entries: Vec<Entry<Instant>>,
    paused_until: Option<Instant>,
    next_id: u64,
}

/// The limiter for one API key on one service, shared by every client of this
/// process built with that key, base URL and limit (the service counts per
/// key, not per client). Only a SHA-256 of the key is kept, and a limiter goes
/// away with the last client using it.
pub(crate) fn shared(key: &str, base_url: &str, limit: RateLimit) -> Arc<ProcessLimiter> {
    type Key = (AccountKey, u32, Duration);
    static REGISTRY: OnceLock<Mutex<HashMap<Key, Weak<ProcessLimiter>>>> = OnceLock::new();
    let id = (AccountKey::new(key, base_url), limit.max, limit.window);
    let mut registry = REGISTRY
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    registry.retain(|_, limiter| limiter.strong_count() > 0);
    if let Some(limiter) = registry.get(&id).and_then(Weak::upgrade) {
        return limiter;
    }
    let limiter = Arc::new(ProcessLimiter::new(limit));
    registry.insert(id, Arc::downgrade(&limiter));
    limiter
}

/// Counts creation slots in this process: what a client uses unless given
/// another [`CreationLimiter`]. Clients built with the same key, base URL and
/// limit share one. Its clock is tokio's, so paused-time tests see it wait.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use kling_api_ext::RateLimit;
/// use kling_api_ext::limit::{Acquire, CreationLimiter, ProcessLimiter};
/// use std::time::Duration;
///
/// let limiter = ProcessLimiter::new(RateLimit::new(1, Duration::from_secs(10)));
/// let lease = Duration::from_secs(60);
/// let Acquire::Slot(slot) = limiter.try_acquire(lease).await.unwrap() else { panic!() };
/// limiter.release(slot).await.unwrap();
/// // The answer counts for a window: the next slot is 10 s away.
/// assert!(matches!(limiter.try_acquire(lease).await.unwrap(), Acquire::Wait { .. }));
/// # }
/// ```
#[derive(Debug)]
pub struct ProcessLimiter {
    limit: RateLimit,
    state: Mutex<State>,
}

impl ProcessLimiter {
    /// A limiter keeping `limit`, for this process only.
    pub fn new(limit: RateLimit) -> Self {
        ProcessLimiter {
            limit,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state stays consistent even if a holder panicked: every update is
        // a single push, retain or assignment.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn acquire_now(&self, lease: Duration) -> Acquire {
        let mut state = self.lock();
        let now = Instant::now();
        let next_id = state.next_id;
        let paused_until = state.paused_until;
        let lease_until = now
            .checked_add(lease)
            .unwrap_or(now + Duration::from_secs(86_400));
        let answer = window::decide(
            &mut state.entries,
            paused_until,
            now,
            self.limit.max,
            self.limit.window,
            next_id,
            lease_until,
            add,
            sub,
        );
        if let Acquire::Slot(_) = answer {
            state.next_id += 1;
        }
        answer
    }

    fn release_now(&self, slot: SlotId) {
        let now = Instant::now();
        let mut state = self.lock();
        if let Some(entry) = state.entries.iter_mut().find(|e| e.id == slot.get()) {
            entry.answered.get_or_insert(now);
        }
    }

    fn pause_now(&self, pause: Duration) {
        let Some(until) = Instant::now().checked_add(pause) else {
            return;
        };
        let mut state = self.lock();
        if state.paused_until.is_none_or(|current| current < until) {
            state.paused_until = Some(until);
        }
    }

    fn rest_now(&self) -> Duration {
        let state = self.lock();
        window::rest(&state.entries, Instant::now(), self.limit.window, add, sub)
    }
}

fn add(at: Instant, d: Duration) -> Instant {
    at.checked_add(d).unwrap_or(at)
}

fn sub(later: Instant, earlier: Instant) -> Duration {
    later.saturating_duration_since(earlier)
}

impl CreationLimiter for ProcessLimiter {
    fn limit(&self) -> RateLimit {
        self.limit
    }

    fn try_acquire(&self, lease: Duration) -> LimiterFuture<'_, Acquire> {
        let answer = self.acquire_now(lease);
        Box::pin(std::future::ready(Ok(answer)))
    }

    fn release(&self, slot: SlotId) -> LimiterFuture<'_, ()> {
        self.release_now(slot);
        Box::pin(std::future::ready(Ok(())))
    }

    fn pause(&self, pause: Duration) -> LimiterFuture<'_, ()> {
        self.pause_now(pause);
        Box::pin(std::future::ready(Ok(())))
    }

    fn rest_of_window(&self) -> LimiterFuture<'_, Duration> {
        Box::pin(std::future::ready(Ok(self.rest_now())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limit::{LimitWait, Permit, acquire as acquire_with};

    const LEASE: Duration = Duration::from_secs(60);

    fn limiter(max: u32, secs: u64) -> Arc<dyn CreationLimiter> {
        Arc::new(ProcessLimiter::new(RateLimit {
            max,
            window: Duration::from_secs(secs),
        }))
    }

    async fn acquire(limiter: &Arc<dyn CreationLimiter>) -> Permit {
        acquire_with(limiter, LEASE, |_, _| true)
            .await
            .unwrap()
            .expect("never refused")
    }

    #[tokio::test(start_paused = true)]
    async fn twenty_pass_then_the_twenty_first_waits_for_the_window() {
        let limiter = limiter(20, 10);
        let start = Instant::now();
        for _ in 0..20 {
            acquire(&limiter).await.release().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        acquire(&limiter).await.release().await;
        assert_eq!(start.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn never_more_than_max_in_any_window() {
        let limiter = limiter(5, 10);
        let start = Instant::now();
        let mut times = Vec::new();
        for i in 0..23u64 {
            let permit = acquire(&limiter).await;
            times.push(start.elapsed());
            // Requests take varying time in flight.
            tokio::time::sleep(Duration::from_millis(100 * (i % 4))).await;
            permit.release().await;
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
        let limiter = limiter(1, 10);
        let first = acquire(&limiter).await;
        let second = {
            let limiter = limiter.clone();
            tokio::spawn(async move {
                let start = Instant::now();
                acquire(&limiter).await.release().await;
                start.elapsed()
            })
        };
        tokio::time::sleep(Duration::from_secs(30)).await;
        first.release().await; // answered at t = 30 s: the slot frees at 40 s
        assert_eq!(second.await.unwrap(), Duration::from_secs(40));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slot_never_released_frees_itself_when_its_lease_ends() {
        let limiter = limiter(1, 10);
        let start = Instant::now();
        // A holder that died: its slot is never given back.
        std::mem::forget(acquire(&limiter).await);
        acquire(&limiter).await.release().await;
        assert_eq!(start.elapsed(), LEASE + Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_permit_is_released_in_the_background() {
        let limiter = limiter(1, 10);
        let start = Instant::now();
        drop(acquire(&limiter).await);
        acquire(&limiter).await.release().await;
        assert_eq!(start.elapsed(), Duration::from_secs(10), "not the lease");
    }

    #[tokio::test(start_paused = true)]
    async fn pause_stops_creation() {
        let limiter = limiter(20, 10);
        let start = Instant::now();
        limiter.pause(Duration::from_secs(3)).await.unwrap();
        acquire(&limiter).await.release().await;
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn rest_of_window_counts_from_the_oldest_answer() {
        let limiter = limiter(20, 10);
        assert_eq!(
            limiter.rest_of_window().await.unwrap(),
            Duration::from_secs(10)
        );
        acquire(&limiter).await.release().await;
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(
            limiter.rest_of_window().await.unwrap(),
            Duration::from_secs(6)
        );
    }

    #[tokio::test(start_paused = true)]
    async fn each_wait_is_reported_with_why_and_how_long() {
        let limiter = limiter(1, 10);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let held = acquire(&limiter).await;
        let waiter = {
            let (limiter, seen) = (limiter.clone(), seen.clone());
            tokio::spawn(async move {
                let permit = acquire_with(&limiter, LEASE, |wait, why| {
                    seen.lock().unwrap().push((wait, why));
                    true
                })
                .await
                .unwrap();
                assert!(permit.is_some());
            })
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        // In flight: a slot frees a window after its answer at the earliest.
        assert_eq!(
            seen.lock().unwrap().first(),
            Some(&(Duration::from_secs(10), LimitWait::Window))
        );
        held.release().await;
        waiter.await.unwrap();
        assert_eq!(
            seen.lock().unwrap().last(),
            Some(&(Duration::from_secs(1), LimitWait::Window)),
            "asked again at t = 10 s; answered at t = 1 s: 1 s to go"
        );
        limiter.pause(Duration::from_secs(30)).await.unwrap();
        let refused = acquire_with(&limiter, LEASE, |wait, why| {
            assert_eq!((wait, why), (Duration::from_secs(30), LimitWait::Paused));
            false
        })
        .await
        .unwrap();
        assert!(refused.is_none(), "the caller would not wait that long");
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_wait_takes_no_slot() {
        let concrete = Arc::new(ProcessLimiter::new(RateLimit::new(
            1,
            Duration::from_secs(10),
        )));
        let limiter: Arc<dyn CreationLimiter> = concrete.clone();
        let held = acquire(&limiter).await;
        let attempt = tokio::time::timeout(Duration::from_secs(1), acquire(&limiter)).await;
        assert!(attempt.is_err());
        held.release().await;
        assert_eq!(concrete.lock().entries.len(), 1);
    }
}
