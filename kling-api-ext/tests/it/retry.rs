//! The retry policy: reads are retried; createTask never when it may have
//! reached the service, and only when the service certainly did not take it.

use std::time::{Duration, Instant};

use kling_api_ext::error::TransportKind;
use kling_api_ext::{ApiErrorKind, Error, TaskId};
use serde_json::json;

use crate::support::ScriptedClient as _;
use crate::support::{
    Canned, KEY, ScriptedServer, closed_port, created, envelope, record, resetting_server,
    url_request,
};

fn no_preflight(server: &ScriptedServer) -> kling_api_ext::Client {
    kling_api_ext::Client::builder()
        .api_key(KEY)
        .base_url(&server.url)
        .upload_base_url(&server.url)
        .retry(crate::support::fast_retry())
        .preflight(false)
        .request_timeout(Duration::from_millis(800))
        .build()
        .unwrap()
}

fn assert_unknown(error: Error) -> Error {
    match error {
        Error::SubmitOutcomeUnknown { cause } => {
            assert!(
                !cause.is_retryable()
                    || matches!(
                        *cause,
                        Error::Transport { .. }
                            | Error::UnexpectedResponse { .. }
                            | Error::Api {
                                kind: ApiErrorKind::ServerError,
                                ..
                            }
                    )
            );
            *cause
        }
        other => panic!("expected SubmitOutcomeUnknown, got {other:?}"),
    }
}

#[tokio::test]
async fn submit_is_not_retried_after_a_reset() {
    let (url, _server) = resetting_server().await;
    let client = kling_api_ext::Client::builder()
        .api_key(KEY)
        .base_url(&url)
        .retry(crate::support::fast_retry())
        .preflight(false)
        .build()
        .unwrap();
    let error = client.submit(&url_request()).await.unwrap_err();
    let cause = assert_unknown(error);
    assert!(
        matches!(
            cause,
            Error::Transport {
                may_have_reached_server: true,
                ..
            }
        ),
        "{cause:?}"
    );
}

#[tokio::test]
async fn submit_is_sent_once_after_a_reset_counted_by_the_server() {
    // The same, with a server that reads the request, records it, then closes.
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut buf = [0u8; 8192];
            let _ = socket.read(&mut buf).await;
        }
    });
    let client = kling_api_ext::Client::builder()
        .api_key(KEY)
        .base_url(&url)
        .retry(crate::support::fast_retry())
        .preflight(false)
        .build()
        .unwrap();
    assert_unknown(client.submit(&url_request()).await.unwrap_err());
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
}

