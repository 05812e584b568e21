//! Callbacks: when a task with `callBackUrl` ends, one POST of the documented
//! body, signed when an HMAC key is configured (`docs/service-notes.md` §5). Sent once, never
//! retried, as far as anyone knows of the real service; `faults.callback` makes
//! them lost, duplicated, delayed or reordered, as a network between the
//! service and a receiver can. A task whose create answer never reached the
//! client (the `resetAfter` and `slowAfter` faults) is called back like any
//! other: the service took it.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

use crate::shared::Shared;
use crate::state::{Outcome, Task, now_ms};
use crate::stats::CallbackRecord;

/// `base64(HMAC-SHA256(taskId + "." + timestamp, key))`, the documented scheme.
pub fn signature(key: &str, task_id: &str, timestamp: i64) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes())
        .expect("HMAC takes any key length");
    mac.update(format!("{task_id}.{timestamp}").as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// The callback body for an ended task.
pub(crate) fn body(task: &Task, base: &str) -> Value {
    let now = task.created + task.end;
    let mut data = task.record(now, base, None);
    data["updateTime"] = json!(task.end_ms());
    match task.outcome {
        Outcome::Success { .. } => {
            data["creditsConsumed"] = json!(task.credits);
            json!({"code": 200, "msg": "Playground task completed successfully.", "data": data})
        }
        Outcome::Fail { .. } => {
            data["creditsConsumed"] = json!(0);
            json!({"code": 501, "msg": "Playground task failed.", "data": data})
        }
    }
}

fn loopback(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| crate::shared::is_loopback(&u))
}

/// What the callback faults decided for one callback.
struct Fate {
    lost: bool,
    duplicated: bool,
    delay: Option<Duration>,
    reordered: bool,
}

fn fate(shared: &Shared) -> Fate {
    let f = shared.faults().callback;
    let mut rng = shared.fault_rng.lock().unwrap_or_else(|p| p.into_inner());
    let (lost, duplicated, delayed, reordered) = (rng.f64(), rng.f64(), rng.f64(), rng.f64());
    let [low, high] = f.delay_ms;
    let delay_ms = low + (high.saturating_sub(low) as f64 * rng.f64()) as u64;
    Fate {
        lost: lost < f.lost,
        duplicated: duplicated < f.duplicated,
        delay: (delayed < f.delayed).then(|| Duration::from_millis(delay_ms)),
        reordered: reordered < f.reordered,
    }
}

fn count_fault(shared: &Shared, name: &str) {
    *shared
        .lock()
        .faults
        .entry(format!("callback.{name}"))
        .or_default() += 1;
}

/// Sleeps `delay`; `false` if the simulator stopped first.
async fn pause(shared: &Shared, delay: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(delay) => true,
        _ = shared.cancel.cancelled() => false,
    }
}

pub(crate) async fn deliver(shared: Arc<Shared>, task: Task) {
    let Some(url) = task.callback_url.clone() else {
        return;
    };
    tokio::select! {
        _ = tokio::time::sleep_until(task.created + task.end) => {}
        _ = shared.cancel.cancelled() => return,
    }
    let key = shared.config.webhook_hmac_key.clone();
    let mut record = CallbackRecord {
        task_id: task.id.clone(),
        url: url.clone(),
        sent: false,
        status: None,
        error: None,
        signed: key.is_some(),
        fault: None,
    };
    if !loopback(&url) && !shared.config.callbacks_off_loopback {
        record.error =
            Some("not sent: the URL is not on loopback (callbacksOffLoopback is off)".into());
        shared.lock().callbacks.push(record);
        return;
    }
    let fate = fate(&shared);
    if fate.lost {
        count_fault(&shared, "lost");
        record.fault = Some("lost".into());
        record.error = Some("not sent: lost (faults.callback.lost)".into());
        shared.lock().callbacks.push(record);
        return;
    }
    if let Some(delay) = fate.delay {
        count_fault(&shared, "delayed");
        record.fault = Some(format!("delayed {} ms", delay.as_millis()));
        if !pause(&shared, delay).await {
            return;
        }
    }
    if fate.reordered {
        count_fault(&shared, "reordered");
        record.fault = Some("reordered".into());
        let longest = Duration::from_millis(shared.faults().callback.delay_ms[1].max(1));
        let another = shared.callback_sent.notified();
        tokio::select! {
            _ = another => {}
            _ = tokio::time::sleep(longest) => {}
            _ = shared.cancel.cancelled() => return,
        }
    }
    let body = body(&task, &shared.base_url);
    let timestamp = now_ms() / 1000;
    let send = |copy: &CallbackRecord| {
        let mut request = shared.http.post(&url).json(&body);
        if let Some(key) = &key {
            request = request
                .header("X-Webhook-Timestamp", timestamp.to_string())
                .header("X-Webhook-Signature", signature(key, &task.id, timestamp));
        }
        let mut copy = copy.clone();
        copy.sent = true;
        async move {
            match request.send().await {
                Ok(response) => copy.status = Some(response.status().as_u16()),
                Err(e) => copy.error = Some(e.to_string()),
            }
            copy
        }
    };
    let first = send(&record).await;
    tracing::debug!(task_id = %task.id, status = ?first.status, "callback sent");
    shared.lock().callbacks.push(first);
    shared.callback_sent.notify_waiters();
    if fate.duplicated {
        count_fault(&shared, "duplicated");
        if !pause(
            &shared,
            Duration::from_millis(shared.faults().callback.duplicate_after_ms),
        )
        .await
        {
            return;
        }
        let mut again = record.clone();
        again.fault = Some("duplicate".into());
        let again = send(&again).await;
        shared.lock().callbacks.push(again);
        shared.callback_sent.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Known answer, computed independently of this code, by both:
    /// `python3 -c 'import hmac,hashlib,base64; print(base64.b64encode(hmac.new(b"secret", b"task1.1700000000", hashlib.sha256).digest()).decode())'`
    /// `printf 'task1.1700000000' | openssl dgst -sha256 -hmac secret -binary | base64`
    #[test]
    fn signature_matches_an_independent_computation() {
        assert_eq!(
            signature("secret", "task1", 1_700_000_000),
            "Bpi3jhs3QgziHpYQ8zsyMocxMn4eY89lHCR9BLAl8zM="
        );
    }
}
