//! The money-safety edges: incomplete answers, usage caps, a limiter pause
//! longer than the caller's budget, cancellation before sending, media hosts
//! that are down.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kling_api_ext::submit::SubmitWaitReason;
use kling_api_ext::wait::ExponentialPoll;
use kling_api_ext::{ApiErrorKind, Error, RateLimit, RetryPolicy, State, SubmitOptions, TaskId};
use kling_api_ext::{CancellationToken, WaitOptions};
use serde_json::json;

use crate::support::ScriptedClient as _;
use crate::support::{Canned, KEY, ScriptedServer, created, envelope, record, url_request};

fn id() -> TaskId {
    TaskId::new("t-1").unwrap()
}

fn fast() -> WaitOptions {
    WaitOptions::new()
        .policy(ExponentialPoll::new(
            Duration::from_millis(10),
            1.0,
            Duration::from_millis(10),
        ))
        // Far longer than the test: a wait that ends, ends by itself.
        .deadline(Some(Duration::from_secs(600)))
}

fn success_without_urls() -> Canned {
    let mut body = record("t-1", "success");
    body["data"]["resultJson"] = json!("{\"resultUrls\":[]}");
    Canned::json(200, &body)
}

#[tokio::test]
async fn a_success_without_result_urls_ends_the_wait_after_confirming_looks() {
    let server = ScriptedServer::start(vec![
        Canned::json(200, &record("t-1", "generating")),
        success_without_urls(),
    ])
    .await;
    let error = server.client().wait(&id(), fast()).await.unwrap_err();
    match &error {
        Error::ResultMissing {
            task_id,
            last_state,
            polls,
            detail,
        } => {
            assert_eq!(task_id, &id());
            assert_eq!(last_state, &Some(State::Success));
            assert_eq!(*polls, 4, "one look generating, then three at the success");
            assert!(detail.contains("no resultUrls"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(error.kind(), "result_missing");
    assert_eq!(error.task_id(), Some(&id()));
    assert!(error.to_string().contains("t-1"), "{error}");
    assert_eq!(server.hits(), 4, "not a wait until the deadline");
}

#[tokio::test]
async fn code_200_with_null_data_ends_the_wait_too() {
    let server = ScriptedServer::start(vec![
        Canned::json(200, &record("t-1", "queuing")),
        Canned::json(200, &envelope(200, "success", json!(null))),
    ])
    .await;
    let error = server.client().wait(&id(), fast()).await.unwrap_err();
    assert!(
        matches!(
            &error,
            Error::ResultMissing {
                last_state: Some(State::Queuing),
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(server.hits(), 4);
}

#[tokio::test]
async fn a_result_written_a_moment_late_is_still_taken() {
    let server = ScriptedServer::start(vec![
        success_without_urls(),
        success_without_urls(),
        Canned::json(200, &record("t-1", "success")),
    ])
    .await;
    let task = server.client().wait(&id(), fast()).await.unwrap();
    assert!(task.video_url().is_some());
}

/// A client with the creation limiter, a budget of `budget`, against `server`.
fn limited(server: &ScriptedServer, max: u32, budget: Duration) -> kling_api_ext::Client {
    kling_api_ext::Client::builder()
        .api_key(KEY)
        .base_url(&server.url)
        .preflight(false)
        .rate_limit(Some(RateLimit::new(max, Duration::from_secs(10))))
        .retry(
            RetryPolicy::default()
                .max_attempts(4)
                .initial_delay(Duration::from_millis(10))
                .max_delay(Duration::from_millis(40))
                .time_budget(budget),
        )
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_pause_longer_than_the_budget_returns_at_once_without_sending() {
    let server = ScriptedServer::start(vec![
        Canned::json(429, &envelope(429, "slow down", json!(null))).header("retry-after", "120"),
        Canned::json(200, &created("t-late")),
    ])
    .await;
    let client = limited(&server, 20, Duration::from_secs(5));
    let started = std::time::Instant::now();
    let error = client.submit(&url_request()).await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::Api {
                kind: ApiErrorKind::RateLimited,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(error.is_not_taken());
    assert_eq!(server.hits(), 1, "nothing sent after the 429");
    // The next submit of any clone sees the same pause: refused unsent too.
    let again = client.clone().submit(&url_request()).await.unwrap_err();
    assert!(
        matches!(again, Error::Api { kind: ApiErrorKind::RateLimited, retry_after: Some(d), .. } if d > Duration::from_secs(100)),
        "{again:?}"
    );
    assert!(again.to_string().contains("nothing was sent"), "{again}");
    assert_eq!(server.hits(), 1);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "a 120 s pause was not waited out"
    );
}

#[tokio::test]
async fn a_pause_is_reported_and_cancellable() {
    let server = ScriptedServer::start(vec![
        Canned::json(429, &envelope(429, "slow down", json!(null))).header("retry-after", "30"),
        Canned::json(200, &created("t-never")),
    ])
    .await;
    let client = limited(&server, 20, Duration::from_secs(300));
    let stop = CancellationToken::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let options = SubmitOptions::new()
        .cancel_token(stop.clone())
        .on_wait(move |w| log.lock().unwrap().push((w.reason.clone(), w.wait)));
    let submit = tokio::spawn({
        let client = client.clone();
        async move { client.submit(&url_request()).options(options).await }
    });
    // Cancelled once the pause has been reported.
    for _ in 0..500 {
        if !seen.lock().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.cancel();
    let error = tokio::time::timeout(Duration::from_secs(10), submit)
        .await
        .expect("the cancel ends the wait")
        .unwrap()
        .unwrap_err();
    assert!(matches!(error, Error::NotSent { .. }), "{error:?}");
    assert!(error.is_not_taken());
    assert_eq!(server.hits(), 1, "nothing sent after the cancel");
    let seen = seen.lock().unwrap();
    assert_eq!(seen[0].0, SubmitWaitReason::ServicePause, "{seen:?}");
    assert!(seen[0].1 > Duration::from_secs(25), "{seen:?}");
}

#[tokio::test]
async fn a_full_window_is_reported_and_a_cancel_sends_nothing() {
    let server = ScriptedServer::start(vec![Canned::json(200, &created("t-1"))]).await;
    let client = limited(&server, 1, Duration::from_secs(60));
    client.submit(&url_request()).await.unwrap();
    let stop = CancellationToken::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let options = SubmitOptions::new()
        .cancel_token(stop.clone())
        .on_wait(move |w| log.lock().unwrap().push(w.reason.clone()));
    let second = tokio::spawn({
        let client = client.clone();
        async move { client.submit(&url_request()).options(options).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.cancel();
    let error = second.await.unwrap().unwrap_err();
    assert!(matches!(error, Error::NotSent { .. }), "{error:?}");
    assert_eq!(server.hits(), 1);
    assert_eq!(
        seen.lock().unwrap().first(),
        Some(&SubmitWaitReason::RateLimitWindow {
            max: 1,
            window: Duration::from_secs(10)
        })
    );
}

#[tokio::test]
async fn a_media_host_that_is_down_is_not_invalid_input() {
    // 503 from the media host, every time: retried, then a service error.
    let server = ScriptedServer::start(vec![Canned::html(503)]).await;
    let request = kling_api_ext::AvatarRequest::builder()
        .image(format!("{}/face.png", server.url))
        .audio(format!("{}/voice.mp3", server.url))
        .build()
        .unwrap();
    let error = server.client().prepare(&request).await.unwrap_err();
    assert!(
        !matches!(error, Error::InvalidInput { .. }),
        "a 503 says nothing about the file: {error:?}"
    );
    assert!(error.is_retryable(), "{error:?}");
    assert!(server.hits() > 1, "retried");

    // No connection at all: a transport error, not "invalid".
    let port = crate::support::closed_port();
    let request = kling_api_ext::AvatarRequest::builder()
        .image(format!("http://127.0.0.1:{port}/face.png?sig=secret-sig"))
        .audio(format!("http://127.0.0.1:{port}/voice.mp3"))
        .build()
        .unwrap();
    let error = server.client().prepare(&request).await.unwrap_err();
    assert!(matches!(error, Error::Transport { .. }), "{error:?}");
    assert!(
        !format!("{error} {error:?}").contains("secret-sig"),
        "{error:?}"
    );

    // A host that answers 404 still is invalid input: the file is not there.
    let server = ScriptedServer::start(vec![Canned::html(404)]).await;
    let request = kling_api_ext::AvatarRequest::builder()
        .image(format!(
            "{}/face.png?X-Amz-Signature=secret-sig",
            server.url
        ))
        .audio(format!("{}/voice.mp3", server.url))
        .build()
        .unwrap();
    let error = server.client().prepare(&request).await.unwrap_err();
    assert!(matches!(error, Error::InvalidInput { .. }), "{error:?}");
    assert!(
        !format!("{error} {error:?}").contains("secret-sig"),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_expired_result_url_of_a_task_is_replaced_by_a_fresh_link_once() {
    let sim = kling_sim::Simulator::builder()
        .with(|c| {
            c.lifecycle.waiting_ms = [10, 20];
            c.lifecycle.queuing_ms = [10, 20];
            c.lifecycle.generating_ms = [10, 20];
            c.lifecycle.result_url_ttl_ms = Some(0);
        })
        .start()
        .await
        .unwrap();
    let client = kling_api_ext::Client::builder()
        .api_key(sim.api_key())
        .base_url(sim.base_url())
        .upload_base_url(sim.upload_base_url())
        .build()
        .unwrap();
    let request = kling_api_ext::AvatarRequest::builder()
        .image(crate::support::asset("face.png").display().to_string())
        .audio(crate::support::asset("hello.wav").display().to_string())
        .build()
        .unwrap();
    let task_id = client.submit(&request).await.unwrap();
    let task = client.wait(&task_id, fast()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The plain URL is expired: the URL alone says so ...
    let expired = client
        .download(task.video_url().unwrap(), dir.path().join("a.mp4"))
        .await
        .unwrap_err();
    assert!(matches!(expired, Error::LinkExpired { .. }), "{expired:?}");
    // ... the task gets a fresh link and its video.
    let saved = client
        .download(&task, dir.path().join("b.mp4"))
        .await
        .unwrap();
    assert_eq!(std::fs::read(&saved.path).unwrap(), kling_sim::RESULT_VIDEO);
    assert_eq!(sim.stats().requests_to("downloadUrl"), 1);
}
