//! The one request pipeline. Every API call goes through [`Client::send`]
//! (or [`Client::send_once`] inside a loop with its own rule, as createTask's):
//! it opens the `kling_request` span from the [`Operation`]'s endpoint, times
//! the call, reads the answer ([`crate::interpret`]), scrubs the API key from
//! whatever came back, records the outcome on the span, and retries by the
//! client's policy.

use std::future::Future;
use std::time::Instant;

use secrecy::ExposeSecret;
use tracing::{Instrument, Span};

use crate::client::Client;
use crate::error::{Error, Operation, Result};
use crate::interpret::{Answer, Envelope};
use crate::lifecycle::TaskId;
use crate::retry::{RetryReport, Runner, Step};

/// The span every request runs in. The Authorization header and the key are
/// never recorded: only these fields exist.
pub(crate) fn request_span(
    operation: Operation,
    method: &'static str,
    path: &'static str,
    task_id: Option<&TaskId>,
) -> Span {
    tracing::debug_span!(
        "kling_request",
        operation = %operation,
        method,
        path,
        task_id = task_id.map(TaskId::as_str),
        http.status = tracing::field::Empty,
        code = tracing::field::Empty,
        duration_ms = tracing::field::Empty,
    )
}

/// Records the outcome on the span and logs it.
pub(crate) fn record(
    span: &Span,
    started: Instant,
    status: Option<u16>,
    code: Option<i64>,
    outcome: &Result<(), &Error>,
) {
    if let Some(status) = status {
        span.record("http.status", status);
    }
    if let Some(code) = code {
        span.record("code", code);
    }
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    span.record("duration_ms", ms);
    let _enter = span.enter();
    match outcome {
        Ok(()) => tracing::debug!(duration_ms = ms, "request done"),
        Err(e) => tracing::debug!(duration_ms = ms, error = %e, kind = e.kind(), "request failed"),
    }
}

impl Client {
    /// One request of `operation`, without retries: `request` is the
    /// generated (or hand-built) call, run inside the span.
    pub(crate) async fn send_once<B, Fut>(
        &self,
        operation: Operation,
        task_id: Option<&TaskId>,
        request: Fut,
    ) -> Result<B::Data>
    where
        B: Envelope + serde::de::DeserializeOwned + serde::Serialize,
        Fut: Future<Output = Answer<B>>,
    {
        let (method, path) = operation
            .endpoint()
            .map_or(("-", "-"), |e| (e.method, e.path));
        let span = request_span(operation, method, path, task_id);
        let started = Instant::now();
        let answer = request.instrument(span.clone()).await;
        let read = crate::interpret::read(operation, task_id, answer)
            .instrument(span.clone())
            .await;
        let outcome = read
            .outcome
            .map_err(|e| e.redact(self.inner.api_key.expose_secret()));
        record(
            &span,
            started,
            read.status,
            read.code,
            &outcome.as_ref().map(|_| ()),
        );
        outcome
    }

    /// [`send_once`](Self::send_once), retried on transient errors within the
    /// policy (for reads and uploads: they cost nothing to repeat).
    pub(crate) async fn send<B, F, Fut>(
        &self,
        operation: Operation,
        task_id: Option<&TaskId>,
        report: RetryReport<'_>,
        mut request: F,
    ) -> Result<B::Data>
    where
        B: Envelope + serde::de::DeserializeOwned + serde::Serialize,
        F: FnMut() -> Fut,
        Fut: Future<Output = Answer<B>>,
    {
        self.retrying(operation, report, || {
            self.send_once(operation, task_id, request())
        })
        .await
    }

    /// Runs `call` again while it fails with a retryable error, within the
    /// policy, telling `report` of each wait first (so that a status line never
    /// sits on a finished bar during a backoff).
    pub(crate) async fn retrying<T, F, Fut>(
        &self,
        operation: Operation,
        report: RetryReport<'_>,
        mut call: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        Runner::new(&self.inner.retry, operation)
            .report(report)
            .run(|| {
                let attempt = call();
                async move { attempt.await.map_err(Step::read) }
            })
            .await
    }
}
