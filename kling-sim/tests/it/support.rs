use std::time::Duration;

use kling_sim::{SimConfig, Simulator};
use serde_json::{Value, json};

pub const KEY: &str = "sim-test-key";

pub async fn sim(change: impl FnOnce(&mut SimConfig)) -> Simulator {
    kling_testkit::sim(KEY, change).await
}

pub fn http() -> reqwest::Client {
    // ring on purpose (no C toolchain, a faster build); rustls 0.23.48
    // deprecates it only for lacking post-quantum key exchange.
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .user_agent("sim-tests/1")
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

pub fn body(model: &str, prompt: &str) -> Value {
    json!({
        "model": model,
        "input": {"image_url": "https://cdn.example.com/face.png", "audio_url": "https://cdn.example.com/a.mp3", "prompt": prompt}
    })
}

pub async fn create(sim: &Simulator, body: &Value) -> reqwest::Response {
    http()
        .post(format!("{}/api/v1/jobs/createTask", sim.base_url()))
        .bearer_auth(KEY)
        .json(body)
        .send()
        .await
        .unwrap()
}

pub async fn create_ok(sim: &Simulator, prompt: &str) -> String {
    let response: Value = create(sim, &body("kling/ai-avatar-v1-pro", prompt))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(response["code"], json!(200), "{response}");
    response["data"]["taskId"].as_str().unwrap().to_owned()
}

pub async fn record(sim: &Simulator, task_id: &str) -> Value {
    http()
        .get(format!("{}/api/v1/jobs/recordInfo", sim.base_url()))
        .query(&[("taskId", task_id)])
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Polls until the task ends (at most 5 s).
pub async fn until_ended(sim: &Simulator, task_id: &str) -> Value {
    for _ in 0..500 {
        let r = record(sim, task_id).await;
        if matches!(r["data"]["state"].as_str(), Some("success" | "fail")) {
            return r;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("task {task_id} did not end");
}

pub use kling_testkit::check_mp4;