#[tokio::test]
async fn submit_is_not_retried_after_an_envelope_500() {
    let server = ScriptedServer::start(vec![
        Canned::json(
            200,
            &envelope(500, "Server exception, please try again later", json!(null)),
        ),
        Canned::json(200, &created("t-2")),
    ])
    .await;
    let error = no_preflight(&server)
        .submit(&url_request())
        .await
        .unwrap_err();
    // The service may have stored the task before failing: not a clean "no",
    // and never something a caller's is_retryable() loop would resend.
    assert_eq!(error.kind(), "submit_outcome_unknown");
    assert!(!error.is_retryable());
    let cause = assert_unknown(error);
    assert_eq!(cause.kind(), "server_error");
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn a_500_with_validation_words_is_an_unknown_outcome_not_a_rejection() {
    // "rejected" would let --retry-rejected or an edited line pay again for a
    // task the failing service may have stored before it failed.
    for msg in [
        "This field is required",
        "prompt is invalid",
        "audio length exceeds the limit",
        "image must be a face",
    ] {
        let server = ScriptedServer::start(vec![
            Canned::json(200, &envelope(500, msg, json!(null))),
            Canned::json(200, &created("t-2")),
        ])
        .await;
        let error = no_preflight(&server)
            .submit(&url_request())
            .await
            .unwrap_err();
        assert_eq!(error.kind(), "submit_outcome_unknown", "{msg}");
        assert!(!error.is_not_taken(), "{msg}");
        let cause = assert_unknown(error);
        assert_eq!(cause.kind(), "server_error", "{msg}");
        assert_eq!(server.hits(), 1, "{msg}");
    }
}

#[tokio::test]
async fn submit_is_not_retried_after_an_http_5xx_carrying_the_envelope() {
    // Even when the body says "maintenance" or "rate limited", an HTTP 5xx means
    // something failed between us and the service: the task may exist.
    for (status, code) in [(500, 500), (503, 455), (502, 429), (504, 433)] {
        let server = ScriptedServer::start(vec![
            Canned::json(status, &envelope(code, "busy", json!(null))),
            Canned::json(200, &created("t-2")),
        ])
        .await;
        let cause = assert_unknown(
            no_preflight(&server)
                .submit(&url_request())
                .await
                .unwrap_err(),
        );
        match cause {
            Error::UnexpectedResponse {
                status: s,
                ref detail,
                ref body,
                ..
            } => {
                assert_eq!(s, status);
                assert!(detail.contains(&format!("code {code}")), "{detail}");
                assert!(body.contains("busy"), "{body}");
            }
            other => panic!("HTTP {status}: {other:?}"),
        }
        assert_eq!(server.hits(), 1, "HTTP {status} code {code}");
    }
}

#[tokio::test]
async fn submit_is_not_retried_after_a_proxy_5xx() {
    for status in [502, 520, 500] {
        let server = ScriptedServer::start(vec![
            Canned::html(status),
            Canned::json(200, &created("t-2")),
        ])
        .await;
        let cause = assert_unknown(
            no_preflight(&server)
                .submit(&url_request())
                .await
                .unwrap_err(),
        );
        assert!(
            matches!(cause, Error::UnexpectedResponse { status: s, .. } if s == status),
            "{cause:?}"
        );
        assert_eq!(server.hits(), 1, "HTTP {status}");
    }
}

#[tokio::test]
async fn submit_is_not_retried_after_a_timeout() {
    let server = httpmock::MockServer::start_async().await;
    let mock = server.mock(|when, then| {
        when.method(httpmock::Method::POST)
            .path("/api/v1/jobs/createTask");
        then.status(200)
            .delay(Duration::from_secs(3))
            .body(created("t").to_string());
    });
    let client = crate::support::builder(&server)
        .preflight(false)
        .request_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let cause = assert_unknown(client.submit(&url_request()).await.unwrap_err());
    assert!(
        matches!(
            cause,
            Error::Transport {
                kind: TransportKind::Timeout,
                ..
            }
        ),
        "{cause:?}"
    );
    mock.assert_calls(1);
}

#[tokio::test]
async fn submit_without_a_task_id_is_an_unknown_outcome() {
    let server = ScriptedServer::start(vec![Canned::json(
        200,
        &envelope(200, "success", json!({})),
    )])
    .await;
    assert_unknown(
        no_preflight(&server)
            .submit(&url_request())
            .await
            .unwrap_err(),
    );
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn submit_is_retried_after_rate_limits_and_maintenance() {
    for first in [
        Canned::json(200, &envelope(429, "Rate limit exceeded", json!(null))),
        Canned::json(200, &envelope(455, "Maintenance", json!(null))),
        Canned::html(429),
    ] {
        let label = first.body.clone();
        let server = ScriptedServer::start(vec![
            first.header("retry-after", "0"),
            Canned::json(200, &created("t-ok")),
        ])
        .await;
        let id = no_preflight(&server).submit(&url_request()).await.unwrap();
        assert_eq!(id, TaskId::new("t-ok").unwrap(), "{label}");
        assert_eq!(server.hits(), 2, "{label}");
    }
}

#[tokio::test]
async fn a_usage_cap_433_is_its_own_kind_and_never_retried() {
    let server = ScriptedServer::start(vec![
        Canned::json(
            200,
            &envelope(433, "Sub-key usage exceeds limit", json!(null)),
        )
        .header("retry-after", "0"),
        Canned::json(200, &created("t-never")),
    ])
    .await;
    let error = no_preflight(&server)
        .submit(&url_request())
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            kling_api_ext::Error::Api {
                kind: kling_api_ext::ApiErrorKind::UsageLimited,
                ..
            }
        ),
        "{error:?}"
    );
    assert!(!error.is_retryable());
    assert!(error.is_not_taken(), "433: nothing was created");
    assert_eq!(error.code(), Some(433));
    assert_eq!(server.hits(), 1, "a usage cap is not waited out");
}

