//! The client-side creation limiter, against a mock service.

use std::time::{Duration, Instant};

use httpmock::MockServer;
use kling_api_ext::RateLimit;

use crate::support::{builder, created, url_request};

#[tokio::test]
async fn twenty_creates_pass_in_the_first_window_and_the_twenty_first_waits() {
    let server = MockServer::start_async().await;
    let mock = server.mock(|when, then| {
        when.method(httpmock::Method::POST)
            .path("/api/v1/jobs/createTask");
        then.status(200).body(created("t").to_string());
    });
    let window = Duration::from_secs(2);
    let client = builder(&server)
        .preflight(false)
        .rate_limit(Some(RateLimit::new(20, window)))
        .build()
        .unwrap();
    let request = url_request();
    let started = Instant::now();
    // Clones share the limiter: 21 concurrent submits from 21 clones.
    let handles: Vec<_> = (0..21)
        .map(|_| {
            let client = client.clone();
            let request = request.clone();
            tokio::spawn(async move {
                client.submit(&request).await.unwrap();
                started.elapsed()
            })
        })
        .collect();
    let mut done = Vec::new();
    for handle in handles {
        done.push(handle.await.unwrap());
    }
    done.sort();
    mock.assert_calls(21);
    // The 21st could only be sent a full window after an earlier answer arrived.
    assert!(done[20] >= window, "the 21st finished after {:?}", done[20]);
    // The first twenty did not wait for the window (generous bound for a busy machine).
    assert!(done[19] < window, "the 20th finished after {:?}", done[19]);
}

#[tokio::test]
async fn the_limit_can_be_turned_off() {
    let server = MockServer::start_async().await;
    let mock = server.mock(|when, then| {
        when.method(httpmock::Method::POST)
            .path("/api/v1/jobs/createTask");
        then.status(200).body(created("t").to_string());
    });
    let client = builder(&server)
        .preflight(false)
        .rate_limit(Some(RateLimit::new(1, Duration::from_secs(60))))
        .build()
        .unwrap();
    client.submit(&url_request()).await.unwrap();
    let blocked =
        tokio::time::timeout(Duration::from_millis(300), client.submit(&url_request())).await;
    assert!(
        blocked.is_err(),
        "the second create should wait for the window"
    );
    let unlimited = builder(&server)
        .preflight(false)
        .rate_limit(None)
        .build()
        .unwrap();
    for _ in 0..30 {
        unlimited.submit(&url_request()).await.unwrap();
    }
    mock.assert_calls(31);
}

#[tokio::test]
async fn clients_built_separately_with_one_key_share_the_window() {
    // The service counts per key: two clients with the same key must not get
    // twice the limit between them. A third with another key is not held back.
    let server = MockServer::start_async().await;
    let mock = server.mock(|when, then| {
        when.method(httpmock::Method::POST)
            .path("/api/v1/jobs/createTask");
        then.status(200).body(created("t").to_string());
    });
    let limit = Some(RateLimit::new(2, Duration::from_secs(60)));
    let first = builder(&server)
        .preflight(false)
        .rate_limit(limit)
        .build()
        .unwrap();
    let second = builder(&server)
        .preflight(false)
        .rate_limit(limit)
        .build()
        .unwrap();
    first.submit(&url_request()).await.unwrap();
    second.submit(&url_request()).await.unwrap();
    let blocked =
        tokio::time::timeout(Duration::from_millis(300), second.submit(&url_request())).await;
    assert!(
        blocked.is_err(),
        "the third create with the same key should wait"
    );
    let other_key = kling_api_ext::Client::builder()
        .api_key("another-account-key")
        .base_url(server.base_url())
        .upload_base_url(server.base_url())
        .preflight(false)
        .rate_limit(limit)
        .build()
        .unwrap();
    other_key.submit(&url_request()).await.unwrap();
    mock.assert_calls(3);
}
