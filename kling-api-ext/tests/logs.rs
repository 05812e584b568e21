//! The logs, at trace level, hold the request spans and never the API key.
//!
//! A test binary of its own: tracing caches whether a callsite is wanted when
//! a thread first meets it, so a test running beside others (on threads with
//! no subscriber) could see the SDK's events filtered out and fail for nothing.

use std::sync::{Arc, Mutex};

use httpmock::MockServer;
use kling_api::mock::MockServerExt as _;
use kling_api_ext::{Client, TaskId};
use serde_json::{Value, json};

#[allow(dead_code, unused_imports)]
#[path = "it/support.rs"]
mod support;

use support::{KEY, builder, envelope, url_request};

fn assert_clean(text: &str) {
    assert!(!text.contains(KEY), "the key leaked: {text}");
    assert!(
        !text.contains("9f8e7d6c5b4a"),
        "part of the key leaked: {text}"
    );
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn logs_at_trace_level_never_hold_the_key() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let server = MockServer::start_async().await;
            server.mock(|when, then| {
                when.method(httpmock::Method::POST)
                    .path("/api/v1/jobs/createTask");
                then.status(200).body(
                    json!({"code": 200, "msg": "success", "data": {"taskId": "t-9"}}).to_string(),
                );
            });
            server.get_task_details(|_, then| {
                then.into_inner()
                    .status(200)
                    .body(envelope(401, &format!("bad key {KEY}"), Value::Null).to_string());
            });
            let client: Client = builder(&server).preflight(false).build().unwrap();
            client.submit(&url_request()).await.unwrap();
            let _ = client.get(&TaskId::new("t-9").unwrap()).await;
            let _ = client.credits().await;
        });
    });
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("kling_request"),
        "the spans were not logged:\n{logs}"
    );
    assert!(logs.contains("createTask"), "{logs}");
    assert_clean(&logs);
}
