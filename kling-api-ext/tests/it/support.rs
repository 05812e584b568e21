//! Fixtures, a client pointed at a mock server, and canned answers.

use std::path::{Path, PathBuf};
use std::time::Duration;

use httpmock::MockServer;
use kling_api_ext::{Client, ClientBuilder, RetryPolicy};
use serde_json::{Value, json};

/// A key distinctive enough to grep for in any output.
pub const KEY: &str = "sk-test-9f8e7d6c5b4a-SECRET";

pub fn data(name: &str) -> PathBuf {
    kling_testkit::data(name)
}

pub fn asset(name: &str) -> PathBuf {
    kling_testkit::asset(name)
}

/// Copies a fixture into `dir` under `name`.
pub fn copy_as(src: &Path, dir: &Path, name: &str) -> PathBuf {
    let dest = dir.join(name);
    std::fs::copy(src, &dest).unwrap();
    dest
}

/// Fast retries so tests do not wait.
pub fn fast_retry() -> RetryPolicy {
    RetryPolicy::default()
        .max_attempts(4)
        .initial_delay(Duration::from_millis(10))
        .max_delay(Duration::from_millis(40))
        .time_budget(Duration::from_secs(10))
}

pub fn builder(server: &MockServer) -> ClientBuilder {
    Client::builder()
        .api_key(KEY)
        .base_url(server.base_url())
        .upload_base_url(server.base_url())
        .retry(fast_retry())
        .request_timeout(Duration::from_secs(5))
}

pub fn client(server: &MockServer) -> Client {
    builder(server).build().unwrap()
}

pub fn created(task_id: &str) -> Value {
    envelope(
        200,
        "success",
        json!({"taskId": task_id, "recordId": task_id}),
    )
}

pub fn uploaded(url: &str) -> Value {
    json!({"success": true, "code": 200, "msg": "File uploaded successfully", "data": {
        "success": true, "fileName": "x.png", "filePath": "kieai/1/x.png", "downloadUrl": url,
        "fileSize": 70, "mimeType": "image/png", "uploadedAt": "2026-04-16T07:19:12.309Z"}})
}

pub fn record(task_id: &str, state: &str) -> Value {
    let mut data = json!({
        "taskId": task_id, "model": "kling/ai-avatar-v1-pro", "state": state,
        "param": "{}", "resultJson": "", "failCode": null, "failMsg": null,
        "costTime": null, "completeTime": null, "createTime": 1_777_540_425_139_i64
    });
    match state {
        "success" => {
            data["resultJson"] = json!(format!(
                "{{\"resultUrls\":[\"https://files.example.com/{task_id}.mp4\"]}}"
            ));
            data["costTime"] = json!(127);
            data["completeTime"] = json!(1_777_540_552_331_i64);
        }
        "fail" => {
            data["failCode"] = json!("422");
            data["failMsg"] = json!("face not detected");
        }
        _ => {}
    }
    envelope(200, "success", data)
}

/// A request with URL inputs (nothing to upload).
pub fn url_request() -> kling_api_ext::AvatarRequest {
    kling_api_ext::AvatarRequest::builder()
        .image("https://cdn.example.com/face.png")
        .audio("https://cdn.example.com/hello.mp3")
        .prompt("hello")
        .build()
        .unwrap()
}

pub use kling_testkit::{
    Canned, ScriptedServer, closed_port, envelope, png_head, resetting_server, wav,
};

/// A client of a [`ScriptedServer`], with fast retries.
pub trait ScriptedClient {
    fn client(&self) -> Client;
}

impl ScriptedClient for ScriptedServer {
    fn client(&self) -> Client {
        Client::builder()
            .api_key(KEY)
            .base_url(&self.url)
            .upload_base_url(&self.url)
            .retry(fast_retry())
            .request_timeout(Duration::from_secs(5))
            .build()
            .unwrap()
    }
}
