//! Every way the service can answer, mapped to the typed error (single
//! attempts: retries are in `retry`).

use std::time::Duration;

use httpmock::MockServer;
use kling_api::mock::MockServerExt as _;
use kling_api_ext::error::{Operation, TransportKind};
use kling_api_ext::{ApiErrorKind, Error, State, TaskId};
use serde_json::{Value, json};

use crate::support::{KEY, client, closed_port, envelope, record, resetting_server};

fn id() -> TaskId {
    TaskId::new("c420e5a6f3b84ad2b6c1e4d0a9f7b311").unwrap()
}

/// One recordInfo answer, one attempt.
async fn get_once_with(
    status: u16,
    body: &str,
    content_type: &str,
) -> Result<kling_api_ext::Task, Error> {
    let server = MockServer::start_async().await;
    let mock = server.get_task_details(|when, then| {
        when.task_id(id().as_str());
        then.into_inner()
            .status(status)
            .header("content-type", content_type)
            .body(body);
    });
    let result = client(&server).get_once(&id()).await;
    mock.assert_calls(1);
    result
}

async fn get_json(body: Value) -> Result<kling_api_ext::Task, Error> {
    get_once_with(200, &body.to_string(), "application/json").await
}

#[tokio::test]
async fn each_envelope_code_maps_to_its_variant_with_operation_task_and_message() {
    for (code, msg, kind) in [
        (401, "You do not have access permissions", "unauthorized"),
        (402, "Insufficient credits", "insufficient_credits"),
        (404, "Task not found", "not_found"),
        (422, "recordInfo is null", "not_found"),
        (422, "taskId is wrong", "rejected"),
        (400, "taskId parameter is required", "rejected"),
        (429, "Rate limit exceeded", "rate_limited"),
        (433, "Sub-key usage exceeds limit", "usage_limited"),
        (455, "Service under maintenance", "maintenance"),
        (
            500,
            "Server exception, please try again later",
            "server_error",
        ),
        (500, "This field is required", "rejected"),
        (501, "Playground task failed.", "generation_failed"),
        (505, "Feature disabled", "feature_disabled"),
        (418, "I'm a teapot", "unknown_code"),
    ] {
        let error = get_json(envelope(code, msg, Value::Null))
            .await
            .unwrap_err();
        assert_eq!(error.kind(), kind, "code {code} {msg}");
        assert_eq!(error.task_id(), Some(&id()), "code {code}");
        assert!(error.to_string().contains(msg), "code {code}: {error}");
        assert_eq!(error.operation(), Some(Operation::GetTask), "code {code}");
        if kind != "generation_failed" {
            assert_eq!(error.code(), Some(code));
        }
    }
}

#[tokio::test]
async fn not_found_reads_as_a_sentence() {
    let error = get_json(envelope(422, "recordInfo is null", Value::Null))
        .await
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "recordInfo: not found (code 422) for task c420e5a6f3b84ad2b6c1e4d0a9f7b311: recordInfo is null"
    );
    assert!(!error.is_retryable());
}

#[tokio::test]
async fn message_instead_of_msg_is_kept() {
    let error = get_json(json!({"code": 401, "message": "Authentication failed"}))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::Api { kind: ApiErrorKind::Unauthorized, msg, .. } if msg == "Authentication failed"),
        "{error:?}"
    );
}

