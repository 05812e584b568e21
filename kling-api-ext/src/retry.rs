//! When and how calls are repeated.

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime};

use backon::Retryable as _;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Operation, Result};

/// Bounds and shape of the retries (see the module docs for what is retried).
/// New settings may come: build it from [`RetryPolicy::default`] or
/// [`RetryPolicy::none`] and its setters.
///
/// ```
/// use std::time::Duration;
/// let policy = kling_api_ext::RetryPolicy::default()
///     .max_attempts(3)
///     .time_budget(Duration::from_secs(20));
/// assert_eq!(policy.max_attempts, 3);
/// ```
///
/// **Reads** (recordInfo, credit, download-url, preflight, downloads) and uploads
/// (free, and a repeat only stores another temporary file) are retried on
/// transport errors, HTTP 408/429/5xx (Cloudflare's 52x included) and envelope
/// codes 429, 433, 455 and 500, with jittered exponential backoff that honours
/// `Retry-After` (seconds or HTTP-date), bounded by a number of attempts and a
/// time budget.
///
/// **createTask** costs money and has no idempotency key, so it is repeated only
/// when the service certainly did not take it: no connection was made, or it
/// answered 429/433 (rate limited) or 455 (maintenance) with HTTP 200 or 429.
/// After a timeout, a reset once the request was sent, any HTTP 5xx (even one
/// whose body is the envelope), an envelope `code: 500` ("server exception", not
/// a validation message) or a body that is not the envelope, the outcome is
/// unknown and [`crate::Client::submit`] returns
/// [`crate::Error::SubmitOutcomeUnknown`] instead of trying again: the service
/// may have stored the task before it failed.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = no retries).
    pub max_attempts: u32,
    /// The first delay; each next one is up to twice as long, jittered.
    pub initial_delay: Duration,
    /// The longest single delay (a longer `Retry-After` is honoured up to the
    /// time budget).
    pub max_delay: Duration,
    /// No retry starts once this much time has passed since the first attempt.
    pub time_budget: Duration,
}

impl Default for RetryPolicy {
    /// 5 attempts, 500 ms doubling to at most 8 s, within 60 s.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 5,
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(8),
            time_budget: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// No retries at all.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The backoff, jittered (backon's exponential backoff).
    fn backoff(&self) -> backon::ExponentialBuilder {
        backon::ExponentialBuilder::default()
            .with_min_delay(self.initial_delay)
            .with_max_delay(self.max_delay)
            .with_factor(2.0)
            .with_jitter()
            .with_max_times(self.max_attempts.saturating_sub(1) as usize)
    }

    /// The backoff delays.
    #[cfg(test)]
    fn delays(&self) -> impl Iterator<Item = Duration> + use<> {
        backon::BackoffBuilder::build(self.backoff())
    }
}

/// What an attempt's error means for the loop.
pub(crate) enum Step {
    /// Worth another attempt, within the policy.
    Again(Error),
    /// Returned as it is.
    Stop(Error),
}

impl Step {
    /// [`Step::Again`] for what [`Error::is_retryable`] says is worth it: the
    /// rule for reads and uploads.
    pub(crate) fn read(error: Error) -> Step {
        if error.is_retryable() {
            Step::Again(error)
        } else {
            Step::Stop(error)
        }
    }

    fn error(&self) -> &Error {
        let (Step::Again(error) | Step::Stop(error)) = self;
        error
    }

    fn into_error(self) -> Error {
        let (Step::Again(error) | Step::Stop(error)) = self;
        error
    }
}

/// Chooses the wait before the next attempt from the error and the backoff's
/// delay.
pub(crate) type DelayFn<'a> = &'a (dyn Fn(&Error, Duration) -> Duration + Send + Sync);
/// Told of each wait before it starts: the error, the wait, the attempt about
/// to be made.
pub(crate) type NotifyFn<'a> = &'a (dyn Fn(&Error, Duration, u32) + Send + Sync);

/// The one retry loop of the SDK (backon's `Retry`: `when` keeps the
/// [`Step::Again`] errors, `adjust` honours `Retry-After` and the time budget).
/// Each call states its rule as the [`Step`] its attempts return; createTask's
/// rule is "again only when the service certainly did not take it".
pub(crate) struct Runner<'a> {
    policy: &'a RetryPolicy,
    operation: Operation,
    budgeted: bool,
    delay: Option<DelayFn<'a>>,
    notify: Option<NotifyFn<'a>>,
    report: RetryReport<'a>,
    cancel: Option<CancellationToken>,
}

impl<'a> Runner<'a> {
    /// The policy's loop: waits of `Retry-After` or the backoff, within the
    /// time budget.
    pub(crate) fn new(policy: &'a RetryPolicy, operation: Operation) -> Self {
        Runner {
            policy,
            operation,
            budgeted: true,
            delay: None,
            notify: None,
            report: None,
            cancel: None,
        }
    }

    /// Bounded by attempts only, not by the time budget (a long download that
    /// breaks late still deserves its retries).
    pub(crate) fn attempts_only(mut self) -> Self {
        self.budgeted = false;
        self
    }

    /// Another rule for the wait.
    pub(crate) fn delay(mut self, delay: DelayFn<'a>) -> Self {
        self.delay = Some(delay);
        self
    }

    /// Tells `notify` of each wait (instead of the default log line).
    pub(crate) fn notify(mut self, notify: NotifyFn<'a>) -> Self {
        self.notify = Some(notify);
        self
    }

