//! Each fault kind, switched on with probability 1.

use std::time::{Duration, Instant};

use kling_sim::SimConfig;
use serde_json::{Value, json};

use crate::support::{KEY, body, create, create_ok, http, record, sim, until_ended};

async fn create_err(sim: &kling_sim::Simulator) -> reqwest::Error {
    http()
        .post(format!("{}/api/v1/jobs/createTask", sim.base_url()))
        .bearer_auth(KEY)
        .json(&body("kling/ai-avatar-v1-pro", "faulty"))
        .send()
        .await
        .expect_err("the connection should have been cut")
}

#[tokio::test]
async fn reset_before_creates_nothing() {
    let sim = sim(|c| c.faults.create_task.reset_before = 1.0).await;
    let error = create_err(&sim).await;
    assert!(!error.is_connect(), "connected, then cut: {error:?}");
    let stats = sim.stats();
    assert_eq!(stats.tasks_created, 0);
    assert_eq!(stats.faults["createTask.resetBefore"], 1);
}

#[tokio::test]
async fn reset_after_creates_the_task_the_client_never_hears_of() {
    let sim = sim(|c| c.faults.create_task.reset_after = 1.0).await;
    create_err(&sim).await;
    assert_eq!(sim.stats().tasks_created, 1);
}

#[tokio::test]
async fn slow_after_answers_late() {
    let sim = sim(|c| {
        c.faults.create_task.slow_after = 1.0;
        c.faults.slow_ms = 400;
    })
    .await;
    let started = Instant::now();
    let answer: Value = create(&sim, &body("kling/ai-avatar-v1-pro", "slow"))
        .await
        .json()
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(400));
    assert_eq!(answer["code"], json!(200));
    assert_eq!(sim.stats().tasks_created, 1);
}

#[tokio::test]
async fn proxy_errors_are_html_pages() {
    for (status, set) in [(502u16, 0), (520, 1)] {
        let sim = sim(|c: &mut SimConfig| {
            if set == 0 {
                c.faults.record_info.html502 = 1.0;
            } else {
                c.faults.record_info.html520 = 1.0;
            }
        })
        .await;
        let response = http()
            .get(format!(
                "{}/api/v1/jobs/recordInfo?taskId=x",
                sim.base_url()
            ))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
        let page = response.text().await.unwrap();
        assert!(
            page.starts_with("<!DOCTYPE html>") && page.contains(&format!("Error code {status}")),
            "{page}"
        );
    }
}

#[tokio::test]
async fn envelope_500_and_455_create_nothing() {
    for (code, which) in [(500, "envelope500"), (455, "envelope455")] {
        let sim = sim(|c| {
            if which == "envelope500" {
                c.faults.create_task.envelope500 = 1.0;
            } else {
                c.faults.create_task.envelope455 = 1.0;
            }
        })
        .await;
        let response = create(&sim, &body("kling/ai-avatar-v1-pro", "x")).await;
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["code"], json!(code));
        assert_eq!(sim.stats().tasks_created, 0);
    }
}

#[tokio::test]
async fn rate_limit_storms_with_and_without_retry_after() {
    for with_header in [true, false] {
        let sim = sim(|c| {
            c.faults.record_info.rate_limited = 1.0;
            c.faults.retry_after_on_fault = with_header;
        })
        .await;
        let response = http()
            .get(format!(
                "{}/api/v1/jobs/recordInfo?taskId=x",
                sim.base_url()
            ))
            .bearer_auth(KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers().contains_key("retry-after"), with_header);
    }
}

