//! Waiting: every edge the peers get wrong.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kling_api_ext::wait::ExponentialPoll;
use kling_api_ext::{CancellationToken, WaitOptions};
use kling_api_ext::{Error, State, TaskId};
use serde_json::json;

use crate::support::ScriptedClient as _;
use crate::support::{Canned, ScriptedServer, envelope, record};

fn id() -> TaskId {
    TaskId::new("t-1").unwrap()
}

/// Polls every 10 ms, so tests are quick.
fn fast() -> WaitOptions {
    WaitOptions::new().policy(ExponentialPoll::new(
        Duration::from_millis(10),
        1.0,
        Duration::from_millis(10),
    ))
}

fn ok(state: &str) -> Canned {
    Canned::json(200, &record("t-1", state))
}

#[tokio::test]
async fn unknown_states_count_as_running() {
    let mut odd = record("t-1", "waiting");
    odd["data"]["state"] = json!("pending_review");
    let server = ScriptedServer::start(vec![
        ok("waiting"),
        Canned::json(200, &odd),
        Canned::json(200, &odd),
        ok("generating"),
        ok("success"),
    ])
    .await;
    let task = server.client().wait(&id(), fast()).await.unwrap();
    assert_eq!(task.state, State::Success);
    assert_eq!(server.hits(), 5);
}

#[tokio::test]
async fn not_visible_right_after_creation_is_waited_out() {
    let null = Canned::json(200, &envelope(422, "recordInfo is null", json!(null)));
    let server = ScriptedServer::start(vec![
        Canned::json(200, &crate::support::created("t-1")),
        null.clone(),
        null,
        ok("queuing"),
        ok("success"),
    ])
    .await;
    let client = kling_api_ext::Client::builder()
        .api_key(crate::support::KEY)
        .base_url(&server.url)
        .upload_base_url(&server.url)
        .preflight(false)
        .build()
        .unwrap();
    // An id this client's createTask just returned gets the grace.
    let fresh = client.submit(&crate::support::url_request()).await.unwrap();
    assert!(fresh.created_ago().is_some());
    let task = client.wait(&fresh, fast()).await.unwrap();
    assert_eq!(task.state, State::Success);
}

#[tokio::test]
async fn an_id_this_client_did_not_create_is_not_found_at_once() {
    let server = ScriptedServer::start(vec![Canned::json(
        200,
        &envelope(422, "recordInfo is null", json!(null)),
    )])
    .await;
    // A typo, an id from elsewhere: no grace of looks.
    let error = server.client().wait(&id(), fast()).await.unwrap_err();
    assert_eq!(error.kind(), "not_found");
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn not_visible_past_the_grace_is_not_found() {
    let server = ScriptedServer::start(vec![Canned::json(
        200,
        &envelope(422, "recordInfo is null", json!(null)),
    )])
    .await;
    let started = Instant::now();
    let error = server
        .client()
        .wait(&id(), fast().not_visible_grace(Duration::from_millis(150)))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), "not_found");
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert!(server.hits() > 2);
}

