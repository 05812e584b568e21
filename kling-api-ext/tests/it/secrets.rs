//! The API key never appears in `Debug`, `Display`, errors or logs.

use std::time::Duration;

use httpmock::MockServer;
use kling_api::mock::MockServerExt as _;
use kling_api_ext::error::{Operation, TransportKind};
use kling_api_ext::{ApiErrorKind, Error, Field, State, TaskId};
use serde_json::Value;

use crate::support::{KEY, builder, envelope};

fn assert_clean(text: &str) {
    assert!(!text.contains(KEY), "the key leaked: {text}");
    assert!(
        !text.contains("9f8e7d6c5b4a"),
        "part of the key leaked: {text}"
    );
}

async fn transport_error() -> reqwest::Error {
    kling_api_ext::config::install_tls_provider();
    kling_api_ext::reqwest::Client::new()
        .get(format!(
            "http://127.0.0.1:{}/",
            crate::support::closed_port()
        ))
        .send()
        .await
        .unwrap_err()
}

#[tokio::test]
async fn client_config_and_every_error_variant_hide_the_key() {
    let server = MockServer::start_async().await;
    let config = builder(&server);
    assert_clean(&format!("{config:?}"));
    let client = config.build().unwrap();
    assert_clean(&format!("{client:?}"));
    assert_clean(&format!("{:?}", client.raw()));
    let id = TaskId::new("t-1").unwrap();
    let variants = vec![
        Error::InvalidInput {
            field: Field::Prompt,
            subject: None,
            reason: "r".into(),
        },
        Error::Api {
            operation: Operation::GetTask,
            task_id: Some(id.clone()),
            msg: "m".into(),
            code: 401,
            kind: ApiErrorKind::Unauthorized,
            retry_after: None,
        },
        Error::Api {
            operation: Operation::CreateTask,
            task_id: None,
            msg: "m".into(),
            code: 402,
            kind: ApiErrorKind::InsufficientCredits,
            retry_after: None,
        },
        Error::Api {
            operation: Operation::GetTask,
            task_id: Some(id.clone()),
            code: 422,
            msg: "m".into(),
            kind: ApiErrorKind::NotFound,
            retry_after: None,
        },
        Error::Api {
            operation: Operation::CreateTask,
            task_id: None,
            code: 422,
            msg: "m".into(),
            kind: ApiErrorKind::Rejected,
            retry_after: None,
        },
        Error::Api {
            operation: Operation::CreateTask,
            task_id: None,
            code: 429,
            retry_after: Some(Duration::from_secs(1)),
            msg: "m".into(),
            kind: ApiErrorKind::RateLimited,
        },
        Error::Api {
            operation: Operation::GetTask,
            task_id: None,
            msg: "m".into(),
            code: 455,
            kind: ApiErrorKind::Maintenance,
            retry_after: None,
        },
        Error::Api {
            operation: Operation::GetTask,
            task_id: None,
            msg: "m".into(),
            code: 500,
            kind: ApiErrorKind::ServerError,
            retry_after: None,
        },
        Error::GenerationFailed {
            operation: Some(Operation::GetTask),
            task_id: Some(id.clone()),
            fail_code: Some("1".into()),
            fail_msg: Some("f".into()),
        },
        Error::Api {
            operation: Operation::GetTask,
            task_id: None,
            msg: "m".into(),
            code: 505,
            kind: ApiErrorKind::FeatureDisabled,
            retry_after: None,
        },
        Error::Api {
            operation: Operation::GetTask,
            task_id: None,
            code: 999,
            msg: "m".into(),
            kind: ApiErrorKind::Unknown,
            retry_after: None,
        },
        Error::Transport {
            operation: Operation::GetTask,
            subject: None,
            task_id: None,
            kind: TransportKind::Connect,
            may_have_reached_server: false,
            source: transport_error().await,
        },
        Error::UnexpectedResponse {
            operation: Operation::GetTask,
            task_id: None,
            status: 502,
            detail: "d".into(),
            body: "b".into(),
            retry_after: None,
        },
        Error::SubmitOutcomeUnknown {
            cause: Box::new(Error::Api {
                operation: Operation::CreateTask,
                task_id: None,
                msg: "m".into(),
                code: 500,
                kind: ApiErrorKind::ServerError,
                retry_after: None,
            }),
        },
        Error::WaitTimedOut {
            task_id: id.clone(),
            elapsed: Duration::from_secs(1),
            last_state: State::Generating,
            polls: 3,
            last_problem: None,
        },
        Error::Cancelled {
            task_id: id.clone(),
        },
        Error::LinkExpired {
            task_id: Some(id.clone()),
            url: "https://files.example.com/v.mp4".into(),
            status: 404,
        },
        Error::Io {
            operation: Operation::Download,
            task_id: None,
            path: "/tmp/x".into(),
            source: std::io::Error::other("disk full"),
        },
        Error::Api {
            operation: Operation::CreateTask,
            task_id: None,
            msg: "m".into(),
            code: 433,
            kind: ApiErrorKind::UsageLimited,
            retry_after: None,
        },
        Error::ResultMissing {
            task_id: id.clone(),
            last_state: Some(State::Success),
            polls: 3,
            detail: "d".into(),
        },
        Error::NotSent {
            operation: Operation::CreateTask,
        },
        Error::NotEnded {
            task_id: id.clone(),
            state: State::Generating,
        },
    ];
    for error in &variants {
        assert_clean(&format!("{error:?}"));
        assert_clean(&format!("{error}"));
    }
    // One of each kind: the 12 variants, the API error in its 10 kinds.
    let kinds: std::collections::HashSet<&str> = variants.iter().map(Error::kind).collect();
    assert_eq!(kinds.len(), variants.len(), "no kind twice");
    assert_eq!(variants.len(), 22, "one of each kind");
}

#[tokio::test]
async fn a_service_that_echoes_the_key_does_not_make_it_leak() {
    let server = MockServer::start_async().await;
    server.get_account_credits(|_, then| {
        then.into_inner()
            .status(200)
            .body(envelope(401, &format!("Invalid key {KEY}"), Value::Null).to_string());
    });
    server.get_task_details(|_, then| {
        then.into_inner()
            .status(502)
            .body(format!("<html>bad gateway for Bearer {KEY}</html>"));
    });
    let client = builder(&server)
        .retry(kling_api_ext::RetryPolicy::none())
        .build()
        .unwrap();
    let error = client.credits().await.unwrap_err();
    assert_eq!(error.kind(), "unauthorized");
    assert_clean(&format!("{error} {error:?}"));
    let error = client.get(&TaskId::new("t").unwrap()).await.unwrap_err();
    assert_clean(&format!("{error} {error:?}"));
    assert!(format!("{error}").contains("[redacted]"), "{error}");
}
