//! Where callbacks meet the code that waits for them: a receiver (such as
//! the `webhook-receiver` feature's) delivers each notice, waits ([`WaitOptions::callbacks`]) and recoveries
//! ([`Client::recover`]) look them up by task id or by nonce.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use url::Url;

#[cfg(doc)]
use crate::WaitOptions;
use crate::client::Client;
use crate::lifecycle::TaskId;
use crate::task::Task;

/// A callback that passed the checks: which task it is about, and nothing
/// the unsigned body says about it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CallbackNotice {
    /// The task (covered by the signature when `signed`).
    pub task_id: TaskId,
    /// Whether the signature was checked.
    pub signed: bool,
    /// The callback's timestamp header (Unix seconds), if it had one.
    pub timestamp: Option<i64>,
    /// The nonce in the path it was posted to (the last segment, see
    /// [`callback_url`]), if any. Not signed: the task it names is confirmed
    /// before it counts ([`Client::recover`]).
    pub nonce: Option<String>,
}

impl CallbackNotice {
    /// A notice for `task_id`, unsigned, for code that receives callbacks
    /// with its own server and hands them to a [`CallbackHub`].
    pub fn new(task_id: TaskId, nonce: Option<String>) -> Self {
        CallbackNotice {
            task_id,
            signed: false,
            timestamp: None,
            nonce,
        }
    }

    /// The task as the service reports it now: the state, the result URLs or
    /// the failure, from recordInfo (retried on transient errors).
    pub async fn confirm(&self, client: &Client) -> crate::Result<Task> {
        client.get(&self.task_id).await
    }
}

/// How long the hub remembers a task's or a nonce's callbacks.
const REMEMBER: Duration = Duration::from_secs(24 * 3600);
/// At most this many tasks and nonces are remembered (the oldest go first).
const MAX_ENTRIES: usize = 100_000;

/// The callbacks a process has received, by task id and by nonce, shared by
/// every wait that wants them. Cheap to clone (one shared state).
///
/// A *nonce* is a random token this process puts in a task's `callBackUrl`
/// ([`callback_url`]) and records with its intent before createTask: when
/// createTask's answer is lost, the task's callback, arriving at that URL,
/// names the task ([`Client::recover`]).
///
/// ```
/// use kling_api_ext::{CallbackHub, CallbackNotice, TaskId};
///
/// let hub = CallbackHub::new();
/// let task = TaskId::new("task-1").unwrap();
/// assert!(hub.deliver(&CallbackNotice::new(task.clone(), Some("n0nce-123".into()))));
/// assert_eq!(hub.task_for_nonce("n0nce-123"), Some(task.clone()));
/// assert_eq!(hub.callbacks_for(&task), 1);
/// ```
#[derive(Clone, Default)]
pub struct CallbackHub {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for CallbackHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.inner.lock();
        f.debug_struct("CallbackHub")
            .field("tasks", &state.tasks.len())
            .field("nonces", &state.nonces.len())
            .finish()
    }
}

#[derive(Default)]
struct Inner {
    state: Mutex<State>,
    changed: Notify,
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Default)]
struct State {
    /// Callbacks per task, and when the last came.
    tasks: HashMap<TaskId, (u32, Instant)>,
    /// The tasks callbacks on each nonce's URL named, first first, and when
    /// the last came.
    nonces: HashMap<String, (Vec<TaskId>, Instant)>,
    /// Deliveries since the last prune.
    since_prune: usize,
}

/// At most this many tasks are kept per nonce: one is the real one, the
/// others replays or forgeries that recovery passes over.
const MAX_PER_NONCE: usize = 16;

impl State {
    /// Forgets what is older than [`REMEMBER`], then, past [`MAX_ENTRIES`],
    /// the oldest. Runs every 1,024 deliveries or when a map is full, so a
    /// delivery costs no scan of the maps.
    fn prune(&mut self) {
        self.since_prune += 1;
        let full = self.tasks.len() > MAX_ENTRIES || self.nonces.len() > MAX_ENTRIES;
        if self.since_prune < 1024 && !full {
            return;
        }
        self.since_prune = 0;
        let fresh = |at: &Instant| at.elapsed() < REMEMBER;
        self.tasks.retain(|_, (_, at)| fresh(at));
        self.nonces.retain(|_, (_, at)| fresh(at));
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
    }
}

