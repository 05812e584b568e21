//! The ready callback endpoint (feature `receiver`).

use std::time::Duration;

use kling_fleet::receiver::{ReceiverConfig, ServeOptions, hub_router, router};
use kling_testkit::sign_callback;
use serde_json::{Value, json};

const BODY: &str = r#"{"code":200,"msg":"Playground task completed successfully.","data":{"taskId":"task-9","model":"kling/ai-avatar-v1-pro","state":"success","param":"{}","resultJson":"{\"resultUrls\":[\"https://files.example.com/v.mp4\"]}","costTime":12}}"#;

async fn serve(
    config: ReceiverConfig,
) -> (
    String,
    tokio::sync::mpsc::Receiver<kling_fleet::CallbackNotice>,
) {
    let (app, events) = router(config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, events)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn http() -> kling_api_ext::reqwest::Client {
    kling_api_ext::config::install_tls_provider();
    kling_api_ext::reqwest::Client::new()
}

async fn post(url: &str, body: &str, timestamp: i64, signature: &str) -> (u16, Value) {
    let response = http()
        .post(url)
        .header("content-type", "application/json")
        .header("x-webhook-timestamp", timestamp.to_string())
        .header("x-webhook-signature", signature)
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn a_signed_callback_is_answered_and_handed_over() {
    let (url, mut events) = serve(ReceiverConfig::signed("hook-key").unwrap()).await;
    let ts = now();
    let (status, body) = post(&url, BODY, ts, &sign_callback(b"hook-key", "task-9", ts)).await;
    assert_eq!(
        (status, body),
        (200, json!({"code": 200, "msg": "success"}))
    );
    let event = tokio::time::timeout(Duration::from_secs(1), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(event.task_id.as_str(), "task-9");
    assert!(event.signed);
    assert_eq!(event.timestamp, Some(ts));
}

#[tokio::test]
async fn bad_signatures_stale_times_and_bad_bodies_are_refused() {
    let (url, mut events) = serve(ReceiverConfig::signed("hook-key").unwrap()).await;
    let ts = now();
    let (status, body) = post(&url, BODY, ts, &sign_callback(b"other-key", "task-9", ts)).await;
    assert_eq!((status, body["msg"].clone()), (401, json!("bad signature")));
    let old = ts - 3600;
    let (status, body) = post(&url, BODY, old, &sign_callback(b"hook-key", "task-9", old)).await;
    assert_eq!(status, 401);
    assert!(body["msg"].as_str().unwrap().starts_with("stale timestamp"));
    let (status, _) = post(
        &url,
        "<html>",
        ts,
        &sign_callback(b"hook-key", "task-9", ts),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        events.try_recv().is_err(),
        "nothing refused reaches the channel"
    );
}

#[tokio::test]
async fn bodies_are_bounded_in_size_and_time() {
    let mut config = ReceiverConfig::unsigned();
    config.max_body_bytes = 1024;
    config.read_timeout = Duration::from_millis(300);
    let (url, _events) = serve(config).await;
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(4096));
    let response = http().post(&url).body(big).send().await.unwrap();
    assert_eq!(response.status(), 413);

    // A body that never finishes arriving.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    socket
        .write_all(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{\"code\":")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let started = std::time::Instant::now();
    let _ = tokio::time::timeout(Duration::from_secs(5), socket.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn without_a_key_callbacks_are_parsed_unsigned() {
    let (url, mut events) = serve(ReceiverConfig::unsigned()).await;
    let response = http().post(&url).body(BODY).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let notice = events.recv().await.unwrap();
    assert_eq!(notice.task_id.as_str(), "task-9");
    assert!(!notice.signed);
}

#[test]
fn an_empty_key_is_refused() {
    assert_eq!(
        ReceiverConfig::signed("").unwrap_err(),
        kling_api_ext::webhook::WebhookError::EmptyKey
    );
    // verify_callback too: an empty key would make every forged signature valid.
    let mut headers = kling_api_ext::reqwest::header::HeaderMap::new();
    headers.insert("x-webhook-timestamp", now().to_string().parse().unwrap());
    headers.insert(
        "x-webhook-signature",
        sign_callback(b"", "task-9", now()).parse().unwrap(),
    );
    assert_eq!(
        kling_api_ext::verify_callback(
            &headers,
            BODY.as_bytes(),
            b"",
            std::time::SystemTime::now(),
            &Default::default()
        )
        .unwrap_err(),
        kling_api_ext::webhook::WebhookError::EmptyKey
    );
}

#[tokio::test]
async fn a_callback_seen_twice_is_handed_over_once() {
    let (url, mut events) = serve(ReceiverConfig::signed("hook-key").unwrap()).await;
    let ts = now();
    let signature = sign_callback(b"hook-key", "task-9", ts);
    for _ in 0..3 {
        let (status, _) = post(&url, BODY, ts, &signature).await;
        assert_eq!(status, 200, "a duplicate is still answered");
    }
    // The same task at another time is another callback.
    let later = ts + 1;
    post(
        &url,
        BODY,
        later,
        &sign_callback(b"hook-key", "task-9", later),
    )
    .await;
    let first = events.recv().await.unwrap();
    let second = events.recv().await.unwrap();
    assert_eq!((first.timestamp, second.timestamp), (Some(ts), Some(later)));
    assert!(events.try_recv().is_err(), "the duplicates were dropped");

    // Unsigned and without a timestamp: the same body twice is a duplicate.
    let (url, mut events) = serve(ReceiverConfig::unsigned()).await;
    for _ in 0..2 {
        let response = http().post(&url).body(BODY).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    events.recv().await.unwrap();
    assert!(events.try_recv().is_err());
}

#[tokio::test]
async fn a_full_channel_answers_503_instead_of_growing() {
    let mut config = ReceiverConfig::unsigned();
    config.channel_capacity = 2;
    let (url, mut events) = serve(config).await;
    let mut statuses = Vec::new();
    for i in 0..4 {
        let body = BODY.replace("task-9", &format!("task-{i}"));
        let response = http().post(&url).body(body).send().await.unwrap();
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 503, 503]);
    assert_eq!(events.recv().await.unwrap().task_id.as_str(), "task-0");
    // Room again: the refused one is taken when it comes back.
    let response = http()
        .post(&url)
        .body(BODY.replace("task-9", "task-2"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

/// A receiver served by `receiver::serve` with a short header limit.
async fn served_with_limits() -> (std::net::SocketAddr, kling_fleet::CallbackHub) {
    let hub = kling_fleet::CallbackHub::new();
    let app = hub_router(ReceiverConfig::unsigned(), hub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let options = ServeOptions::default()
        .header_timeout(Duration::from_millis(300))
        .max_connections(4);
    tokio::spawn(kling_fleet::receiver::serve(listener, app, options));
    (addr, hub)
}

#[tokio::test]
async fn serve_closes_a_connection_that_never_finishes_its_headers() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (addr, hub) = served_with_limits().await;
    hub.expect_nonce("0123456789abcdef");
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"POST / HTTP/1.1\r\nHost: hooks\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), slow.read_to_end(&mut answer))
        .await
        .expect("the connection is closed, not held")
        .ok();
    // Meanwhile, and after, callbacks are taken.
    let response = http()
        .post(format!("http://{addr}/0123456789abcdef"))
        .body(BODY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        hub.task_for_nonce("0123456789abcdef").unwrap().as_str(),
        "task-9"
    );
}

#[tokio::test]
async fn serve_holds_no_more_connections_than_its_limit() {
    let (addr, hub) = served_with_limits().await;
    hub.expect_task(&kling_api_ext::TaskId::new("task-9").unwrap());
    // Four idle connections take every slot; they are cut at the header limit,
    // and the fifth caller is served then.
    let idle: Vec<_> = futures_idle(addr, 4).await;
    let started = std::time::Instant::now();
    let response = http()
        .post(format!("http://{addr}/"))
        .body(BODY)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        hub.callbacks_for(&kling_api_ext::TaskId::new("task-9").unwrap()),
        1
    );
    drop(idle);
}

async fn futures_idle(addr: std::net::SocketAddr, n: usize) -> Vec<tokio::net::TcpStream> {
    let mut streams = Vec::new();
    for _ in 0..n {
        streams.push(tokio::net::TcpStream::connect(addr).await.unwrap());
    }
    // Let the server accept them all.
    tokio::time::sleep(Duration::from_millis(50)).await;
    streams
}

#[tokio::test]
async fn idle_connections_from_one_address_do_not_delay_another_address_s_callback() {
    // Idle connections are held for a whole minute: a callback that had to
    // wait for one to go would come far too late.
    // Loopback stands for two public addresses here: capped like them.
    let options = ServeOptions::default()
        .header_timeout(Duration::from_secs(60))
        .cap_loopback(true);
    let (addr, hub, nonce) = served_with(options).await;
    // 600 idle connections from another address (loopback's 127.0.0.2).
    let mut idle = Vec::new();
    for _ in 0..600 {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        if let Ok(stream) = socket.connect(addr).await {
            idle.push(stream);
        }
    }
    assert!(idle.len() >= 500, "{} connections made", idle.len());
    tokio::time::sleep(Duration::from_millis(100)).await;
    answered_within_20_s(addr, &hub, &nonce).await;
    drop(idle);
}

#[tokio::test]
async fn a_local_tunnel_s_connections_are_not_capped_as_one_address() {
    let options = ServeOptions::default().header_timeout(Duration::from_secs(60));
    let (addr, hub, nonce) = served_with(options).await;
    // Behind cloudflared or nginx every connection comes from loopback:
    // 80 idle ones (past 8 served and 64 waiting) must not close the rest.
    let idle = futures_idle(addr, 80).await;
    answered_within_20_s(addr, &hub, &nonce).await;
    drop(idle);
}

/// A receiver served by `receiver::serve` with `options`, its hub, and a
/// nonce the hub issued.
async fn served_with(
    options: ServeOptions,
) -> (std::net::SocketAddr, kling_fleet::CallbackHub, String) {
    let hub = kling_fleet::CallbackHub::new();
    let nonce = hub.issue_nonce();
    let app = hub_router(ReceiverConfig::unsigned(), hub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(kling_fleet::receiver::serve(listener, app, options));
    (addr, hub, nonce)
}

/// A callback on `nonce` is answered, and heard, within 20 s: far below the
/// minute the tests' idle connections are held.
async fn answered_within_20_s(
    addr: std::net::SocketAddr,
    hub: &kling_fleet::CallbackHub,
    nonce: &str,
) {
    let response = tokio::time::timeout(
        Duration::from_secs(20),
        http()
            .post(format!("http://{addr}/{nonce}"))
            .body(BODY)
            .send(),
    )
    .await
    .expect("the callback is answered while the idle connections are held")
    .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(hub.task_for_nonce(nonce).unwrap().as_str(), "task-9");
}
