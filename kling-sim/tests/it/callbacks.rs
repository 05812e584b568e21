//! Callbacks: what is sent, when, and what the callback faults do to it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{body, create, sim};

async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

type Received = Arc<Mutex<Vec<(axum::http::HeaderMap, Value, Instant)>>>;

/// A loopback server that records callback requests.
async fn receiver() -> (String, Received) {
    let received = Arc::new(Mutex::new(Vec::new()));
    let log = received.clone();
    let app = axum::Router::new().route(
        "/callback",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, axum::Json(body): axum::Json<Value>| {
                let log = log.clone();
                async move {
                    log.lock().unwrap().push((headers, body, Instant::now()));
                    axum::Json(json!({"code": 200, "msg": "success"}))
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/callback", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, received)
}

async fn create_with_callback(sim: &kling_sim::Simulator, callback: &str, prompt: &str) -> String {
    let mut b = body("kling/ai-avatar-v1-pro", prompt);
    b["callBackUrl"] = json!(callback);
    json_of(create(sim, &b).await).await["data"]["taskId"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Waits (up to 10 s) until the simulator's stats satisfy `ready`.
async fn until(sim: &kling_sim::Simulator, what: &str, ready: impl Fn(&kling_sim::Stats) -> bool) {
    for _ in 0..1000 {
        if ready(&sim.stats()) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what} did not happen");
}

async fn wait_for_callbacks(sim: &kling_sim::Simulator, n: usize) {
    until(sim, &format!("{n} callbacks"), |s| s.callbacks.len() >= n).await;
}

#[tokio::test]
async fn a_signed_callback_is_posted_once_when_the_task_ends() {
    let (url, received) = receiver().await;
    let sim = crate::support::sim(|c| c.webhook_hmac_key = Some("whsec-test".into())).await;
    let id = create_with_callback(&sim, &url, "called back").await;
    wait_for_callbacks(&sim, 1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let received = received.lock().unwrap();
    assert_eq!(received.len(), 1, "sent once");
    let (headers, body, _) = &received[0];
    assert_eq!(body["code"], json!(200));
    assert_eq!(
        body["msg"],
        json!("Playground task completed successfully.")
    );
    assert_eq!(body["data"]["taskId"], json!(id));
    assert_eq!(body["data"]["state"], json!("success"));
    assert_eq!(body["data"]["creditsConsumed"], json!(80.0));
    assert!(
        body["data"]["resultJson"]
            .as_str()
            .unwrap()
            .contains("resultUrls")
    );
    let timestamp: i64 = headers["x-webhook-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (now - timestamp).abs() <= 5,
        "timestamp in seconds: {timestamp}"
    );
    let signature = headers["x-webhook-signature"].to_str().unwrap();
    assert_eq!(
        signature,
        kling_sim::signature("whsec-test", &id, timestamp)
    );
    let record = &sim.stats().callbacks[0];
    assert!(record.sent && record.signed);
    assert_eq!(record.status, Some(200));
}

#[tokio::test]
async fn a_failure_callback_has_code_501_and_no_credits() {
    let (url, received) = receiver().await;
    let sim = crate::support::sim(|c| c.lifecycle.fail_fraction = 1.0).await;
    create_with_callback(&sim, &url, "failing").await;
    wait_for_callbacks(&sim, 1).await;
    let received = received.lock().unwrap();
    let (headers, body, _) = &received[0];
    assert_eq!(
        (body["code"].clone(), body["msg"].clone()),
        (json!(501), json!("Playground task failed."))
    );
    assert_eq!(body["data"]["state"], json!("fail"));
    assert_eq!(body["data"]["creditsConsumed"], json!(0));
    assert!(
        headers.get("x-webhook-signature").is_none(),
        "no key, no signature"
    );
}

#[tokio::test]
async fn callbacks_off_loopback_are_recorded_not_sent() {
    let sim = crate::support::sim(|_| {}).await;
    create_with_callback(&sim, "https://example.com/callback", "far").await;
    wait_for_callbacks(&sim, 1).await;
    let record = &sim.stats().callbacks[0];
    assert!(!record.sent);
    assert!(record.error.as_deref().unwrap().contains("not on loopback"));
}

/// A simulator whose tasks all take `ms` (no waiting, no queuing).
async fn timed_sim(
    ms: u64,
    change: impl FnOnce(&mut kling_sim::SimConfig),
) -> kling_sim::Simulator {
    sim(|c| {
        c.lifecycle.waiting_ms = [0, 0];
        c.lifecycle.queuing_ms = [0, 0];
        c.lifecycle.generating_ms = [ms, ms];
        change(c);
    })
    .await
}

#[tokio::test]
async fn a_lost_callback_is_recorded_and_never_sent() {
    let (url, received) = receiver().await;
    let sim = timed_sim(50, |c| c.faults.callback.lost = 1.0).await;
    let id = create_with_callback(&sim, &url, "lost").await;
    wait_for_callbacks(&sim, 1).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(received.lock().unwrap().is_empty());
    let stats = sim.stats();
    let record = &stats.callbacks[0];
    assert!(!record.sent);
    assert_eq!(record.fault.as_deref(), Some("lost"));
    assert_eq!(
        stats
            .tasks
            .iter()
            .find(|t| t.task_id == id)
            .unwrap()
            .callbacks,
        0
    );
    assert_eq!(stats.faults.get("callback.lost"), Some(&1));
}

#[tokio::test]
async fn a_duplicated_callback_is_the_same_request_twice() {
    let (url, received) = receiver().await;
    let sim = timed_sim(50, |c| {
        c.webhook_hmac_key = Some("whsec-test".into());
        c.faults.callback.duplicated = 1.0;
        c.faults.callback.duplicate_after_ms = 100;
    })
    .await;
    let id = create_with_callback(&sim, &url, "twice").await;
    wait_for_callbacks(&sim, 2).await;
    let received = received.lock().unwrap();
    assert_eq!(received.len(), 2);
    let (h1, b1, at1) = &received[0];
    let (h2, b2, at2) = &received[1];
    assert_eq!(b1, b2);
    assert_eq!(h1["x-webhook-signature"], h2["x-webhook-signature"]);
    assert_eq!(h1["x-webhook-timestamp"], h2["x-webhook-timestamp"]);
    assert!(at2.duration_since(*at1) >= Duration::from_millis(100));
    let stats = sim.stats();
    assert_eq!(
        stats
            .tasks
            .iter()
            .find(|t| t.task_id == id)
            .unwrap()
            .callbacks,
        2
    );
    assert_eq!(stats.callbacks[1].fault.as_deref(), Some("duplicate"));
}

#[tokio::test]
async fn a_delayed_callback_arrives_its_delay_after_the_end() {
    let (url, received) = receiver().await;
    let sim = timed_sim(50, |c| {
        c.faults.callback.delayed = 1.0;
        c.faults.callback.delay_ms = [600, 600];
    })
    .await;
    let created = Instant::now();
    create_with_callback(&sim, &url, "late").await;
    wait_for_callbacks(&sim, 1).await;
    let (_, _, at) = received.lock().unwrap()[0].clone();
    assert!(
        at.duration_since(created) >= Duration::from_millis(650),
        "{:?}",
        at.duration_since(created)
    );
    assert_eq!(
        sim.stats().callbacks[0].fault.as_deref(),
        Some("delayed 600 ms")
    );
}

#[tokio::test]
async fn a_reordered_callback_arrives_after_a_later_tasks() {
    let (url, received) = receiver().await;
    let sim = sim(|c| {
        c.lifecycle.waiting_ms = [0, 0];
        c.lifecycle.queuing_ms = [0, 0];
        c.lifecycle.generating_ms = [200, 200];
        c.faults.callback.reordered = 1.0;
        c.faults.callback.delay_ms = [0, 20_000];
    })
    .await;
    let first = create_with_callback(&sim, &url, "first").await;
    // The first task's callback is held; the second task's is not.
    until(&sim, "the first task's end", |s| {
        s.tasks.iter().any(|t| t.task_id == first && t.ended)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut faults = sim.config().faults.clone();
    faults.callback.reordered = 0.0;
    sim.set_faults(faults).unwrap();
    let second = create_with_callback(&sim, &url, "second").await;
    wait_for_callbacks(&sim, 2).await;
    let order: Vec<String> = received
        .lock()
        .unwrap()
        .iter()
        .map(|(_, b, _)| b["data"]["taskId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(order, [second, first]);
}

#[tokio::test]
async fn a_task_whose_create_answer_was_lost_is_called_back_all_the_same() {
    let (url, received) = receiver().await;
    let sim = timed_sim(100, |c| {
        c.faults.create_task.reset_after = 1.0;
    })
    .await;
    let mut b = body("kling/ai-avatar-v1-pro", "cut");
    b["callBackUrl"] = json!(url);
    let answer = crate::support::http()
        .post(format!("{}/api/v1/jobs/createTask", sim.base_url()))
        .bearer_auth(crate::support::KEY)
        .json(&b)
        .send()
        .await;
    assert!(answer.is_err(), "the answer was cut: {answer:?}");
    wait_for_callbacks(&sim, 1).await;
    let stats = sim.stats();
    assert_eq!(stats.tasks_created, 1);
    let received = received.lock().unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].1["data"]["taskId"],
        json!(stats.tasks[0].task_id)
    );
    assert_eq!(stats.tasks[0].callbacks, 1);
}