impl CallbackHub {
    /// An empty hub.
    pub fn new() -> Self {
        CallbackHub::default()
    }

    /// Records a notice and wakes whoever waits for its task or nonce.
    /// Returns whether it is the first callback for its task. A nonce keeps
    /// every task its callbacks named (up to 16), first first: a replayed or
    /// forged callback on a nonce's URL can neither move it nor hide the real
    /// one, since [`Client::recover`] checks each with the service.
    pub fn deliver(&self, notice: &CallbackNotice) -> bool {
        let first = {
            let mut state = self.inner.lock();
            state.prune();
            let now = Instant::now();
            let entry = state
                .tasks
                .entry(notice.task_id.clone())
                .or_insert((0, now));
            entry.0 += 1;
            entry.1 = now;
            let first = entry.0 == 1;
            if let Some(nonce) = &notice.nonce {
                let (tasks, at) = state
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
        };
        self.inner.changed.notify_waiters();
        first
    }

    /// How many callbacks arrived for `task` (duplicates the receiver
    /// dropped are not counted).
    pub fn callbacks_for(&self, task: &TaskId) -> u32 {
        self.inner.lock().tasks.get(task).map_or(0, |(n, _)| *n)
    }

    /// The task the first callback carrying `nonce` named, if one came.
    pub fn task_for_nonce(&self, nonce: &str) -> Option<TaskId> {
        self.inner
            .lock()
            .nonces
            .get(nonce)
            .and_then(|(t, _)| t.first().cloned())
    }

    /// Every task the callbacks carrying `nonce` named, first first.
    pub fn tasks_for_nonce(&self, nonce: &str) -> Vec<TaskId> {
        self.inner
            .lock()
            .nonces
            .get(nonce)
            .map(|(t, _)| t.clone())
            .unwrap_or_default()
    }

    /// Waits until more than `seen` callbacks have arrived for `task`, and
    /// returns how many have.
    pub async fn callback_after(&self, task: &TaskId, seen: u32) -> u32 {
        self.until(|hub| Some(hub.callbacks_for(task)).filter(|n| *n > seen))
            .await
    }

    /// Waits until a callback carrying `nonce` has arrived, and returns the
    /// task it named.
    pub async fn nonce_resolved(&self, nonce: &str) -> TaskId {
        self.until(|hub| hub.task_for_nonce(nonce)).await
    }

    /// Waits until a callback carrying `nonce` names a task not in `seen`,
    /// and returns it.
    pub async fn nonce_names_another(&self, nonce: &str, seen: &[TaskId]) -> TaskId {
        self.until(|hub| {
            hub.tasks_for_nonce(nonce)
                .into_iter()
                .find(|t| !seen.contains(t))
        })
        .await
    }

    async fn until<T>(&self, mut check: impl FnMut(&CallbackHub) -> Option<T>) -> T {
        loop {
            // Registered before the check, so a delivery between the two wakes it.
            let changed = self.inner.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(found) = check(self) {
                return found;
            }
            changed.await;
        }
    }
}

/// A fresh nonce: 128 bits from the operating system's generator, as 32
/// lowercase hex characters (safe in a URL path).
pub fn new_nonce() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS generator (never seen on supported targets): still unique
        // within the process, and a callback is confirmed before it counts.
        bytes = fastrand::u128(..).to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `callBackUrl` for a nonce: `public` with the nonce as one more path
/// segment (`https://hooks.example.com/kling` → `…/kling/<nonce>`). The
/// receiver reads the nonce back from the last segment of the path it is
/// called on, so a proxy may keep or strip the prefix.
pub fn callback_url(public: &Url, nonce: &str) -> Url {
    let mut url = public.clone();
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty().push(nonce);
    }
    url
}

