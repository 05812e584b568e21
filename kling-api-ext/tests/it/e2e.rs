//! The SDK against the simulator, end to end: upload, submit, read the task
//! until it ends, fetch the result; then many jobs with faults switched on.

use std::collections::BTreeMap;
use std::time::Duration;

use kling_api_ext::WaitOptions;
use kling_api_ext::wait::ExponentialPoll;
use kling_api_ext::{AvatarRequest, Client, Error, RetryPolicy, State, Task};
use kling_sim::Simulator;

use kling_testkit::{asset, check_mp4};

/// The simulator's key in these tests.
const KEY: &str = "sim-test-key";

pub(crate) async fn sim(change: impl FnOnce(&mut kling_sim::SimConfig)) -> Simulator {
    kling_testkit::sim(KEY, change).await
}

pub(crate) fn client(sim: &Simulator) -> Client {
    Client::builder()
        .api_key(KEY)
        .base_url(sim.base_url())
        .upload_base_url(sim.upload_base_url())
        .retry(
            RetryPolicy::default()
                .max_attempts(6)
                .initial_delay(Duration::from_millis(10))
                .max_delay(Duration::from_millis(100))
                .time_budget(Duration::from_secs(10)),
        )
        .request_timeout(Duration::from_millis(800))
        // The simulator's limit is off in these tests; the client's would only
        // slow them down (it has its own tests).
        .rate_limit(None)
        .build()
        .unwrap()
}

/// Waits for the task with a quick schedule (the simulator's tasks last
/// ~100 ms here). A failed task is `Ok` here so the test can count it.
async fn until_done(client: &Client, task_id: &kling_api_ext::TaskId) -> Result<Task, Error> {
    let quick = WaitOptions::new()
        .policy(ExponentialPoll::new(
            Duration::from_millis(10),
            1.5,
            Duration::from_millis(50),
        ))
        .deadline(Some(Duration::from_secs(20)));
    match client.wait(task_id, quick).await {
        Err(Error::GenerationFailed { .. }) => client.get(task_id).await,
        other => other,
    }
}

#[tokio::test]
async fn upload_submit_read_and_fetch_the_video() {
    let sim = sim(|_| {}).await;
    let client = client(&sim);
    let request = AvatarRequest::builder()
        .image(asset("face.png"))
        .audio(asset("hello.wav"))
        .prompt("A friendly presenter")
        .build()
        .unwrap();
    let task_id = client.submit(&request).await.unwrap();
    let task = until_done(&client, &task_id).await.unwrap();
    assert_eq!(task.state, State::Success);
    let video = kling_api_ext::reqwest::get(task.video_url().unwrap().as_str())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    check_mp4(&video).unwrap();
    let stats = sim.stats();
    assert_eq!(stats.requests_to("uploadStream"), 2);
    assert_eq!(stats.tasks_created, 1);
    // The audio was uploaded to the simulator, which read its WAV header: 2.93 s
    // → 3 s × 16 credits charged.
    assert_eq!(stats.credits, 10_000.0 - 48.0);
}

