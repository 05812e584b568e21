//! Fixtures, a client pointed at a mock server, and canned answers.

use std::path::{Path, PathBuf};
use std::time::Duration;

use httpmock::MockServer;
use kling_api_ext::{Client, ClientBuilder, RetryPolicy};
use serde_json::{Value, json};

/// A key distinctive enough to grep for in any output.
pub const KEY: &str = "sk-test-9f8e7d6c5b4a-SECRET";

pub fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

pub fn asset(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/assets")
        .join(name)
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

pub fn envelope(code: i64, msg: &str, data: Value) -> Value {
    json!({"code": code, "msg": msg, "data": data})
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

/// A 127.0.0.1 port with nothing listening.
pub fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    port
}

/// A server that accepts connections, reads the request, and closes without
/// answering: the client cannot know whether the request was acted on.
pub async fn resetting_server() -> (String, tokio::task::JoinHandle<()>) {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let handle = tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut buf = [0u8; 4096];
            let _ = socket.read(&mut buf).await;
            drop(socket);
        }
    });
    (url, handle)
}

/// One canned HTTP answer.
#[derive(Clone, Debug)]
pub struct Canned {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Canned {
    pub fn json(status: u16, body: &Value) -> Canned {
        Canned {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string(),
        }
    }
    pub fn html(status: u16) -> Canned {
        Canned {
            status,
            headers: vec![("content-type".into(), "text/html".into())],
            body: "<!DOCTYPE html><html><body>cloudflare error</body></html>".into(),
        }
    }
    pub fn header(mut self, name: &str, value: &str) -> Canned {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// A request the scripted server received.
#[derive(Clone, Debug)]
#[allow(dead_code)] // head and body are there for debugging failed tests
pub struct Received {
    pub at: std::time::Instant,
    pub head: String,
    pub body: Vec<u8>,
}

/// An HTTP/1.1 server on 127.0.0.1 that answers requests in order with a script
/// (the last answer repeats), one request per connection. httpmock answers every
/// matching request the same way; sequences (429 then 200) need this.
pub struct ScriptedServer {
    pub url: String,
    pub received: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl ScriptedServer {
    pub async fn start(script: Vec<Canned>) -> ScriptedServer {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        assert!(!script.is_empty());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = received.clone();
        let task = tokio::spawn(async move {
            let mut next = 0usize;
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                // Read the head, then Content-Length bytes of body.
                let (head, mut body) = loop {
                    let n = match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => break (String::new(), Vec::new()),
                        Ok(n) => n,
                    };
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break (
                            String::from_utf8_lossy(&buf[..end]).into_owned(),
                            buf[end + 4..].to_vec(),
                        );
                    }
                };
                if head.is_empty() {
                    continue;
                }
                let length = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                while body.len() < length {
                    match socket.read(&mut chunk).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => body.extend_from_slice(&chunk[..n]),
                    }
                }
                log.lock().unwrap().push(Received {
                    at: std::time::Instant::now(),
                    head,
                    body,
                });
                let canned = &script[next.min(script.len() - 1)];
                next += 1;
                let mut out = format!(
                    "HTTP/1.1 {} X\r\ncontent-length: {}\r\nconnection: close\r\n",
                    canned.status,
                    canned.body.len()
                );
                for (k, v) in &canned.headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("\r\n");
                out.push_str(&canned.body);
                let _ = socket.write_all(out.as_bytes()).await;
                let _ = socket.shutdown().await;
            }
        });
        ScriptedServer {
            url,
            received,
            _task: task,
        }
    }

    pub fn hits(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    pub fn client(&self) -> Client {
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

/// A PCM WAV of `seconds` of silence at 8 kHz mono.
pub fn wav(seconds: f64) -> Vec<u8> {
    let samples = (8000.0 * seconds) as u32;
    let data_len = samples * 2;
    let mut out = Vec::new();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&8000u32.to_le_bytes());
    out.extend_from_slice(&16000u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out.resize(out.len() + data_len as usize, 0);
    out
}

/// The first bytes of a PNG of the given size (enough for type and dimensions).
pub fn png_head(width: u32, height: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR".to_vec();
    out.extend_from_slice(&width.to_be_bytes());
    out.extend_from_slice(&height.to_be_bytes());
    out.extend_from_slice(&[8, 2, 0, 0, 0, 0, 0, 0, 0]);
    out
}
