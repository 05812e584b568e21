use std::time::Duration;

use kling_sim::{SimConfig, Simulator};
use serde_json::{Value, json};

pub const KEY: &str = "sim-test-key";

/// Quick tasks: waiting 20-40 ms, queuing 20-40 ms, generating 60-100 ms.
pub fn quick(config: &mut SimConfig) {
    config.lifecycle.waiting_ms = [20, 40];
    config.lifecycle.queuing_ms = [20, 40];
    config.lifecycle.generating_ms = [60, 100];
}

pub async fn sim(change: impl FnOnce(&mut SimConfig)) -> Simulator {
    Simulator::builder()
        .api_key(KEY)
        .with(|c| {
            quick(c);
            change(c);
        })
        .start()
        .await
        .unwrap()
}

pub fn http() -> reqwest::Client {
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

/// Checks an MP4's box structure: top-level boxes tile the file exactly, with
/// `ftyp` first, then `moov` (holding `mvhd` and at least one `trak`) and `mdat`.
pub fn check_mp4(bytes: &[u8]) -> Result<Vec<String>, String> {
    fn boxes(data: &[u8]) -> Result<Vec<(String, &[u8])>, String> {
        let mut out = Vec::new();
        let mut pos = 0usize;
        while pos < data.len() {
            if pos + 8 > data.len() {
                return Err(format!("truncated box header at {pos}"));
            }
            let size32 = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as u64;
            let kind = String::from_utf8_lossy(&data[pos + 4..pos + 8]).into_owned();
            let (size, header) = match size32 {
                1 => (
                    u64::from_be_bytes(data[pos + 8..pos + 16].try_into().unwrap()),
                    16,
                ),
                0 => ((data.len() - pos) as u64, 8),
                n => (n, 8),
            };
            let end = pos as u64 + size;
            if size < header || end > data.len() as u64 {
                return Err(format!("box {kind} at {pos} has a bad size {size}"));
            }
            out.push((kind, &data[pos + header as usize..end as usize]));
            pos = end as usize;
        }
        Ok(out)
    }
    let top = boxes(bytes)?;
    let names: Vec<String> = top.iter().map(|(k, _)| k.clone()).collect();
    if names.first().map(String::as_str) != Some("ftyp") {
        return Err(format!("first box is not ftyp: {names:?}"));
    }
    let moov = top.iter().find(|(k, _)| k == "moov").ok_or("no moov")?.1;
    let inner: Vec<String> = boxes(moov)?.into_iter().map(|(k, _)| k).collect();
    if !inner.contains(&"mvhd".to_owned()) || !inner.contains(&"trak".to_owned()) {
        return Err(format!("moov lacks mvhd or trak: {inner:?}"));
    }
    if !names.contains(&"mdat".to_owned()) {
        return Err("no mdat".into());
    }
    Ok(names)
}
