//! Odd answers from the service: one optional field of an unexpected type
//! must not make a task unreadable; an answer that truly cannot be read is
//! said as such (never "not visible"), and whatever it quotes is shown
//! without the presigned queries it may carry.

use httpmock::{Method, MockServer};
use serde_json::{Value, json};

use crate::support::{kling, stderr};

const KEY: &str = "sk-answers-0c4d8e-SECRET";
const SIGNATURE: &str = "SIGd41d8cd98f00b204";

/// A presigned input URL, as the service echoes it in `param`.
fn param() -> String {
    json!({"model": "kling/ai-avatar-v1-pro", "input": {
        "image_url": format!("https://bucket.example.com/face.png?X-Amz-Signature={SIGNATURE}&X-Amz-Expires=600"),
        "audio_url": "https://bucket.example.com/hello.wav", "prompt": "hi"}})
    .to_string()
}

fn kling_at(server: &MockServer) -> assert_cmd::Command {
    let mut cmd = kling();
    cmd.env("APIKLEY_API_KEY", KEY).args([
        "--base-url",
        &server.base_url(),
        "--upload-base-url",
        &server.base_url(),
    ]);
    cmd
}

fn all_text(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned() + &stderr(output)
}

#[test]
fn a_fractional_progress_does_not_stop_the_wait_from_ending_with_the_video() {
    let server = MockServer::start();
    let video = kling_sim::RESULT_VIDEO;
    server.mock(|when, then| {
        when.method(Method::GET).path("/v/t1.mp4");
        then.status(200)
            .header("content-type", "video/mp4")
            .body(video);
    });
    let result = json!({"resultUrls": [format!("{}/v/t1.mp4", server.base_url())]}).to_string();
    server.mock(|when, then| {
        when.method(Method::GET).path("/api/v1/jobs/recordInfo");
        then.status(200)
            .json_body(json!({"code": 200, "msg": "success", "data": {
            "taskId": "t1", "model": "kling/ai-avatar-v1-pro", "state": "success",
            "param": param(), "resultJson": result, "progress": 12.5, "costTime": "127",
            "createTime": 1_777_540_425_139_i64, "completeTime": 1_777_540_552_331_i64}}));
    });
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("t1.mp4");
    let output = kling_at(&server)
        .args(["--json", "wait", "t1", "--timeout", "20s", "--out"])
        .arg(&target)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", all_text(&output));
    assert_eq!(std::fs::read(&target).unwrap(), video);
    // `kling status` reads the same answer, its state and result.
    let status = kling_at(&server)
        .args(["--json", "status", "t1"])
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", all_text(&status));
    let doc: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(doc["state"], "success", "{doc}");
    assert_eq!(doc["progress"], 12, "{doc}");
}

#[test]
fn unreadable_answers_are_said_as_such_without_their_presigned_queries() {
    let server = MockServer::start();
    // A JSON answer whose state cannot be read (a number), quoting the
    // presigned input URL, and a proxy's HTML page quoting one.
    let json_answer = json!({"code": 200, "msg": "success", "data": {
        "taskId": "t1", "state": 3, "param": param(), "progress": 12.5}});
    let html = format!(
        "<html><body>502 Bad Gateway <a href=\"https://bucket.example.com/face.png?X-Amz-Signature={SIGNATURE}\">retry</a></body></html>"
    );
    for (name, body, content_type) in [
        ("json", json_answer.to_string(), "application/json"),
        ("html", html, "text/html"),
    ] {
        let mut mock = server.mock(|when, then| {
            when.method(Method::GET).path("/api/v1/jobs/recordInfo");
            then.status(200)
                .header("content-type", content_type)
                .body(body.clone());
        });
        // Each `status` retries an unreadable answer for ~8 s: one in
        // each output form per kind of answer.
        let runs: [&[&str]; 2] = if name == "json" {
            [
                &["--json", "status", "t1"],
                &["-vv", "--no-json", "wait", "t1", "--timeout", "2s"],
            ]
        } else {
            [
                &["-vv", "--no-json", "status", "t1"],
                &["--json", "wait", "t1", "--timeout", "2s"],
            ]
        };
        for args in runs {
            let output = kling_at(&server).args(args).output().unwrap();
            let text = all_text(&output);
            assert!(!output.status.success(), "{name} {args:?}: {text}");
            assert!(!text.contains(SIGNATURE), "{name} {args:?}: {text}");
            assert!(!text.contains(KEY), "{name} {args:?}: {text}");
            assert!(
                text.contains("[query hidden]") || !text.contains("bucket.example.com/face.png?"),
                "{name} {args:?}: {text}"
            );
            if args.contains(&"wait") {
                assert_eq!(output.status.code(), Some(5), "{name} {args:?}: {text}");
                assert!(
                    text.contains("unreadable answers, last:"),
                    "{name} {args:?}: {text}"
                );
                assert!(!text.contains("never showed"), "{name} {args:?}: {text}");
                assert!(!text.contains("not visible"), "{name} {args:?}: {text}");
            }
        }
        mock.delete();
    }
}