#[tokio::test]
async fn a_task_that_vanishes_after_being_seen_is_not_found_at_once() {
    let server = ScriptedServer::start(vec![
        ok("waiting"),
        Canned::json(200, &envelope(422, "recordInfo is null", json!(null))),
    ])
    .await;
    let error = server.client().wait(&id(), fast()).await.unwrap_err();
    assert_eq!(error.kind(), "not_found");
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn the_deadline_ends_the_wait_with_the_task_id() {
    let server = ScriptedServer::start(vec![ok("generating")]).await;
    let started = Instant::now();
    let error = server
        .client()
        .wait(&id(), fast().deadline(Some(Duration::from_millis(300))))
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(300) && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    match error {
        Error::WaitTimedOut {
            task_id,
            last_state,
            polls,
            ..
        } => {
            assert_eq!(task_id, id());
            assert_eq!(last_state, State::Generating);
            assert!(polls >= 2);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_deadline_is_respected_even_with_long_poll_delays() {
    let server = ScriptedServer::start(vec![ok("generating")]).await;
    let slow = WaitOptions::new()
        .policy(ExponentialPoll::new(
            Duration::from_secs(60),
            1.0,
            Duration::from_secs(60),
        ))
        .deadline(Some(Duration::from_millis(400)));
    let started = Instant::now();
    let error = server.client().wait(&id(), slow).await.unwrap_err();
    assert_eq!(error.kind(), "wait_timed_out");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    // Once at the start, once at the deadline.
    assert_eq!(server.hits(), 2);
}

/// A server that accepts connections and never answers, and a client whose
/// request timeout is an hour: only the wait's own bounds can end a poll.
async fn silent_server_client() -> (kling_api_ext::Client, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let client = kling_api_ext::Client::builder()
        .api_key(crate::support::KEY)
        .base_url(&url)
        .upload_base_url(&url)
        .request_timeout(Duration::from_secs(3600))
        .build()
        .unwrap();
    (client, holder)
}

#[tokio::test]
async fn the_deadline_cuts_a_poll_the_service_never_answers() {
    let (client, _server) = silent_server_client().await;
    let options = WaitOptions::new().deadline(Some(Duration::from_millis(300)));
    let started = Instant::now();
    let error = tokio::time::timeout(Duration::from_secs(20), client.wait(&id(), options))
        .await
        .expect("the wait hung past its deadline")
        .unwrap_err();
    assert!(
        matches!(error, Error::WaitTimedOut { ref task_id, .. } if *task_id == id()),
        "{error:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_token_cancels_a_poll_in_flight() {
    let (client, _server) = silent_server_client().await;
    let token = CancellationToken::new();
    let stopper = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        stopper.cancel();
    });
    let options = WaitOptions::new().deadline(None).cancel_token(token);
    let started = Instant::now();
    let error = tokio::time::timeout(Duration::from_secs(20), client.wait(&id(), options))
        .await
        .expect("the wait ignored its cancel token")
        .unwrap_err();
    assert!(matches!(error, Error::Cancelled { .. }), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn a_token_cancels_from_elsewhere() {
    let server = ScriptedServer::start(vec![ok("generating")]).await;
    let token = CancellationToken::new();
    let stopper = token.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(150)).await;
        stopper.cancel();
    });
    let slow = WaitOptions::new()
        .policy(ExponentialPoll::new(
            Duration::from_secs(30),
            1.0,
            Duration::from_secs(30),
        ))
        .cancel_token(token);
    let started = Instant::now();
    let error = server.client().wait(&id(), slow).await.unwrap_err();
    assert!(
        matches!(error, Error::Cancelled { ref task_id } if *task_id == id()),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn dropping_the_future_stops_polling() {
    let server = ScriptedServer::start(vec![ok("generating")]).await;
    let client = server.client();
    let waiting = tokio::spawn(async move { client.wait(&id(), fast()).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    waiting.abort();
    let _ = waiting.await;
    let after_abort = server.hits();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(after_abort > 0);
    assert_eq!(
        server.hits(),
        after_abort,
        "polls went on after the future was dropped"
    );
}

#[tokio::test]
async fn transient_errors_are_retried_inside_the_deadline() {
    let server = ScriptedServer::start(vec![
        ok("waiting"),
        Canned::html(502),
        Canned::json(200, &envelope(500, "Server exception", json!(null))),
        Canned::json(200, &envelope(455, "Maintenance", json!(null))),
        Canned::html(520),
        ok("success"),
    ])
    .await;
    let events = Arc::new(Mutex::new(Vec::new()));
    let log = events.clone();
    let options = fast().on_progress(move |e| log.lock().unwrap().push(e.clone()));
    let task = server.client().wait(&id(), options).await.unwrap();
    assert_eq!(task.state, State::Success);
    let events = events.lock().unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.transient_error.is_some())
            .count(),
        4
    );
}

#[tokio::test]
async fn a_failed_poll_is_followed_by_a_quick_one_not_the_policys_long_delay() {
    // The policy would look again in 20 s; each lost look is made up sooner:
    // 0.5 s, then 1 s.
    let server =
        ScriptedServer::start(vec![Canned::html(502), Canned::html(520), ok("success")]).await;
    let slow = WaitOptions::new().policy(ExponentialPoll::new(
        Duration::from_secs(20),
        1.0,
        Duration::from_secs(20),
    ));
    let task = tokio::time::timeout(Duration::from_secs(10), server.client().wait(&id(), slow))
        .await
        .expect("the wait took the policy's delay after a failure")
        .unwrap();
    assert_eq!(task.state, State::Success);
    let received = server.received.lock().unwrap();
    assert_eq!(received.len(), 3);
    let after_502 = received[1].at - received[0].at;
    let after_520 = received[2].at - received[1].at;
    assert!(
        (Duration::from_millis(400)..Duration::from_millis(1500)).contains(&after_502),
        "{after_502:?}"
    );
    assert!(
        (Duration::from_millis(900)..Duration::from_millis(2500)).contains(&after_520),
        "{after_520:?}"
    );
}

#[tokio::test]
async fn a_final_error_ends_the_wait_at_once() {
    let server = ScriptedServer::start(vec![
        ok("waiting"),
        Canned::json(200, &envelope(401, "Unauthorized", json!(null))),
    ])
    .await;
    let error = server.client().wait(&id(), fast()).await.unwrap_err();
    assert_eq!(error.kind(), "unauthorized");
    assert_eq!(server.hits(), 2);
}

#[tokio::test]
async fn a_failed_task_is_a_typed_error() {
    let server = ScriptedServer::start(vec![ok("generating"), ok("fail")]).await;
    match server.client().wait(&id(), fast()).await.unwrap_err() {
        Error::GenerationFailed {
            operation,
            task_id,
            fail_code,
            fail_msg,
        } => {
            assert_eq!(operation, Some(kling_api_ext::error::Operation::GetTask));
            assert_eq!(task_id, Some(id()));
            assert_eq!(fail_code.as_deref(), Some("422"));
            assert_eq!(fail_msg.as_deref(), Some("face not detected"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn retry_after_stretches_the_next_poll() {
    let server = ScriptedServer::start(vec![
        Canned::html(429).header("retry-after", "1"),
        ok("success"),
    ])
    .await;
    server.client().wait(&id(), fast()).await.unwrap();
    let received = server.received.lock().unwrap();
    assert!(received[1].at - received[0].at >= Duration::from_millis(950));
}

#[tokio::test]
async fn progress_reports_every_poll_and_each_state_change() {
    let server = ScriptedServer::start(vec![
        ok("waiting"),
        ok("waiting"),
        ok("queuing"),
        ok("generating"),
        ok("generating"),
        ok("success"),
    ])
    .await;
    let events = Arc::new(Mutex::new(Vec::new()));
    let log = events.clone();
    server
        .client()
        .wait(
            &id(),
            fast().on_progress(move |e| log.lock().unwrap().push(e.clone())),
        )
        .await
        .unwrap();
    let events = events.lock().unwrap();
    assert_eq!(events.len(), 6);
    let polls: Vec<u32> = events.iter().map(|e| e.polls).collect();
    assert_eq!(polls, [1, 2, 3, 4, 5, 6]);
    let changes: Vec<String> = events
        .iter()
        .filter(|e| e.state_changed)
        .map(|e| e.state.as_ref().unwrap().to_string())
        .collect();
    assert_eq!(changes, ["waiting", "queuing", "generating", "success"]);
    assert!(events.windows(2).all(|w| w[0].elapsed <= w[1].elapsed));
}
