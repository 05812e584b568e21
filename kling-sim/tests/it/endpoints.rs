//! Each endpoint, as the service answers.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{KEY, check_mp4, create_ok, http, record, sim, until_ended};

#[tokio::test]
async fn create_task_returns_task_and_record_ids() {
    let sim = sim(|_| {}).await;
    let response: Value =
        crate::support::create(&sim, &crate::support::body("kling/ai-avatar-v1-pro", ""))
            .await
            .json()
            .await
            .unwrap();
    assert_eq!(
        (response["code"].clone(), response["msg"].clone()),
        (json!(200), json!("success"))
    );
    let id = response["data"]["taskId"].as_str().unwrap();
    assert_eq!(response["data"]["recordId"], json!(id));
    assert_eq!(id.len(), 32);
    assert!(id.chars().all(|c| c.is_ascii_hexdigit()));
    assert_eq!(sim.stats().tasks_created, 1);
}

#[tokio::test]
async fn tasks_go_through_the_documented_states_with_null_fields_until_the_end() {
    // Each state lasts long enough to be seen between two looks 20 ms apart
    // even on a loaded machine (at 150 ms, one was skipped under CI's load).
    let sim = sim(|c| {
        c.lifecycle.waiting_ms = [700, 700];
        c.lifecycle.queuing_ms = [700, 700];
        c.lifecycle.generating_ms = [600, 600];
    })
    .await;
    let id = create_ok(&sim, "states").await;
    let mut seen = Vec::new();
    let mut last = Value::Null;
    for _ in 0..200 {
        last = record(&sim, &id).await;
        assert_eq!(last["code"], json!(200));
        let data = &last["data"];
        let state = data["state"].as_str().unwrap().to_owned();
        if !matches!(state.as_str(), "success" | "fail") {
            for field in ["failCode", "failMsg", "costTime", "completeTime"] {
                assert!(data[field].is_null(), "{field} while {state}: {data}");
            }
            assert_eq!(data["resultJson"], json!(""));
        }
        if seen.last() != Some(&state) {
            seen.push(state.clone());
        }
        if state == "success" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen, ["waiting", "queuing", "generating", "success"]);
    let data = &last["data"];
    assert_eq!(data["taskId"], json!(id));
    assert_eq!(data["model"], json!("kling/ai-avatar-v1-pro"));
    let param: Value = serde_json::from_str(data["param"].as_str().unwrap()).unwrap();
    assert_eq!(param["input"]["prompt"], json!("states"));
    // resultJson is a JSON-encoded string.
    let result: Value = serde_json::from_str(data["resultJson"].as_str().unwrap()).unwrap();
    let url = result["resultUrls"][0].as_str().unwrap();
    assert_eq!(url, format!("{}/results/{id}.mp4", sim.base_url()));
    // costTime in seconds (2 s here), times in Unix ms.
    assert_eq!(data["costTime"], json!(2));
    let (created, completed) = (
        data["createTime"].as_i64().unwrap(),
        data["completeTime"].as_i64().unwrap(),
    );
    assert!(created > 1_700_000_000_000);
    assert_eq!(completed - created, 2000);
}

#[tokio::test]
async fn record_info_for_unknown_or_missing_ids() {
    let sim = sim(|_| {}).await;
    let unknown = record(&sim, "0123456789abcdef0123456789abcdef").await;
    assert_eq!(
        unknown,
        json!({"code": 422, "msg": "recordInfo is null", "data": null})
    );
    let missing: Value = http()
        .get(format!("{}/api/v1/jobs/recordInfo", sim.base_url()))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(missing["code"], json!(400));
    assert_eq!(missing["msg"], json!("taskId parameter is required"));
}

