//! The hub's bookkeeping: what came, what is expected, and what is forgotten
//! when, so that memory stays bounded under any flood of callbacks.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use kling_api_ext::TaskId;

use super::{CallbackNotice, MAX_ENTRIES, REMEMBER};

#[derive(Default)]
pub(super) struct State {
    /// Callbacks per task, and when the last came.
    pub(super) tasks: HashMap<TaskId, (u32, Instant)>,
    /// The tasks callbacks on each nonce's URL named, first first, and when
    /// the last came.
    pub(super) nonces: HashMap<String, (Vec<TaskId>, Instant)>,
    /// The nonces this process issued or listens on, and since when.
    pub(super) expected_nonces: HashMap<String, Instant>,
    /// The tasks a wait of this process watches, and since when.
    pub(super) expected_tasks: HashMap<TaskId, Instant>,
    /// The last few callbacks nobody expected (yet): a callback may come a
    /// moment before its wait starts. Bounded, so a flood of forged
    /// callbacks costs no memory and pushes out nothing expected.
    pub(super) strays: VecDeque<CallbackNotice>,
    /// Deliveries since the last prune.
    pub(super) since_prune: usize,
}

/// At most this many unexpected callbacks are kept, newest first.
pub(super) const MAX_STRAYS: usize = 256;

/// At most this many tasks are kept per nonce: one is the real one, the
/// others replays or forgeries that recovery passes over.
pub(super) const MAX_PER_NONCE: usize = 16;

impl State {
    /// Forgets what is older than [`REMEMBER`], then, past [`MAX_ENTRIES`],
    /// the oldest. Runs every 1,024 deliveries or when a map is full, so a
    /// delivery costs no scan of the maps.
    pub(super) fn prune(&mut self) {
        self.since_prune += 1;
        let full = self.tasks.len() > MAX_ENTRIES || self.nonces.len() > MAX_ENTRIES;
        if self.since_prune < 1024 && !full {
            return;
        }
        self.since_prune = 0;
        let fresh = |at: &Instant| at.elapsed() < REMEMBER;
        self.tasks.retain(|_, (_, at)| fresh(at));
        self.nonces.retain(|_, (_, at)| fresh(at));
        self.expected_nonces.retain(|_, at| fresh(at));
        self.expected_tasks.retain(|_, at| fresh(at));
        fn keep_newest<K: Clone + Eq + std::hash::Hash, V>(
            map: &mut HashMap<K, V>,
            at: impl Fn(&V) -> Instant,
        ) {
            if map.len() <= MAX_ENTRIES {
                return;
            }
            // Rare: down to half the cap, newest kept.
            let mut times: Vec<Instant> = map.values().map(&at).collect();
            times.sort_unstable();
            let cutoff = times[times.len() - MAX_ENTRIES / 2];
            map.retain(|_, v| at(v) >= cutoff);
        }
        keep_newest(&mut self.tasks, |(_, at)| *at);
        keep_newest(&mut self.nonces, |(_, at)| *at);
        keep_newest(&mut self.expected_nonces, |at| *at);
        keep_newest(&mut self.expected_tasks, |at| *at);
    }

    /// Records an expected callback; returns whether it is its task's first.
    pub(super) fn record(&mut self, notice: &CallbackNotice, with_nonce: bool) -> bool {
        let now = Instant::now();
        let entry = self.tasks.entry(notice.task_id.clone()).or_insert((0, now));
        entry.0 += 1;
        entry.1 = now;
        let first = entry.0 == 1;
        if let (true, Some(nonce)) = (with_nonce, &notice.nonce) {
            let (tasks, at) = self
                .nonces
                .entry(nonce.clone())
                .or_insert_with(|| (Vec::new(), now));
            *at = now;
            if !tasks.contains(&notice.task_id) {
                if tasks.len() < MAX_PER_NONCE {
                    if let Some(first) = tasks.first() {
                        tracing::warn!(
                            nonce = %nonce,
                            first = %first,
                            another = %notice.task_id,
                            "a callback names another task for a nonce: each is checked with the service"
                        );
                    }
                    tasks.push(notice.task_id.clone());
                } else {
                    tracing::warn!(nonce = %nonce, ignored = %notice.task_id, "too many tasks named for one nonce: ignored");
                }
            }
        }
        first
    }

    /// Takes the strays that are now expected into the record.
    pub(super) fn adopt_strays(&mut self) {
        let strays = std::mem::take(&mut self.strays);
        for notice in strays {
            let by_nonce = notice
                .nonce
                .as_ref()
                .is_some_and(|n| self.expected_nonces.contains_key(n));
            if by_nonce || self.expected_tasks.contains_key(&notice.task_id) {
                self.record(&notice, by_nonce);
            } else {
                self.strays.push_back(notice);
            }
        }
    }
}