    /// Tells `report` of each wait as a [`Retrying`].
    pub(crate) fn report(mut self, report: RetryReport<'a>) -> Self {
        self.report = report;
        self
    }

    /// Ends a wait early when `token` is cancelled (the next attempt sees it).
    pub(crate) fn cancel(mut self, token: Option<CancellationToken>) -> Self {
        self.cancel = token;
        self
    }

    /// Runs `call` until it succeeds, returns [`Step::Stop`], or the policy
    /// says no more.
    pub(crate) async fn run<T, F, Fut>(self, call: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = std::result::Result<T, Step>>,
    {
        let started = Instant::now();
        let attempt = AtomicU32::new(1);
        let cancel = self.cancel.clone();
        let sleep = move |delay: Duration| {
            let cancel = cancel.clone();
            async move {
                match cancel {
                    Some(token) => tokio::select! {
                        _ = tokio::time::sleep(delay) => {}
                        _ = token.cancelled() => {}
                    },
                    None => tokio::time::sleep(delay).await,
                }
            }
        };
        let policy = self.policy;
        call.retry(policy.backoff())
            .sleep(sleep)
            .when(|step| matches!(step, Step::Again(_)))
            .adjust(|step, backoff| {
                let error = step.error();
                let backoff = backoff?;
                let delay = match self.delay {
                    Some(delay) => delay(error, backoff),
                    None => error.retry_after().unwrap_or(backoff),
                };
                if self.budgeted && started.elapsed().saturating_add(delay) > policy.time_budget {
                    return None;
                }
                Some(delay)
            })
            .notify(|step, delay| {
                let error = step.error();
                let next = attempt.fetch_add(1, Ordering::Relaxed) + 1;
                match self.notify {
                    Some(notify) => notify(error, delay, next),
                    None => {
                        tracing::debug!(operation = %self.operation, attempt = next - 1, delay_ms = delay.as_millis() as u64, error = %error, "retrying")
                    }
                }
                if let Some(report) = self.report {
                    report(&Retrying {
                        operation: self.operation,
                        wait: delay,
                        attempt: next,
                        max_attempts: policy.max_attempts,
                        error: error.brief(),
                    });
                }
            })
            .await
            .map_err(Step::into_error)
    }
}

setters!(RetryPolicy {
    max_attempts: u32 => "Attempts in all, the first included (1 = no retries).",
    initial_delay: Duration => "The first delay.",
    max_delay: Duration => "The longest single delay.",
    time_budget: Duration => "No retry starts once this much time has passed since the first attempt.",
});

/// One retry about to wait, as [`crate::submit::PrepareEvent::Retrying`] reports it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Retrying {
    /// The request that failed.
    pub operation: crate::error::Operation,
    /// How long it waits before the next attempt.
    pub wait: Duration,
    /// The attempt about to be made (2 for the first retry).
    pub attempt: u32,
    /// Attempts in all, at most (the policy's `max_attempts`).
    pub max_attempts: u32,
    /// Why the last attempt failed, in one short line: the message without
    /// the operation's name or a response body, at most 100 characters.
    pub error: String,
}

/// Told of each retry before its wait.
pub(crate) type RetryReport<'a> = Option<&'a (dyn Fn(&Retrying) + Send + Sync)>;

/// Parses `Retry-After`: delay-seconds, or an HTTP-date (RFC 9110 §10.2.3).
/// The longest `Retry-After` honoured; a longer one (a day, a year) is read as
/// this, so that no computed wake-up time can overflow.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let delay = if let Ok(secs) = value.parse::<u64>() {
        Duration::from_secs(secs)
    } else if let Ok(secs) = value.parse::<f64>() {
        if secs.is_nan() || secs < 0.0 {
            return None;
        }
        Duration::try_from_secs_f64(secs).unwrap_or(MAX_RETRY_AFTER)
    } else {
        let at = httpdate::parse_http_date(value).ok()?;
        at.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_in_both_forms() {
        let now = httpdate::parse_http_date("Wed, 25 Nov 2026 17:00:00 GMT").unwrap();
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("1.5", now),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(
            parse_retry_after("Wed, 25 Nov 2026 17:00:12 GMT", now),
            Some(Duration::from_secs(12))
        );
        // A date in the past means "now".
        assert_eq!(
            parse_retry_after("Wed, 25 Nov 2026 16:59:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
        assert_eq!(parse_retry_after("NaN", now), None);
        // Found by `cargo fuzz run result_json`: 1e300 seconds panicked. Absurd
        // waits are capped at an hour.
        assert_eq!(parse_retry_after("1e300", now), Some(MAX_RETRY_AFTER));
        assert_eq!(
            parse_retry_after("18446744073709551615", now),
            Some(MAX_RETRY_AFTER)
        );
        assert_eq!(
            parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now),
            Some(MAX_RETRY_AFTER)
        );
    }

    #[test]
    fn delays_grow_within_bounds_and_stop() {
        let policy = RetryPolicy {
            max_attempts: 6,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(800),
            time_budget: Duration::from_secs(60),
        };
        let delays: Vec<Duration> = policy.delays().collect();
        assert_eq!(delays.len(), 5);
        for (i, d) in delays.iter().enumerate() {
            let base = Duration::from_millis(100 * (1 << i)).min(Duration::from_millis(800));
            // backon's jitter adds up to one base delay.
            assert!(*d >= base && *d <= base * 2, "delay {i}: {d:?}");
        }
        assert_eq!(RetryPolicy::none().delays().count(), 0);
    }
}
