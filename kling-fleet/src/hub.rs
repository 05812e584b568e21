//! Where callbacks meet the code that waits for them: a receiver (such as
//! the `receiver` feature's) delivers each notice, waits ([`WaitOptions::callbacks`]) and recoveries
//! ([`CallbackHub::recover`]) look them up by task id or by nonce.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

#[cfg(doc)]
use kling_api_ext::WaitOptions;
use kling_api_ext::wait::CallbackSignal;
use kling_api_ext::{Client, Task, TaskId};

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
    /// before it counts ([`CallbackHub::recover`]).
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
    pub async fn confirm(&self, client: &Client) -> kling_api_ext::Result<Task> {
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
/// names the task ([`CallbackHub::recover`]).
///
/// ```
/// use kling_api_ext::TaskId;
/// use kling_fleet::{CallbackHub, CallbackNotice};
///
/// let hub = CallbackHub::new();
/// let nonce = hub.issue_nonce(); // in the intent's callBackUrl
/// let task = TaskId::new("task-1").unwrap();
/// assert!(hub.deliver(&CallbackNotice::new(task.clone(), Some(nonce.clone()))));
/// assert_eq!(hub.task_for_nonce(&nonce), Some(task.clone()));
/// assert_eq!(hub.callbacks_for(&task), 1);
///
/// // A callback on a nonce nobody issued is answered, then forgotten.
/// hub.deliver(&CallbackNotice::new(TaskId::new("forged").unwrap(), Some("f0rged-nonce".into())));
/// assert_eq!(hub.task_for_nonce("f0rged-nonce"), None);
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

impl CallbackHub {
    /// An empty hub.
    pub fn new() -> Self {
        CallbackHub::default()
    }

    /// Records a notice and wakes whoever waits for its task or nonce.
    /// Returns whether it is the first callback for its task. A nonce keeps
    /// every task its callbacks named (up to 16), first first: a replayed or
    /// forged callback on a nonce's URL can neither move it nor hide the real
    /// one, since [`CallbackHub::recover`] checks each with the service.
    ///
    /// Only what this process expects is kept: a nonce it issued or listens
    /// on ([`CallbackHub::issue_nonce`], [`CallbackHub::expect_nonce`]) or a
    /// task a wait watches ([`CallbackHub::expect_task`]). Anything else is
    /// kept among the last 256 unexpected callbacks (one may come a moment
    /// before its wait starts) and then forgotten: forged callbacks cost no
    /// memory and push out nothing expected.
    pub fn deliver(&self, notice: &CallbackNotice) -> bool {
        let first = {
            let mut state = self.inner.lock();
            state.prune();
            let by_nonce = notice
                .nonce
                .as_ref()
                .is_some_and(|n| state.expected_nonces.contains_key(n));
            // A task a callback on an expected nonce named is expected too.
            let by_task = state.expected_tasks.contains_key(&notice.task_id)
                || state.tasks.contains_key(&notice.task_id);
            if by_nonce || by_task {
                state.record(notice, by_nonce)
            } else {
                let seen = state.strays.iter().any(|s| s.task_id == notice.task_id);
                if state.strays.len() >= MAX_STRAYS {
                    state.strays.pop_front();
                }
                state.strays.push_back(notice.clone());
                tracing::debug!(task_id = %notice.task_id, "a callback nobody here expects: kept a while, then forgotten");
                return !seen;
            }
        };
        self.inner.changed.notify_waiters();
        first
    }

    /// A fresh nonce ([`new_nonce`]) that this hub expects callbacks on:
    /// use one per intent, in its `callBackUrl` ([`callback_url`]).
    pub fn issue_nonce(&self) -> String {
        let nonce = new_nonce();
        self.expect_nonce(&nonce);
        nonce
    }

    /// Expects callbacks on `nonce` (issued earlier, by this process or by
    /// an earlier run whose intent recorded it).
    pub fn expect_nonce(&self, nonce: &str) {
        let mut state = self.inner.lock();
        if state.expected_nonces.contains_key(nonce) {
            return;
        }
        state
            .expected_nonces
            .insert(nonce.to_owned(), Instant::now());
        state.adopt_strays();
        drop(state);
        self.inner.changed.notify_waiters();
    }

    /// Expects callbacks for `task` (a wait with [`WaitOptions::callbacks`]
    /// does this itself).
    pub fn expect_task(&self, task: &TaskId) {
        let mut state = self.inner.lock();
        if state.expected_tasks.contains_key(task) {
            return;
        }
        state.expected_tasks.insert(task.clone(), Instant::now());
        state.adopt_strays();
        drop(state);
        self.inner.changed.notify_waiters();
    }

    /// No longer expects callbacks on `nonce` (its job ended): later ones are
    /// answered and forgotten.
    pub fn forget_nonce(&self, nonce: &str) {
        let mut state = self.inner.lock();
        state.expected_nonces.remove(nonce);
        state.nonces.remove(nonce);
    }

    /// No longer expects callbacks for `task` (its wait ended), nor on the
    /// nonces whose callbacks named it: later ones are answered and
    /// forgotten.
    pub fn forget_task(&self, task: &TaskId) {
        let mut state = self.inner.lock();
        state.tasks.remove(task);
        state.expected_tasks.remove(task);
        let done: Vec<String> = state
            .nonces
            .iter()
            .filter(|(_, (tasks, _))| tasks.contains(task))
            .map(|(nonce, _)| nonce.clone())
            .collect();
        for nonce in done {
            state.nonces.remove(&nonce);
            state.expected_nonces.remove(&nonce);
        }
    }

    /// How many tasks, nonces and unexpected callbacks the hub holds now
    /// (what its memory grows with).
    pub fn held(&self) -> (usize, usize, usize) {
        let state = self.inner.lock();
        (
            state.tasks.len() + state.expected_tasks.len(),
            state.nonces.len() + state.expected_nonces.len(),
            state.strays.len(),
        )
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
        self.expect_task(task);
        self.until(|hub| Some(hub.callbacks_for(task)).filter(|n| *n > seen))
            .await
    }

    /// Waits until a callback carrying `nonce` has arrived, and returns the
    /// task it named.
    pub async fn nonce_resolved(&self, nonce: &str) -> TaskId {
        self.expect_nonce(nonce);
        self.until(|hub| hub.task_for_nonce(nonce)).await
    }

    /// Waits until a callback carrying `nonce` names a task not in `seen`,
    /// and returns it.
    pub async fn nonce_names_another(&self, nonce: &str, seen: &[TaskId]) -> TaskId {
        self.expect_nonce(nonce);
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

impl CallbackSignal for CallbackHub {
    fn callback_after<'a>(
        &'a self,
        task: &'a TaskId,
        seen: u32,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = u32> + Send + 'a>> {
        Box::pin(CallbackHub::callback_after(self, task, seen))
    }
}

mod nonce;
mod state;
#[cfg(test)]
mod tests;

pub(crate) use nonce::nonce_in_path;
pub use nonce::{callback_url, new_nonce};
use state::{MAX_STRAYS, State};