#[tokio::test]
async fn submit_wait_download() {
    let sim = sim(|_| {}).await;
    let client = client(&sim);
    let request = AvatarRequest::builder()
        .image(asset("face.png"))
        .audio(asset("hello.wav"))
        .build()
        .unwrap();
    let task = client
        .submit_and_wait(
            &request,
            WaitOptions::new().policy(ExponentialPoll::new(
                Duration::from_millis(20),
                1.2,
                Duration::from_millis(100),
            )),
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let saved = client
        .download(&task, dir.path().join("avatar.mp4"))
        .await
        .unwrap();
    assert_eq!(saved.bytes, kling_sim::RESULT_VIDEO.len() as u64);
    check_mp4(&std::fs::read(&saved.path).unwrap()).unwrap();
    // A fresh link for the same file works too.
    let link = client
        .download_url(task.video_url().unwrap())
        .await
        .unwrap();
    let again = client
        .download(&link, dir.path().join("again.mp4"))
        .await
        .unwrap();
    assert_eq!(again.sha256, saved.sha256);
}

#[tokio::test]
async fn many_jobs_with_faults_never_pay_twice_never_hang_and_always_end_typed() {
    let sim = sim(|c| {
        c.lifecycle.fail_fraction = 0.1;
        c.faults.seed = 11;
        let create = &mut c.faults.create_task;
        create.reset_before = 0.05;
        create.reset_after = 0.05;
        create.slow_after = 0.05;
        create.html502 = 0.03;
        create.html520 = 0.03;
        create.envelope500 = 0.04;
        create.envelope455 = 0.05;
        create.message_alias = 0.05;
        let read = &mut c.faults.record_info;
        read.reset_before = 0.05;
        read.html502 = 0.05;
        read.envelope500 = 0.05;
        read.envelope455 = 0.05;
        read.message_alias = 0.05;
        c.faults.upload.html520 = 0.05;
        c.faults.download.truncate = 0.2;
        c.faults.download.html502 = 0.05;
        c.faults.upload.reset_before = 0.05;
        c.faults.slow_ms = 1500;
        c.faults.unknown_state = 0.1;
        c.faults.unknown_state_ms = 50;
        c.faults.null_record = 0.1;
        c.faults.null_record_ms = 50;
        c.faults.fail_code_int = 0.5;
        c.rate_limit.max = 0;
    })
    .await;
    let client = client(&sim);
    // Uploaded once; every job uses the URLs with its own prompt.
    let image = client.upload_file(asset("face.png")).await.unwrap().url;
    let audio = client.upload_file(asset("hello.wav")).await.unwrap().url;
    let jobs = 60;
    let dir = tempfile::tempdir().unwrap();
    let handles: Vec<_> = (0..jobs)
        .map(|i| {
            let client = client.clone();
            let request = AvatarRequest::builder()
                .image(image.clone())
                .audio(audio.clone())
                .prompt(format!("job {i}"))
                .build()
                .unwrap();
            let target = dir.path().join(format!("job-{i}.mp4"));
            tokio::spawn(async move {
                tokio::time::timeout(Duration::from_secs(30), async {
                    let task_id = client.submit(&request).await?;
                    let task = until_done(&client, &task_id).await?;
                    if task.state == State::Success {
                        client.download(&task, &target).await?;
                    }
                    Ok::<Task, Error>(task)
                })
                .await
            })
        })
        .collect();
    let mut outcomes: BTreeMap<String, u32> = BTreeMap::new();
    for handle in handles {
        let outcome = handle.await.unwrap().expect("a job hung");
        let key = match outcome {
            Ok(task) => task.state.to_string(),
            Err(e) => e.kind().to_owned(),
        };
        *outcomes.entry(key).or_default() += 1;
    }
    let stats = sim.stats();
    assert!(
        stats.duplicate_inputs().is_empty(),
        "paid twice: {:?}",
        stats.duplicate_inputs()
    );
    assert_eq!(outcomes.values().sum::<u32>(), jobs);
    assert!(
        outcomes.get("success").copied().unwrap_or(0) > 0,
        "{outcomes:?}"
    );
    // Every failure is a typed error a caller can act on.
    for kind in outcomes.keys() {
        assert!(
            [
                "success",
                "fail",
                "submit_outcome_unknown",
                "server_error",
                "maintenance",
                "transport",
                "unexpected_response"
            ]
            .contains(&kind.as_str()),
            "unexpected outcome {kind}: {outcomes:?}"
        );
    }
    println!("outcomes: {outcomes:?}; faults: {:?}", stats.faults);
}

fn with_key(sim: &Simulator, key: &str) -> Client {
    Client::builder()
        .api_key(key)
        .base_url(sim.base_url())
        .upload_base_url(sim.upload_base_url())
        .retry(RetryPolicy::default().max_attempts(1))
        .build()
        .unwrap()
}

/// The documented errors the service may send with the HTTP status too
/// (`httpErrorStatus`) read as the same errors as over HTTP 200, message kept;
/// a failed task has no cost or completion time either way.
#[tokio::test]
async fn errors_with_their_http_status_read_as_over_http_200() {
    use kling_api_ext::{ApiErrorKind, TaskId};
    let unknown = TaskId::new("c420e5a6f3b84ad2b6c1e4d0a9f7b311").unwrap();
    for http_status in [false, true] {
        let sim = sim(|c| {
            c.http_error_status = http_status;
            c.lifecycle.fail_fraction = 1.0;
        })
        .await;
        let error = client(&sim).get(&unknown).await.unwrap_err();
        let Error::Api {
            kind, code, msg, ..
        } = &error
        else {
            panic!("{http_status}: {error:?}");
        };
        assert_eq!(*kind, ApiErrorKind::NotFound, "{http_status}: {error}");
        assert_eq!(
            (*code, msg.as_str()),
            if http_status {
                (404, "Task not found")
            } else {
                (422, "recordInfo is null")
            }
        );
        let wrong = with_key(&sim, "not-the-key");
        let error = wrong.get(&unknown).await.unwrap_err();
        assert_eq!(
            error.api_kind(),
            Some(ApiErrorKind::Unauthorized),
            "{http_status}: {error}"
        );
        let error = wrong
            .upload_base64(&kling_testkit::png_head(400, 500), "face.png")
            .await
            .unwrap_err();
        assert_eq!(
            error.api_kind(),
            Some(ApiErrorKind::Unauthorized),
            "{http_status}: {error}"
        );
        assert!(error.to_string().contains("Invalid API Key"), "{error}");

        let client = client(&sim);
        let request = AvatarRequest::builder()
            .image(asset("face.png").display().to_string())
            .audio(asset("hello.wav").display().to_string())
            .build()
            .unwrap();
        let id = client.submit(&request).await.unwrap();
        let task = until_done(&client, &id).await.unwrap();
        assert_eq!(task.state, State::Fail);
        assert_eq!(
            (task.cost_time, task.complete_time),
            (None, None),
            "{task:?}"
        );
        assert!(task.fail_code.is_some(), "{task:?}");
    }
}