#[tokio::test]
async fn an_unknown_state_for_a_while() {
    // Windows of a second or more: the first look lands inside, the second
    // after, however loaded the machine.
    let sim = sim(|c| {
        c.faults.unknown_state = 1.0;
        c.faults.unknown_state_ms = 1000;
        c.lifecycle.waiting_ms = [10_000, 10_000];
    })
    .await;
    let id = create_ok(&sim, "odd").await;
    assert_eq!(
        record(&sim, &id).await["data"]["state"],
        json!("pending_review")
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(record(&sim, &id).await["data"]["state"], json!("waiting"));
}

#[tokio::test]
async fn record_is_null_for_a_window_after_creation() {
    let sim = sim(|c| {
        c.faults.null_record = 1.0;
        c.faults.null_record_ms = 1000;
    })
    .await;
    let id = create_ok(&sim, "invisible").await;
    assert_eq!(
        record(&sim, &id).await,
        json!({"code": 422, "msg": "recordInfo is null", "data": null})
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(record(&sim, &id).await["code"], json!(200));
}

#[tokio::test]
async fn message_instead_of_msg() {
    let sim = sim(|c| c.faults.record_info.message_alias = 1.0).await;
    let answer = record(&sim, "nope").await;
    assert_eq!(
        answer,
        json!({"code": 422, "message": "recordInfo is null", "data": null})
    );
}

#[tokio::test]
async fn fail_code_as_an_integer() {
    let sim = sim(|c| {
        c.faults.fail_code_int = 1.0;
        c.lifecycle.fail_fraction = 1.0;
    })
    .await;
    let id = create_ok(&sim, "int").await;
    let data = until_ended(&sim, &id).await["data"].clone();
    assert!(data["failCode"].is_i64(), "{data}");
}

#[tokio::test]
async fn a_download_cut_short_of_its_content_length() {
    let sim = sim(|c| c.faults.download.truncate = 1.0).await;
    let id = create_ok(&sim, "cut").await;
    until_ended(&sim, &id).await;
    let response = http()
        .get(format!("{}/results/{id}.mp4", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.headers()["content-length"],
        kling_sim::RESULT_VIDEO.len().to_string().as_str()
    );
    assert!(response.bytes().await.is_err(), "the body must end early");
}

#[tokio::test]
async fn faults_are_drawn_from_a_seed() {
    let run = || async {
        let sim = sim(|c| {
            c.faults.seed = 5;
            c.faults.record_info.envelope500 = 0.5;
        })
        .await;
        let mut codes = Vec::new();
        for _ in 0..20 {
            codes.push(record(&sim, "x").await["code"].as_i64().unwrap());
        }
        codes
    };
    let first = run().await;
    assert_eq!(first, run().await);
    assert!(first.contains(&500) && first.contains(&422), "{first:?}");
}

#[tokio::test]
async fn uploads_stored_then_cut_or_answered_late() {
    use base64::Engine as _;
    let upload = |sim: &kling_sim::Simulator| {
        http()
            .post(format!("{}/api/file-base64-upload", sim.upload_base_url()))
            .bearer_auth(KEY)
            .json(&json!({
                "base64Data": base64::engine::general_purpose::STANDARD.encode(b"hello"),
                "uploadPath": "images",
                "fileName": "a.png"
            }))
            .send()
    };
    // Cut after storing: the client hears nothing, the file is there.
    let cut = sim(|c| c.faults.upload.reset_after = 1.0).await;
    upload(&cut)
        .await
        .expect_err("the connection should have been cut");
    let stored = http()
        .get(format!(
            "{}/files/kieai/1/images/a.png",
            cut.upload_base_url()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(stored.status(), 200);
    assert_eq!(cut.stats().faults["uploadBase64.resetAfter"], 1);
    // Answered late.
    let slow = sim(|c| {
        c.faults.upload.slow_after = 1.0;
        c.faults.common.slow_after = 1.0;
        c.faults.slow_ms = 300;
    })
    .await;
    let started = Instant::now();
    let answer: Value = upload(&slow).await.unwrap().json().await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(answer["code"], json!(200));
    let started = Instant::now();
    let credit: Value = http()
        .get(format!("{}/api/v1/chat/credit", slow.base_url()))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(credit["code"], json!(200));
}

#[tokio::test]
async fn a_slow_download() {
    let sim = sim(|c| {
        c.faults.download.slow_after = 1.0;
        c.faults.slow_ms = 300;
    })
    .await;
    let id = create_ok(&sim, "slow video").await;
    let done = until_ended(&sim, &id).await;
    let url: Value = serde_json::from_str(done["data"]["resultJson"].as_str().unwrap()).unwrap();
    let started = Instant::now();
    let bytes = http()
        .get(url["resultUrls"][0].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(bytes.as_ref(), kling_sim::RESULT_VIDEO);
}

#[tokio::test]
async fn faults_an_endpoint_cannot_have_are_refused() {
    for (change, mentions) in [
        (
            Box::new(|c: &mut SimConfig| c.faults.record_info.truncate = 0.1)
                as Box<dyn Fn(&mut SimConfig)>,
            "faults.recordInfo.truncate",
        ),
        (
            Box::new(|c: &mut SimConfig| c.faults.download.envelope500 = 0.1),
            "faults.download.envelope500",
        ),
        (
            Box::new(|c: &mut SimConfig| c.faults.create_task.reset_after = 1.5),
            "faults.createTask.resetAfter = 1.5",
        ),
    ] {
        let Err(error) = kling_sim::Simulator::builder()
            .api_key(KEY)
            .with(|c| change(c))
            .start()
            .await
        else {
            panic!("the config should be refused: {mentions}");
        };
        assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
        assert!(error.to_string().contains(mentions), "{error}");
    }
}