#[tokio::test]
async fn submit_is_retried_when_no_connection_was_made() {
    let client = kling_api_ext::Client::builder()
        .api_key(KEY)
        .base_url(format!("http://127.0.0.1:{}", closed_port()))
        .retry(crate::support::fast_retry())
        .preflight(false)
        .build()
        .unwrap();
    let started = Instant::now();
    let error = client.submit(&url_request()).await.unwrap_err();
    // Not "outcome unknown": it was certainly not sent, after every attempt.
    assert!(
        matches!(
            error,
            Error::Transport {
                kind: TransportKind::Connect,
                may_have_reached_server: false,
                ..
            }
        ),
        "{error:?}"
    );
    // Three backoff delays of at least 10, 20, 40 ms passed between four attempts.
    assert!(
        started.elapsed() >= Duration::from_millis(70),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn retry_after_in_seconds_is_honoured() {
    let server = ScriptedServer::start(vec![
        Canned::html(429).header("retry-after", "1"),
        Canned::json(200, &created("t-ok")),
    ])
    .await;
    let client = kling_api_ext::Client::builder()
        .api_key(KEY)
        .base_url(&server.url)
        .retry(crate::support::fast_retry())
        .preflight(false)
        .rate_limit(None)
        .build()
        .unwrap();
    client.submit(&url_request()).await.unwrap();
    let received = server.received.lock().unwrap();
    let gap = received[1].at - received[0].at;
    assert!(gap >= Duration::from_millis(950), "waited only {gap:?}");
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_honoured() {
    // Three seconds ahead, at one-second resolution: at least two seconds
    // after `at` was computed, so at least one second of wait even when a
    // loaded machine is slow to start the server and send the first request.
    let at = std::time::SystemTime::now() + Duration::from_secs(3);
    let server = ScriptedServer::start(vec![
        Canned::json(200, &envelope(429, "Rate limit exceeded", json!(null)))
            .header("retry-after", &httpdate::fmt_http_date(at)),
        Canned::json(200, &record("t-1", "waiting")),
    ])
    .await;
    let client = server.client();
    let task = client.get(&TaskId::new("t-1").unwrap()).await.unwrap();
    assert_eq!(task.task_id.as_str(), "t-1");
    let received = server.received.lock().unwrap();
    let gap = received[1].at - received[0].at;
    assert!(gap >= Duration::from_millis(950), "waited only {gap:?}");
}

#[tokio::test]
async fn a_429_pauses_the_limiter_for_the_next_creation() {
    let server = ScriptedServer::start(vec![
        Canned::html(429).header("retry-after", "1"),
        Canned::json(200, &created("t-1")),
        Canned::json(200, &created("t-2")),
    ])
    .await;
    let client = no_preflight(&server);
    client.submit(&url_request()).await.unwrap();
    client.submit(&url_request()).await.unwrap();
    let received = server.received.lock().unwrap();
    assert_eq!(received.len(), 3);
    assert!(received[1].at - received[0].at >= Duration::from_millis(950));
}

#[tokio::test]
async fn reads_are_retried_on_transient_errors() {
    let server = ScriptedServer::start(vec![
        Canned::html(502),
        Canned::json(200, &envelope(500, "Server exception", json!(null))),
        Canned::json(200, &envelope(455, "Maintenance", json!(null))),
        Canned::json(200, &record("t-1", "generating")),
    ])
    .await;
    let task = server
        .client()
        .get(&TaskId::new("t-1").unwrap())
        .await
        .unwrap();
    assert_eq!(task.state.as_str(), "generating");
    assert_eq!(server.hits(), 4);
}

#[tokio::test]
async fn reads_give_up_after_the_attempts() {
    let server = ScriptedServer::start(vec![Canned::html(520)]).await;
    let error = server.client().credits().await.unwrap_err();
    assert!(
        matches!(error, Error::UnexpectedResponse { status: 520, .. }),
        "{error:?}"
    );
    assert_eq!(server.hits(), 4);
}

#[tokio::test]
async fn reads_are_not_retried_on_final_answers() {
    let server = ScriptedServer::start(vec![Canned::json(
        200,
        &envelope(401, "Unauthorized", json!(null)),
    )])
    .await;
    let error = server.client().credits().await.unwrap_err();
    assert_eq!(error.kind(), "unauthorized");
    assert_eq!(server.hits(), 1);
}

#[tokio::test]
async fn the_time_budget_stops_retries() {
    let server = ScriptedServer::start(vec![Canned::html(503).header("retry-after", "30")]).await;
    let client = kling_api_ext::Client::builder()
        .api_key(KEY)
        .base_url(&server.url)
        .retry(crate::support::fast_retry().time_budget(Duration::from_secs(5)))
        .build()
        .unwrap();
    let started = Instant::now();
    // 503 with Retry-After 30 s: over the 5 s budget, so no retry at all.
    let error = client.credits().await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        matches!(error, Error::UnexpectedResponse { status: 503, .. }),
        "{error:?}"
    );
    assert_eq!(server.hits(), 1);
}
