//! The slot bookkeeping every limiter shares, on its own clock (milliseconds
//! or [`tokio::time::Instant`]s): `T` is a point in time. Public so that a
//! [`CreationLimiter`](super::CreationLimiter) kept elsewhere (a file, a database: the `kling-fleet`
//! crate's) decides exactly as this process's does.

use super::{Acquire, LimitWait, SlotId};
use std::time::Duration;

/// A slot: taken, answered (or not yet), and the end of its lease.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Entry<T> {
    /// The slot's number ([`SlotId::get`]).
    pub id: u64,
    /// When its creation's answer arrived.
    pub answered: Option<T>,
    /// When a holder that never answers loses it.
    pub lease_until: T,
}

impl<T: Copy + Ord> Entry<T> {
    /// When it counts as answered: its answer, or the end of a lapsed lease.
    pub fn done(&self, now: T) -> Option<T> {
        self.answered
            .or((self.lease_until <= now).then_some(self.lease_until))
    }
}

/// The decision for one ask at `now`: drops the entries whose window has
/// passed, then grants slot `next_id` (pushed with `lease_until`) or says
/// how long to wait. `add` adds a duration to a point in time, `sub` is
/// the duration from the second point to the first (zero if earlier).
#[allow(clippy::too_many_arguments)]
pub fn decide<T: Copy + Ord>(
    entries: &mut Vec<Entry<T>>,
    paused_until: Option<T>,
    now: T,
    max: u32,
    window: Duration,
    next_id: u64,
    lease_until: T,
    add: impl Fn(T, Duration) -> T,
    sub: impl Fn(T, T) -> Duration,
) -> Acquire {
    if let Some(until) = paused_until.filter(|until| *until > now) {
        return Acquire::Wait {
            wait: sub(until, now),
            why: LimitWait::Paused,
        };
    }
    entries.retain(|e| e.done(now).is_none_or(|done| add(done, window) > now));
    if entries.len() < max as usize {
        entries.push(Entry {
            id: next_id,
            answered: None,
            lease_until,
        });
        return Acquire::Slot(SlotId::new(next_id));
    }
    // Full: the earliest answer frees a slot a window after it; if all are
    // in flight, one answered right now frees a window from now.
    let wait = entries
        .iter()
        .filter_map(|e| e.done(now))
        .min()
        .map_or(window, |done| sub(add(done, window), now));
    Acquire::Wait {
        wait,
        why: LimitWait::Window,
    }
}

/// "The rest of the window" at `now`: until the oldest answer leaves it.
pub fn rest<T: Copy + Ord>(
    entries: &[Entry<T>],
    now: T,
    window: Duration,
    add: impl Fn(T, Duration) -> T,
    sub: impl Fn(T, T) -> Duration,
) -> Duration {
    entries
        .iter()
        .filter_map(|e| e.done(now))
        .min()
        .map(|oldest| sub(add(oldest, window), now))
        .filter(|d| !d.is_zero())
        .unwrap_or(window)
}