#[tokio::test]
async fn credits_fall_by_the_price_per_generated_second() {
    let sim = sim(|c| c.credits = 1000.5).await;
    let credit = |sim: &kling_sim::Simulator| {
        let url = format!("{}/api/v1/chat/credit", sim.base_url());
        async move {
            http()
                .get(url)
                .bearer_auth(KEY)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        credit(&sim).await,
        json!({"code": 200, "msg": "success", "data": 1000.5})
    );
    let id = create_ok(&sim, "pay").await;
    until_ended(&sim, &id).await;
    // 5 s (default video length, for audio it did not store) × 16 credits.
    assert_eq!(credit(&sim).await["data"], json!(920.5));
}

#[tokio::test]
async fn download_url_gives_temporary_links_for_its_own_files_only() {
    let sim = sim(|_| {}).await;
    let ask = |url: String| {
        let endpoint = format!("{}/api/v1/common/download-url", sim.base_url());
        async move {
            http()
                .post(endpoint)
                .bearer_auth(KEY)
                .json(&json!({"url": url}))
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let own = format!("{}/results/abc.mp4", sim.base_url());
    let answer = ask(own.clone()).await;
    assert_eq!(answer["code"], json!(200));
    assert!(
        answer["data"]
            .as_str()
            .unwrap()
            .starts_with(&format!("{own}?expires="))
    );
    assert_eq!(
        ask("https://example.com/x.mp4".into()).await,
        json!({"code": 422, "msg": "url is wrong", "data": null})
    );
}

#[tokio::test]
async fn result_videos_are_real_mp4_files_served_with_type_and_length() {
    let sim = sim(|_| {}).await;
    let id = create_ok(&sim, "video").await;
    let early = http()
        .get(format!("{}/results/{id}.mp4", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(early.status(), 404, "no video before the task ends");
    until_ended(&sim, &id).await;
    let response = http()
        .get(format!("{}/results/{id}.mp4", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "video/mp4");
    assert_eq!(
        response.headers()["content-length"],
        kling_sim::RESULT_VIDEO.len().to_string().as_str()
    );
    let bytes = response.bytes().await.unwrap();
    assert_eq!(bytes.as_ref(), kling_sim::RESULT_VIDEO);
    let boxes = check_mp4(&bytes).unwrap();
    assert_eq!(boxes.first().map(String::as_str), Some("ftyp"));
    // A ranged request gets 206 and the slice.
    let ranged = http()
        .get(format!("{}/results/{id}.mp4", sim.base_url()))
        .header("range", "bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), 206);
    assert_eq!(
        ranged.headers()["content-range"],
        format!("bytes 10-19/{}", bytes.len()).as_str()
    );
    assert_eq!(
        ranged.bytes().await.unwrap().as_ref(),
        &kling_sim::RESULT_VIDEO[10..20]
    );
}

#[test]
fn the_mp4_checker_rejects_broken_files() {
    assert!(check_mp4(kling_sim::RESULT_VIDEO).is_ok());
    assert!(check_mp4(&kling_sim::RESULT_VIDEO[..kling_sim::RESULT_VIDEO.len() - 10]).is_err());
    assert!(check_mp4(b"\0\0\0\x08free").is_err());
}

#[tokio::test]
async fn uploads_store_files_and_serve_them_back() {
    let sim = sim(|_| {}).await;
    let png = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/assets/face.png"
    ))
    .unwrap();
    let upload = |endpoint: &str| format!("{}/api/{endpoint}", sim.upload_base_url());

    // Stream (multipart).
    let form = reqwest::multipart::Form::new()
        .text("uploadPath", "images/tests")
        .text("fileName", "face.png")
        .part(
            "file",
            reqwest::multipart::Part::bytes(png.clone())
                .file_name("face.png")
                .mime_str("image/png")
                .unwrap(),
        );
    let answer: Value = http()
        .post(upload("file-stream-upload"))
        .bearer_auth(KEY)
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (answer["success"].clone(), answer["code"].clone()),
        (json!(true), json!(200)),
        "{answer}"
    );
    let data = &answer["data"];
    assert_eq!(data["fileName"], json!("face.png"));
    assert_eq!(data["filePath"], json!("kieai/1/images/tests/face.png"));
    assert_eq!(data["fileSize"], json!(png.len()));
    assert_eq!(data["mimeType"], json!("image/png"));
    let url = data["downloadUrl"].as_str().unwrap();
    let served = http().get(url).send().await.unwrap();
    assert_eq!(served.headers()["content-type"], "image/png");
    assert_eq!(
        served.headers()["content-length"],
        png.len().to_string().as_str()
    );
    assert_eq!(served.bytes().await.unwrap().as_ref(), png.as_slice());

    // Base64, as a data URL and raw.
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(&png);
    for data in [format!("data:image/png;base64,{encoded}"), encoded.clone()] {
        let answer: Value = http()
            .post(upload("file-base64-upload"))
            .bearer_auth(KEY)
            .json(&json!({"base64Data": data, "uploadPath": "images/b64"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(answer["code"], json!(200), "{answer}");
        let got = http()
            .get(answer["data"]["downloadUrl"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(got.as_ref(), png.as_slice());
    }
    let bad: Value = http()
        .post(upload("file-base64-upload"))
        .bearer_auth(KEY)
        .json(&json!({"base64Data": "***", "uploadPath": "images/b64"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        bad,
        json!({"success": false, "code": 400, "msg": "Base64 decoding failed: Invalid Base64 format"})
    );
    let no_path: Value = http()
        .post(upload("file-base64-upload"))
        .bearer_auth(KEY)
        .json(&json!({"base64Data": encoded}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        no_path["msg"],
        json!("Missing required parameter: uploadPath")
    );
    assert_eq!(sim.stats().requests_to("uploadBase64"), 4);
}

#[tokio::test]
async fn url_uploads_fetch_loopback_only() {
    let sim = sim(|_| {}).await;
    // A file served on loopback (by the simulator itself) is fetched.
    let id = create_ok(&sim, "x").await;
    until_ended(&sim, &id).await;
    let answer: Value = http()
        .post(format!("{}/api/file-url-upload", sim.upload_base_url()))
        .bearer_auth(KEY)
        .json(&json!({"fileUrl": format!("{}/results/{id}.mp4", sim.base_url()), "uploadPath": "videos"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        answer["data"]["fileSize"],
        json!(kling_sim::RESULT_VIDEO.len())
    );
    // Anything else is recorded, not fetched.
    let answer: Value = http()
        .post(format!("{}/api/file-url-upload", sim.upload_base_url()))
        .bearer_auth(KEY)
        .json(&json!({"fileUrl": "https://example.com/face.png", "uploadPath": "images"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["code"], json!(200));
    assert_eq!(answer["data"]["fileSize"], json!(0));
    let served = http()
        .get(answer["data"]["downloadUrl"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(served.status(), 404);
    assert!(
        served
            .text()
            .await
            .unwrap()
            .contains("does not fetch URLs off loopback")
    );
}

#[tokio::test]
async fn stats_over_http_match_the_library_view() {
    let sim = sim(|_| {}).await;
    let id = create_ok(&sim, "stats").await;
    until_ended(&sim, &id).await;
    let over_http: Value = http()
        .get(format!("{}/_sim/stats", sim.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let stats = sim.stats();
    assert_eq!(over_http["tasksCreated"], json!(1));
    assert_eq!(
        over_http["requests"]["createTask"],
        json!(stats.requests_to("createTask"))
    );
    assert_eq!(over_http["tasks"][0]["taskId"], json!(id));
    let task = &stats.tasks[0];
    assert!(task.polls >= 1 && task.ended);
    assert!(task.detection_lag_ms.is_some());
}

#[tokio::test]
async fn it_listens_on_loopback_only() {
    let sim = sim(|_| {}).await;
    assert!(sim.addr().ip().is_loopback());
    assert!(sim.base_url().starts_with("http://127.0.0.1:"));
}

#[tokio::test]
async fn dropping_it_stops_the_server() {
    let sim = sim(|_| {}).await;
    let url = format!("{}/api/v1/chat/credit", sim.base_url());
    assert!(http().get(&url).bearer_auth(KEY).send().await.is_ok());
    drop(sim);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(http().get(&url).bearer_auth(KEY).send().await.is_err());
}

#[test]
fn the_binary_prints_its_urls_and_serves() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sim.json");
    std::fs::write(&config, r#"{"apiKeys": ["from-file"], "credits": 42}"#).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_kling-sim"))
        .args(["--port", "0", "--config"])
        .arg(&config)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    for _ in 0..4 {
        printed.push(lines.next().unwrap().unwrap());
    }
    let base = printed
        .iter()
        .find_map(|l| l.strip_prefix("APIKLEY_BASE_URL="))
        .unwrap()
        .to_owned();
    assert!(base.starts_with("http://127.0.0.1:"), "{printed:?}");
    assert!(
        printed.iter().any(|l| l == "APIKLEY_API_KEY=from-file"),
        "{printed:?}"
    );
    assert!(
        printed
            .iter()
            .any(|l| l.ends_with("/file-upload") && l.starts_with("APIKLEY_UPLOAD_BASE_URL="))
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let credit: Value = runtime.block_on(async {
        http()
            .get(format!("{base}/api/v1/chat/credit"))
            .bearer_auth("from-file")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(credit["data"], json!(42.0));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn a_bad_config_file_is_refused_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sim.json");
    std::fs::write(&config, r#"{"apiKeys": ["k"], "noSuchSetting": 1}"#).unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_kling-sim"))
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unknown field `noSuchSetting`"));
}

/// A loopback server that answers every request with `answer` and counts them.
async fn canned_server(answer: String) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (url, hits)
}

#[tokio::test]
async fn url_uploads_do_not_follow_redirects() {
    // The first URL is on loopback; where it redirects is not checked, so the
    // simulator must not go there. The target is a loopback server too, so
    // that this test itself never sends anything off the machine.
    let (target, target_hits) =
        canned_server("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi".into()).await;
    let (redirector, redirector_hits) = canned_server(format!(
        "HTTP/1.1 302 Found\r\nlocation: {target}/elsewhere.png\r\ncontent-length: 0\r\n\r\n"
    ))
    .await;
    let sim = sim(|_| {}).await;
    let answer: Value = http()
        .post(format!("{}/api/file-url-upload", sim.upload_base_url()))
        .bearer_auth(KEY)
        .json(&json!({"fileUrl": format!("{redirector}/face.png"), "uploadPath": "images"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(redirector_hits.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(target_hits.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert_eq!(answer["code"], json!(400), "{answer}");
    assert!(answer["msg"].as_str().unwrap().contains("302"), "{answer}");
}
