//! Callbacks: when a task with `callBackUrl` ends, one POST of the documented
//! body, signed when an HMAC key is configured (`docs/service-notes.md` §5). Sent once, never
//! retried, as far as anyone knows of the real service.

use std::sync::Arc;

use base64::Engine as _;
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};

use crate::shared::Shared;
use crate::state::{CallbackRecord, Outcome, Task, now_ms};

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
    };
    if !loopback(&url) && !shared.config.callbacks_off_loopback {
        record.error =
            Some("not sent: the URL is not on loopback (callbacksOffLoopback is off)".into());
        shared.lock().callbacks.push(record);
        return;
    }
    let body = body(&task, &shared.base_url);
    let mut request = shared.http.post(&url).json(&body);
    if let Some(key) = &key {
        let timestamp = now_ms() / 1000;
        request = request
            .header("X-Webhook-Timestamp", timestamp.to_string())
            .header("X-Webhook-Signature", signature(key, &task.id, timestamp));
    }
    record.sent = true;
    match request.send().await {
        Ok(response) => record.status = Some(response.status().as_u16()),
        Err(e) => record.error = Some(e.to_string()),
    }
    tracing::debug!(task_id = %task.id, status = ?record.status, "callback sent");
    shared.lock().callbacks.push(record);
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
