//! What the simulator accepts in size, as the service does: uploads up to
//! `maxUploadBytes` on all three routes, JSON bodies up to a MiB, anything
//! larger answered in the envelope; and a header-read timeout.

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::support::{KEY, http, sim};

fn big(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

async fn stream_upload(sim: &kling_sim::Simulator, bytes: Vec<u8>) -> (u16, Value) {
    let form = reqwest::multipart::Form::new()
        .text("uploadPath", "audio/tests")
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes)
                .file_name("voice.wav")
                .mime_str("audio/wav")
                .unwrap(),
        );
    let response = http()
        .post(format!("{}/api/file-stream-upload", sim.upload_base_url()))
        .bearer_auth(KEY)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, body)
}

#[tokio::test]
async fn uploads_past_axums_two_mib_default_are_taken_on_every_route() {
    let sim = sim(|_| {}).await;
    // A 30 s voice clip is about 3 MB; the service takes up to 10 MB.
    for len in [3_000_000, 10_000_000] {
        let (status, answer) = stream_upload(&sim, big(len)).await;
        assert_eq!(
            (status, answer["code"].clone()),
            (200, json!(200)),
            "{len}: {answer}"
        );
        assert_eq!(answer["data"]["fileSize"], json!(len));
    }
    // base64 carries 4/3 of the file.
    let encoded = base64::engine::general_purpose::STANDARD.encode(big(5_000_000));
    let answer: Value = http()
        .post(format!("{}/api/file-base64-upload", sim.upload_base_url()))
        .bearer_auth(KEY)
        .json(&json!({"base64Data": format!("data:audio/wav;base64,{encoded}"), "uploadPath": "audio/tests"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["code"], json!(200), "{answer}");
    assert_eq!(answer["data"]["fileSize"], json!(5_000_000));
}

#[tokio::test]
async fn too_large_is_said_in_the_envelope_not_a_text_413() {
    let sim = sim(|c| c.max_upload_bytes = 1_000_000).await;
    // Past the limit by a little (the handler's own count) and by a lot (the
    // body limit): the same envelope.
    for len in [1_000_001, 4_000_000] {
        let (status, answer) = stream_upload(&sim, big(len)).await;
        assert_eq!(status, 200, "{len}");
        assert_eq!(
            (answer["success"].clone(), answer["code"].clone()),
            (json!(false), json!(400)),
            "{len}: {answer}"
        );
        assert!(
            answer["msg"]
                .as_str()
                .unwrap()
                .contains("exceeds the limit of 1000000 bytes"),
            "{answer}"
        );
    }
    let encoded = base64::engine::general_purpose::STANDARD.encode(big(3_000_000));
    let answer: Value = http()
        .post(format!("{}/api/file-base64-upload", sim.upload_base_url()))
        .bearer_auth(KEY)
        .json(&json!({"base64Data": encoded, "uploadPath": "audio/tests"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["code"], json!(400), "{answer}");
    assert!(
        answer["msg"]
            .as_str()
            .unwrap()
            .contains("exceeds the limit")
    );

    // A createTask body over a MiB.
    let prompt = "x".repeat(2 * 1024 * 1024);
    let response = http()
        .post(format!("{}/api/v1/jobs/createTask", sim.base_url()))
        .bearer_auth(KEY)
        .json(&json!({"model": "kling/ai-avatar-v1-pro", "input": {"image_url": "a", "audio_url": "b", "prompt": prompt}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["code"], json!(413), "{answer}");
    assert_eq!(sim.stats().tasks_created, 0);
}

#[tokio::test]
async fn a_request_whose_headers_never_end_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let sim = sim(|_| {}).await;
    let mut socket = tokio::net::TcpStream::connect(sim.addr()).await.unwrap();
    socket
        .write_all(b"GET /api/v1/chat/credit HTTP/1.1\r\nhost: x\r\n")
        .await
        .unwrap();
    let mut rest = Vec::new();
    // Closed by the server (a 408 or a bare close) within its 10 s, not held.
    let read = tokio::time::timeout(
        kling_sim::HEADER_READ_TIMEOUT + Duration::from_secs(20),
        socket.read_to_end(&mut rest),
    )
    .await;
    assert!(read.is_ok(), "the connection was held open");
}
