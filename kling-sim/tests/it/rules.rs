//! Server-side rules and the lifecycle model (callbacks: `callbacks.rs`).

use std::time::Duration;

use kling_sim::RateLimitMode;
use serde_json::{Value, json};

use crate::support::{KEY, body, create, create_ok, http, record, sim, until_ended};

async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_wrong_key_gets_code_401_with_http_200() {
    let sim = sim(|_| {}).await;
    for auth in [Some("Bearer nope"), Some(KEY), None] {
        let mut request = http()
            .post(format!("{}/api/v1/jobs/createTask", sim.base_url()))
            .json(&body("kling/ai-avatar-v1-pro", ""));
        if let Some(auth) = auth {
            request = request.header("authorization", auth);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(
            json_of(response).await,
            json!({"code": 401, "msg": "You do not have access permissions", "data": null})
        );
    }
    assert_eq!(sim.stats().tasks_created, 0);
}

#[tokio::test]
async fn requests_without_a_user_agent_are_refused_by_the_proxy() {
    let sim = sim(|_| {}).await;
    // ring on purpose (no C toolchain, a faster build); rustls 0.23.48
    // deprecates it only for lacking post-quantum key exchange.
    #[allow(deprecated)]
    let _ = rustls::crypto::ring::default_provider().install_default();
    let bare = reqwest::Client::new();
    let response = bare
        .get(format!("{}/api/v1/chat/credit", sim.base_url()))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_eq!(response.text().await.unwrap(), "error code: 1010");
}

#[tokio::test]
async fn unknown_models_are_refused_and_siblings_accepted() {
    let sim = sim(|_| {}).await;
    let answer = json_of(create(&sim, &body("kling/ai-avatar-v9", "")).await).await;
    assert_eq!(answer["code"], json!(422));
    assert!(
        answer["msg"]
            .as_str()
            .unwrap()
            .starts_with("The model name you specified is not supported")
    );
    for model in ["kling/ai-avatar-pro", "kling/ai-avatar-standard"] {
        assert_eq!(
            json_of(create(&sim, &body(model, "")).await).await["code"],
            json!(200),
            "{model}"
        );
    }
}

#[tokio::test]
async fn required_fields_answer_code_500_this_field_is_required() {
    let sim = sim(|_| {}).await;
    let mut without_input = body("kling/ai-avatar-v1-pro", "");
    without_input.as_object_mut().unwrap().remove("input");
    let mut cases = vec![without_input];
    for field in ["image_url", "audio_url", "prompt"] {
        let mut b = body("kling/ai-avatar-v1-pro", "");
        b["input"].as_object_mut().unwrap().remove(field);
        cases.push(b);
    }
    for case in cases {
        assert_eq!(
            json_of(create(&sim, &case).await).await,
            json!({"code": 500, "msg": "This field is required", "data": null}),
            "{case}"
        );
    }
    assert_eq!(sim.stats().tasks_created, 0);
}

#[tokio::test]
async fn prompts_over_5000_characters_are_refused() {
    let sim = sim(|_| {}).await;
    assert_eq!(
        json_of(create(&sim, &body("kling/ai-avatar-v1-pro", &"é".repeat(5000))).await).await["code"],
        json!(200)
    );
    let answer =
        json_of(create(&sim, &body("kling/ai-avatar-v1-pro", &"é".repeat(5001))).await).await;
    assert_eq!(answer["code"], json!(422));
}

#[tokio::test]
async fn uploads_over_the_configured_size_are_refused() {
    let sim = sim(|c| c.max_upload_bytes = 1000).await;
    let form = reqwest::multipart::Form::new()
        .text("uploadPath", "big")
        .part(
            "file",
            reqwest::multipart::Part::bytes(vec![0u8; 1001]).file_name("big.bin"),
        );
    let answer = json_of(
        http()
            .post(format!("{}/api/file-stream-upload", sim.upload_base_url()))
            .bearer_auth(KEY)
            .multipart(form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(answer["success"], json!(false));
    assert_eq!(answer["code"], json!(400));
    assert!(
        answer["msg"]
            .as_str()
            .unwrap()
            .contains("exceeds the limit of 1000 bytes")
    );
}

#[tokio::test]
async fn credits_run_out_with_code_402() {
    // 5 s × 16 credits = 80 per task: 100 credits pay for one.
    let sim = sim(|c| c.credits = 100.0).await;
    create_ok(&sim, "one").await;
    let answer = json_of(create(&sim, &body("kling/ai-avatar-v1-pro", "two")).await).await;
    assert_eq!(
        answer,
        json!({"code": 402, "msg": "Insufficient credits", "data": null})
    );
    assert_eq!(sim.stats().credits, 20.0);
}

#[tokio::test]
async fn the_rate_limit_answers_http_429_with_retry_after() {
    let sim = sim(|c| c.rate_limit.window_ms = 60_000).await;
    for i in 0..20 {
        create_ok(&sim, &format!("job {i}")).await;
    }
    let response = create(&sim, &body("kling/ai-avatar-v1-pro", "job 20")).await;
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((59..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(json_of(response).await["code"], json!(429));
    let stats = sim.stats();
    assert_eq!((stats.tasks_created, stats.rate_limited), (20, 1));
}

#[tokio::test]
async fn the_rate_limit_can_answer_http_429_without_retry_after() {
    let sim = sim(|c| {
        c.rate_limit.max = 1;
        c.rate_limit.retry_after = false;
    })
    .await;
    create_ok(&sim, "a").await;
    let response = create(&sim, &body("kling/ai-avatar-v1-pro", "b")).await;
    assert_eq!(response.status(), 429);
    assert!(response.headers().get("retry-after").is_none());
    assert_eq!(json_of(response).await["code"], json!(429));
}

#[tokio::test]
async fn the_rate_limit_can_answer_code_429_with_http_200() {
    let sim = sim(|c| {
        c.rate_limit.max = 2;
        c.rate_limit.mode = RateLimitMode::Envelope429;
    })
    .await;
    create_ok(&sim, "a").await;
    create_ok(&sim, "b").await;
    let response = create(&sim, &body("kling/ai-avatar-v1-pro", "c")).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("retry-after").is_none());
    assert_eq!(
        json_of(response).await,
        json!({"code": 429, "msg": "Rate limit exceeded", "data": null})
    );
}

#[tokio::test]
async fn the_rate_limit_window_slides() {
    let sim = sim(|c| {
        c.rate_limit.max = 2;
        c.rate_limit.window_ms = 300;
    })
    .await;
    create_ok(&sim, "a").await;
    create_ok(&sim, "b").await;
    assert_eq!(
        create(&sim, &body("kling/ai-avatar-v1-pro", "c"))
            .await
            .status(),
        429
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    create_ok(&sim, "d").await;
}

#[tokio::test]
async fn failing_tasks_end_in_fail_with_a_string_code_and_cost_nothing() {
    let sim = sim(|c| {
        c.lifecycle.fail_fraction = 1.0;
        c.credits = 100.0;
    })
    .await;
    let id = create_ok(&sim, "doomed").await;
    let data = until_ended(&sim, &id).await["data"].clone();
    assert_eq!(data["state"], json!("fail"));
    assert!(data["failCode"].is_string(), "{data}");
    assert!(!data["failMsg"].as_str().unwrap().is_empty());
    assert_eq!(data["resultJson"], json!(""));
    assert_eq!(sim.stats().credits, 100.0);
    let video = http()
        .get(format!("{}/results/{id}.mp4", sim.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(video.status(), 404);
}

/// The same seed gives the same lifecycles; task ids differ from run to run,
/// as the service's do (a repeated id would make a task id from an earlier
/// run name a new task).
#[tokio::test]
async fn the_same_seed_gives_the_same_lifecycles_with_new_ids() {
    let run = || async {
        let sim = sim(|c| {
            c.lifecycle.seed = 99;
            c.lifecycle.fail_fraction = 0.5;
        })
        .await;
        let mut out = Vec::new();
        for i in 0..6 {
            let id = create_ok(&sim, &format!("{i}")).await;
            out.push(id);
        }
        let ends: Vec<u64> = sim.stats().tasks.iter().map(|t| t.ends_after_ms).collect();
        (out, ends)
    };
    let (first_ids, first_ends) = run().await;
    let (second_ids, second_ends) = run().await;
    assert_eq!(first_ends, second_ends);
    assert!(
        first_ids.iter().all(|id| !second_ids.contains(id)),
        "{first_ids:?} {second_ids:?}"
    );
}

#[tokio::test]
async fn inspection_counts_requests_polls_inputs_and_detection_lag() {
    let sim = sim(|_| {}).await;
    let id = create_ok(&sim, "same").await;
    create_ok(&sim, "same").await;
    create_ok(&sim, "other").await;
    until_ended(&sim, &id).await;
    record(&sim, &id).await;
    let stats = sim.stats();
    assert_eq!(stats.requests_to("createTask"), 3);
    assert_eq!(stats.tasks_created, 3);
    let duplicates = stats.duplicate_inputs();
    assert_eq!(duplicates.len(), 1);
    assert_eq!(duplicates[0].1, 2);
    assert!(duplicates[0].0.contains("\"prompt\":\"same\""));
    let task = stats.tasks.iter().find(|t| t.task_id == id).unwrap();
    assert_eq!(u64::from(task.polls), stats.requests_to("recordInfo"));
    // Polled every 10 ms: seen ended within a few tens of ms of the end.
    assert!(task.detection_lag_ms.unwrap() < 200, "{task:?}");
}