#[tokio::test]
async fn an_html_page_with_200_keeps_status_and_body() {
    let page = "<!DOCTYPE html><html><body>Just a moment...</body></html>";
    match get_once_with(200, page, "text/html").await.unwrap_err() {
        Error::UnexpectedResponse {
            status,
            body,
            detail,
            operation,
            task_id,
            ..
        } => {
            assert_eq!(
                (status, body.as_str(), operation),
                (200, page, Operation::GetTask)
            );
            assert!(
                detail.starts_with("the body is not the expected envelope"),
                "{detail}"
            );
            assert_eq!(task_id, Some(id()));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn proxy_statuses_keep_status_and_the_first_kib() {
    let page = format!("<html>{}</html>", "x".repeat(3000));
    for status in [502, 520] {
        match get_once_with(status, &page, "text/html").await.unwrap_err() {
            Error::UnexpectedResponse {
                status: got, body, ..
            } => {
                assert_eq!(got, status);
                assert!(body.starts_with("<html>xxx"));
                assert!(body.len() <= 1024 + 3, "{}", body.len());
            }
            other => panic!("{other:?}"),
        }
    }
}

#[tokio::test]
async fn an_error_status_carrying_the_envelope_is_read() {
    let error = get_once_with(
        503,
        r#"{"code":455,"msg":"maintenance until 18:00"}"#,
        "application/json",
    )
    .await
    .unwrap_err();
    assert_eq!(error.kind(), "maintenance");
}

#[tokio::test]
async fn http_429_is_rate_limited_with_retry_after() {
    let server = MockServer::start_async().await;
    server.get_account_credits(|_, then| {
        then.into_inner()
            .status(429)
            .header("retry-after", "7")
            .body("Too Many Requests");
    });
    let client = crate::support::builder(&server)
        .retry(kling_api_ext::RetryPolicy::none())
        .build()
        .unwrap();
    let error = client.credits().await.unwrap_err();
    assert_eq!(error.kind(), "rate_limited");
    assert_eq!(error.retry_after(), Some(Duration::from_secs(7)));
}

#[tokio::test]
async fn success_without_data_or_code_is_not_a_silent_success() {
    let error = get_json(envelope(200, "success", Value::Null))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::UnexpectedResponse { detail, .. } if detail.contains("no data")),
        "{error:?}"
    );
    let error = get_json(json!({"msg": "success", "data": record("t", "waiting")["data"]}))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::UnexpectedResponse { detail, .. } if detail.contains("no code")),
        "{error:?}"
    );
    // A record without its required state.
    let error = get_json(json!({"code": 200, "msg": "success", "data": {"taskId": "t"}}))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), "unexpected_response");
}

#[tokio::test]
async fn task_records_parse_into_the_typed_view() {
    let task = get_json(record(id().as_str(), "generating")).await.unwrap();
    assert_eq!(task.state, State::Generating);
    assert!(task.result_urls.is_empty());

    let mut unknown = record(id().as_str(), "waiting");
    unknown["data"]["state"] = json!("pending_review");
    let task = get_json(unknown).await.unwrap();
    assert_eq!(task.state, State::Unknown("pending_review".into()));
    assert!(!task.state.is_terminal());

    let task = get_json(record(id().as_str(), "success")).await.unwrap();
    assert_eq!(task.state, State::Success);
    assert_eq!(
        task.video_url().unwrap().as_str(),
        format!("https://files.example.com/{}.mp4", id())
    );
    assert_eq!(task.cost_time, Some(Duration::from_secs(127)));

    let mut int_code = record(id().as_str(), "fail");
    int_code["data"]["failCode"] = json!(500);
    let task = get_json(int_code).await.unwrap();
    assert_eq!(task.state, State::Fail);
    let error = task.into_result().unwrap_err();
    assert_eq!(
        error.to_string(),
        format!(
            "generation failed for task {} (failCode 500): face not detected",
            id()
        )
    );
}

#[tokio::test]
async fn credits_and_download_links() {
    let server = MockServer::start_async().await;
    server.get_account_credits(|_, then| {
        then.into_inner()
            .status(200)
            .body(envelope(200, "success", json!(5916.25)).to_string());
    });
    server.get_download_url(|when, then| {
        let body: kling_api::types::GetDownloadUrlBody =
            kling_api::types::GetDownloadUrlBody::builder()
                .url("https://files.example.com/v.mp4")
                .try_into()
                .unwrap();
        when.body(&body);
        then.into_inner().status(200).body(
            envelope(200, "success", json!("https://dl.example.com/v.mp4?exp=1")).to_string(),
        );
    });
    let client = client(&server);
    assert_eq!(client.credits().await.unwrap(), 5916.25);
    let link = client
        .download_url(&"https://files.example.com/v.mp4".parse().unwrap())
        .await
        .unwrap();
    assert_eq!(link.as_str(), "https://dl.example.com/v.mp4?exp=1");
}

