//! Recovering a task whose createTask answer was lost, from the callback
//! the service sends to the nonce's URL when the task ends.

use std::time::Duration;

use kling_api_ext::{Client, Error, Result, Task, TaskId, WaitOptions};
use tokio::time::Instant;

use crate::hub::{CallbackHub, nonce_in_path};

impl CallbackHub {
    /// Finds the task a createTask left when its answer was lost
    /// ([`Error::SubmitOutcomeUnknown`]):
    /// the service calls back when the task ends, at the `callBackUrl` the
    /// request carried, so a callback on the nonce's URL
    /// ([`callback_url`](crate::callback_url)) names it. Waits for one
    /// until `options`' deadline or cancellation (`Ok(None)`), reads the task
    /// from the service, and checks that it was created with this nonce's URL
    /// when the service echoes it: a callback naming another task (a replay,
    /// a forgery) is passed over and the wait goes on. A task named but not
    /// readable (an outage, a record not visible yet) is read again, every 2 s
    /// growing to 30 s, while other callbacks are still heard; if none was
    /// confirmed by the deadline, the last read's error comes back, naming
    /// its task: every task named stays in
    /// [`CallbackHub::tasks_for_nonce`], so a paid task's id is never lost.
    /// `options.deadline(None)` with no cancellation waits as long as it takes.
    ///
    /// ```no_run
    /// # async fn demo(client: kling_api_ext::Client, request: kling_api_ext::AvatarRequest) -> Result<(), kling_api_ext::Error> {
    /// use kling_api_ext::{Error, WaitOptions};
    /// use kling_fleet::{CallbackHub, callback_url};
    ///
    /// let hub = CallbackHub::new(); // fed by a receiver (feature `receiver`)
    /// let nonce = hub.issue_nonce(); // expected by the hub from now on
    /// let public = "https://hooks.example.com/kling".parse().unwrap();
    /// let request = request.with_callback_url(callback_url(&public, &nonce))?;
    /// let task_id = match client.submit(&request).await {
    ///     Ok(id) => id,
    ///     Err(Error::SubmitOutcomeUnknown { .. }) => {
    ///         match hub.recover(&client, &nonce, &WaitOptions::new()).await? {
    ///             Some(task) => task.task_id, // recovered: paid once, found again
    ///             None => return Ok(()),      // no callback came: look on the dashboard
    ///         }
    ///     }
    ///     Err(e) => return Err(e),
    /// };
    /// let task = client.wait(&task_id, WaitOptions::new().callbacks(hub.clone())).await?;
    /// # Ok(()) }
    /// ```
    pub async fn recover(
        &self,
        client: &Client,
        nonce: &str,
        options: &WaitOptions,
    ) -> Result<Option<Task>> {
        let hub = self;
        let deadline = options
            .get_deadline()
            .and_then(|d| Instant::now().checked_add(d));
        let limit = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        let cancelled = async {
            match options.get_cancel_token() {
                Some(token) => token.cancelled().await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(limit, cancelled);
        // Tasks read and found created with another callBackUrl.
        let mut passed_over: Vec<TaskId> = Vec::new();
        // Tasks named but not read yet (the read failed): read again later,
        // never forgotten, and given back in the error at the end.
        let mut unread: Vec<(TaskId, Error)> = Vec::new();
        let mut again_in = Duration::from_secs(2);
        loop {
            let seen: Vec<TaskId> = passed_over
                .iter()
                .chain(unread.iter().map(|(t, _)| t))
                .cloned()
                .collect();
            let retry = async {
                if unread.is_empty() {
                    std::future::pending::<()>().await;
                }
                tokio::time::sleep(again_in).await;
            };
            let task_id = tokio::select! {
                biased;
                () = &mut cancelled => return give_back(unread),
                task = hub.nonce_names_another(nonce, &seen) => task,
                () = retry => {
                    again_in = (again_in * 2).min(Duration::from_secs(30));
                    unread.remove(0).0
                }
                () = &mut limit => return give_back(unread),
            };
            let task = match client.get(&task_id).await {
                Ok(task) => task,
                Err(error) => {
                    tracing::warn!(%task_id, nonce, %error, "a callback named this task, which cannot be read yet: read again later");
                    unread.push((task_id, error));
                    continue;
                }
            };
            let ours = match &task.callback_url {
                Some(url) => {
                    nonce_in_path(
                        url::Url::parse(url)
                            .map(|u| u.path().to_owned())
                            .as_deref()
                            .unwrap_or(url),
                    )
                    .as_deref()
                        == Some(nonce)
                }
                // The service did not echo the request: the callback came to
                // the nonce's URL and the task exists in this account.
                None => true,
            };
            if ours {
                tracing::info!(%task_id, nonce, "recovered the task of a lost createTask answer from its callback");
                return Ok(Some(task));
            }
            tracing::warn!(%task_id, nonce, "a callback on this nonce's URL names a task created with another callBackUrl: passed over");
            passed_over.push(task_id);
        }
    }
}

/// The end of a recovery that confirmed nothing: `None` when no callback
/// named a task that could not be read, else the last read's error, which
/// carries that task's id ([`Error::task_id`]); every task named is in
/// [`CallbackHub::tasks_for_nonce`].
fn give_back(unread: Vec<(TaskId, Error)>) -> Result<Option<Task>> {
    match unread.into_iter().last() {
        Some((_, error)) => Err(error),
        None => Ok(None),
    }
}