/// The nonce a callback's request path carries: its last segment, when it
/// looks like one (8 to 128 characters of `A-Z a-z 0-9 - _`).
pub(crate) fn nonce_in_path(path: &str) -> Option<String> {
    let last = path.rsplit('/').find(|s| !s.is_empty())?;
    let fits = (8..=128).contains(&last.len())
        && last
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    fits.then(|| last.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notice(task: &str, nonce: Option<&str>) -> CallbackNotice {
        CallbackNotice::new(TaskId::new(task).unwrap(), nonce.map(str::to_owned))
    }

    #[test]
    fn nonces_are_long_random_and_fit_a_path() {
        let (a, b) = (new_nonce(), new_nonce());
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert_eq!(nonce_in_path(&format!("/{a}")), Some(a.clone()));
        let public: Url = "https://hooks.example.com/kling/".parse().unwrap();
        let url = callback_url(&public, &a);
        assert_eq!(url.as_str(), format!("https://hooks.example.com/kling/{a}"));
        assert_eq!(nonce_in_path(url.path()), Some(a));
    }

    #[test]
    fn a_path_without_a_nonce_has_none() {
        assert_eq!(nonce_in_path("/"), None);
        assert_eq!(nonce_in_path(""), None);
        assert_eq!(nonce_in_path("/short"), None);
        assert_eq!(nonce_in_path("/has.dots.in.it"), None);
    }

    #[test]
    fn a_nonce_keeps_every_task_its_callbacks_named_first_first() {
        let hub = CallbackHub::new();
        assert!(hub.deliver(&notice("task-a", Some("nonce-0001"))));
        assert!(hub.deliver(&notice("task-b", Some("nonce-0001"))));
        assert!(!hub.deliver(&notice("task-b", Some("nonce-0001"))));
        assert_eq!(hub.task_for_nonce("nonce-0001").unwrap().as_str(), "task-a");
        let named: Vec<String> = hub
            .tasks_for_nonce("nonce-0001")
            .iter()
            .map(|t| t.to_string())
            .collect();
        assert_eq!(named, ["task-a", "task-b"]);
        for i in 0..40 {
            hub.deliver(&notice(&format!("flood-{i}"), Some("nonce-0001")));
        }
        assert_eq!(hub.tasks_for_nonce("nonce-0001").len(), MAX_PER_NONCE);
        assert!(
            !hub.deliver(&notice("task-a", None)),
            "not the first for task-a"
        );
        assert_eq!(hub.callbacks_for(&TaskId::new("task-a").unwrap()), 2);
    }

    #[test]
    fn a_flood_of_callbacks_keeps_the_hub_bounded_and_the_newest() {
        let hub = CallbackHub::new();
        let n = MAX_ENTRIES + 10;
        for i in 0..n {
            hub.deliver(&notice(&format!("t{i}"), Some(&format!("nonce-{i:08}"))));
        }
        let state = hub.inner.lock();
        assert!(state.tasks.len() <= MAX_ENTRIES, "{}", state.tasks.len());
        assert!(state.nonces.len() <= MAX_ENTRIES, "{}", state.nonces.len());
        drop(state);
        let last = format!("nonce-{:08}", n - 1);
        assert_eq!(
            hub.task_for_nonce(&last).unwrap().to_string(),
            format!("t{}", n - 1)
        );
    }

    #[tokio::test]
    async fn a_waiter_wakes_on_the_callback_it_waits_for() {
        let hub = CallbackHub::new();
        let task = TaskId::new("task-w").unwrap();
        let waiter = tokio::spawn({
            let (hub, task) = (hub.clone(), task.clone());
            async move { hub.callback_after(&task, 0).await }
        });
        let by_nonce = tokio::spawn({
            let hub = hub.clone();
            async move { hub.nonce_resolved("nonce-wait").await }
        });
        tokio::task::yield_now().await;
        hub.deliver(&notice("other-task", None));
        hub.deliver(&notice("task-w", Some("nonce-wait")));
        assert_eq!(waiter.await.unwrap(), 1);
        assert_eq!(by_nonce.await.unwrap(), task);
    }
}