#[tokio::test]
async fn no_connection_means_not_sent() {
    let client = kling_api_ext::Client::builder()
        .api_key(KEY)
        .base_url(format!("http://127.0.0.1:{}", closed_port()))
        .retry(kling_api_ext::RetryPolicy::none())
        .build()
        .unwrap();
    match client.get(&id()).await.unwrap_err() {
        Error::Transport {
            kind,
            may_have_reached_server,
            operation,
            ..
        } => {
            assert_eq!(
                (kind, may_have_reached_server, operation),
                (TransportKind::Connect, false, Operation::GetTask)
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_reset_after_sending_may_have_reached_the_service() {
    let (url, _server) = resetting_server().await;
    let client = kling_api_ext::Client::builder()
        .api_key(KEY)
        .base_url(url)
        .retry(kling_api_ext::RetryPolicy::none())
        .build()
        .unwrap();
    let error = client.credits().await.unwrap_err();
    match &error {
        Error::Transport {
            may_have_reached_server,
            ..
        } => assert!(*may_have_reached_server),
        other => panic!("{other:?}"),
    }
    assert!(error.is_retryable());
    assert!(
        error
            .to_string()
            .ends_with("the request may have reached the service"),
        "{error}"
    );
}

#[tokio::test]
async fn a_slow_answer_times_out() {
    let server = MockServer::start_async().await;
    server.get_account_credits(|_, then| {
        then.into_inner()
            .status(200)
            .delay(Duration::from_secs(3))
            .body(envelope(200, "success", json!(1)).to_string());
    });
    let client = crate::support::builder(&server)
        .request_timeout(Duration::from_millis(300))
        .retry(kling_api_ext::RetryPolicy::none())
        .build()
        .unwrap();
    match client.credits().await.unwrap_err() {
        Error::Transport {
            kind,
            may_have_reached_server,
            ..
        } => {
            assert_eq!(
                (kind, may_have_reached_server),
                (TransportKind::Timeout, true)
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn requests_carry_the_key_and_the_user_agent() {
    let server = MockServer::start_async().await;
    let mock = server.get_account_credits(|when, then| {
        when.into_inner()
            .header("authorization", format!("Bearer {KEY}"))
            .header("user-agent", kling_api_ext::config::DEFAULT_USER_AGENT);
        then.into_inner()
            .status(200)
            .body(envelope(200, "success", json!(3)).to_string());
    });
    assert_eq!(client(&server).credits().await.unwrap(), 3.0);
    mock.assert_calls(1);
    assert!(kling_api_ext::config::DEFAULT_USER_AGENT.starts_with("kling-rs/"));
}

#[tokio::test]
async fn your_own_reqwest_client_still_sends_key_and_user_agent() {
    let server = MockServer::start_async().await;
    let mock = server.get_account_credits(|when, then| {
        when.into_inner()
            .header("authorization", format!("Bearer {KEY}"))
            .header("user-agent", kling_api_ext::config::DEFAULT_USER_AGENT);
        then.into_inner()
            .status(200)
            .body(envelope(200, "success", json!(3)).to_string());
    });
    kling_api_ext::config::install_tls_provider();
    let own = kling_api_ext::reqwest::Client::builder().build().unwrap();
    let client = crate::support::builder(&server)
        .http_client(own)
        .build()
        .unwrap();
    assert_eq!(client.credits().await.unwrap(), 3.0);
    mock.assert_calls(1);
}

#[tokio::test]
async fn your_own_reqwest_client_sends_the_user_agent_on_preflight_and_download_too() {
    // Preflight and downloads go to other hosts without the generated client's
    // headers; they still say who they are.
    let server = MockServer::start_async().await;
    let head = server.mock(|when, then| {
        when.method(httpmock::Method::HEAD)
            .path("/face.png")
            .header("user-agent", kling_api_ext::config::DEFAULT_USER_AGENT);
        then.status(200)
            .header("content-type", "image/png")
            .header("content-length", "1000");
    });
    let video = server.mock(|when, then| {
        when.method(httpmock::Method::GET)
            .path("/video.mp4")
            .header("user-agent", kling_api_ext::config::DEFAULT_USER_AGENT);
        then.status(200).body("0123456789");
    });
    kling_api_ext::config::install_tls_provider();
    let own = kling_api_ext::reqwest::Client::builder().build().unwrap();
    let client = crate::support::builder(&server)
        .http_client(own)
        .build()
        .unwrap();
    let request = kling_api_ext::AvatarRequest::builder()
        .image(server.url("/face.png"))
        .audio(server.url("/voice.mp3"))
        .build()
        .unwrap();
    // The audio URL has no mock: preflight fails on it, after checking the image.
    let _ = client.prepare(&request).await;
    head.assert_calls(1);
    let dir = tempfile::tempdir().unwrap();
    let saved = client
        .download(
            url::Url::parse(&server.url("/video.mp4")).unwrap(),
            dir.path().join("v.mp4"),
        )
        .await
        .unwrap();
    assert_eq!(saved.bytes, 10);
    video.assert_calls(1);
}
