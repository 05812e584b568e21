//! Submitting: local files are uploaded, URLs preflighted, the task created
//! with exactly what was checked; invalid input never reaches the service.

use httpmock::{Method, MockServer};
use kling_api_ext::{AvatarRequest, Client, Error, Field, Model, TaskId};
use serde_json::json;

use crate::support::{KEY, asset, builder, client, copy_as, created, data, png_head, uploaded};

fn mock_create<'a>(server: &'a MockServer, expected_body: serde_json::Value) -> httpmock::Mock<'a> {
    server.mock(|when, then| {
        when.method(Method::POST)
            .path("/api/v1/jobs/createTask")
            .json_body(expected_body);
        then.status(200)
            .body(created("c420e5a6f3b84ad2b6c1e4d0a9f7b311").to_string());
    })
}

fn any_create(server: &MockServer) -> httpmock::Mock<'_> {
    server.mock(|when, then| {
        when.method(Method::POST).path("/api/v1/jobs/createTask");
        then.status(200).body(created("t").to_string());
    })
}

fn any_upload(server: &MockServer) -> httpmock::Mock<'_> {
    server.mock(|when, then| {
        when.method(Method::POST).path_includes("upload");
        then.status(200)
            .body(uploaded("https://files.example.com/x").to_string());
    })
}

#[tokio::test]
async fn local_files_are_streamed_up_then_the_task_is_created_with_their_urls() {
    let server = MockServer::start_async().await;
    let image_upload = server.mock(|when, then| {
        when.method(Method::POST)
            .path("/api/file-stream-upload")
            .header("authorization", format!("Bearer {}", crate::support::KEY))
            .header_includes("content-type", "multipart/form-data")
            .body_includes("Content-Type: image/png")
            .body_includes("name=\"uploadPath\"\r\n\r\nkling-rs/images")
            .body_matches(regex::Regex::new(r#"filename="face-\d+-[0-9a-f]{6}\.png""#).unwrap());
        then.status(200)
            .body(uploaded("https://files.example.com/face.png").to_string());
    });
    let audio_upload = server.mock(|when, then| {
        when.method(Method::POST)
            .path("/api/file-stream-upload")
            .body_includes("Content-Type: audio/wav")
            .body_includes("kling-rs/audio");
        then.status(200)
            .body(uploaded("https://files.example.com/hello.wav").to_string());
    });
    let create = mock_create(
        &server,
        json!({
            "model": "kling/ai-avatar-v1-pro",
            "callBackUrl": "https://example.com/callback",
            "input": {
                "image_url": "https://files.example.com/face.png",
                "audio_url": "https://files.example.com/hello.wav",
                "prompt": "Bonjour, ça va ?"
            }
        }),
    );
    let request = AvatarRequest::builder()
        .image(asset("face.png"))
        .audio(asset("hello.wav"))
        .prompt("Bonjour, ça va ?")
        .callback_url("https://example.com/callback")
        .build()
        .unwrap();
    let id = client(&server).submit(&request).await.unwrap();
    assert_eq!(id, TaskId::new("c420e5a6f3b84ad2b6c1e4d0a9f7b311").unwrap());
    image_upload.assert_calls(1);
    audio_upload.assert_calls(1);
    create.assert_calls(1);
}

#[tokio::test]
async fn the_model_is_sent_as_chosen() {
    let server = MockServer::start_async().await;
    let create = mock_create(
        &server,
        json!({"model": "kling/ai-avatar-standard", "input": {
            "image_url": "https://cdn.example.com/face.png", "audio_url": "https://cdn.example.com/hello.mp3", "prompt": ""}}),
    );
    let request = AvatarRequest::builder()
        .image("https://cdn.example.com/face.png")
        .audio("https://cdn.example.com/hello.mp3")
        .model(Model::AvatarStandard)
        .build()
        .unwrap();
    builder(&server)
        .preflight(false)
        .build()
        .unwrap()
        .submit(&request)
        .await
        .unwrap();
    create.assert_calls(1);
}

/// `ClientBuilder::model` is the model of every request that chooses none.
#[tokio::test]
async fn the_clients_model_is_the_default_of_requests() {
    let server = MockServer::start_async().await;
    let create = mock_create(
        &server,
        json!({"model": "kling/v1-avatar-standard", "input": {
            "image_url": "https://cdn.example.com/face.png", "audio_url": "https://cdn.example.com/hello.mp3", "prompt": ""}}),
    );
    let request = AvatarRequest::builder()
        .image("https://cdn.example.com/face.png")
        .audio("https://cdn.example.com/hello.mp3")
        .build()
        .unwrap();
    let client = builder(&server)
        .preflight(false)
        .model(Model::V1AvatarStandard)
        .build()
        .unwrap();
    assert_eq!(client.model_for(&request), &Model::V1AvatarStandard);
    client.submit(&request).await.unwrap();
    create.assert_calls(1);
}

/// An `input` field the spec does not know is sent as given, with the key
/// and the model, on the same endpoint.
#[tokio::test]
async fn an_extra_input_field_reaches_the_service() {
    let server = MockServer::start_async().await;
    let create = server.mock(|when, then| {
        when.method(Method::POST)
            .path("/api/v1/jobs/createTask")
            .header("authorization", format!("Bearer {KEY}"))
            .json_body(json!({"model": "acme/avatar-9", "callBackUrl": "https://example.com/cb", "input": {
                "image_url": "https://cdn.example.com/face.png", "audio_url": "https://cdn.example.com/hello.mp3",
                "prompt": "hi", "expression": "smile", "seed": 7}}));
        then.status(200)
            .body(created("c420e5a6f3b84ad2b6c1e4d0a9f7b311").to_string());
    });
    let request = AvatarRequest::builder()
        .image("https://cdn.example.com/face.png")
        .audio("https://cdn.example.com/hello.mp3")
        .prompt("hi")
        .callback_url("https://example.com/cb")
        .model(Model::custom("acme/avatar-9"))
        .extra_input("expression", "smile")
        .extra_input("seed", 7)
        .build()
        .unwrap();
    assert_eq!(request.warnings().len(), 3, "{:?}", request.warnings());
    let id = builder(&server)
        .preflight(false)
        .build()
        .unwrap()
        .submit(&request)
        .await
        .unwrap();
    assert_eq!(id.as_str(), "c420e5a6f3b84ad2b6c1e4d0a9f7b311");
    create.assert_calls(1);
}

/// Builds requests from bad input and submits whatever builds, against a
/// service that would accept anything: nothing may reach it.
#[tokio::test]
async fn invalid_input_makes_no_request_at_all() {
    let server = MockServer::start_async().await;
    let create = any_create(&server);
    let upload = any_upload(&server);
    let client = client(&server);
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.png");
    std::fs::write(&empty, b"").unwrap();
    let oversized = dir.path().join("big.png");
    std::fs::write(&oversized, png_head(512, 512)).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&oversized)
        .unwrap()
        .set_len(10_000_001)
        .unwrap();
    let mislabelled = copy_as(&data("face.jpg"), dir.path(), "face.png");
    let cases: Vec<(&str, Result<AvatarRequest, Error>)> = vec![
        (
            "prompt over 5000",
            AvatarRequest::builder()
                .image(asset("face.png"))
                .audio(asset("hello.wav"))
                .prompt("é".repeat(5001))
                .build(),
        ),
        (
            "gif",
            AvatarRequest::builder()
                .image(data("face.gif"))
                .audio(asset("hello.wav"))
                .build(),
        ),
        (
            "video as audio",
            AvatarRequest::builder()
                .image(asset("face.png"))
                .audio(data("video.mp4"))
                .build(),
        ),
        (
            "empty",
            AvatarRequest::builder()
                .image(&empty)
                .audio(asset("hello.wav"))
                .build(),
        ),
        (
            "over 10 MB",
            AvatarRequest::builder()
                .image(&oversized)
                .audio(asset("hello.wav"))
                .build(),
        ),
        (
            "extension lies",
            AvatarRequest::builder()
                .image(&mislabelled)
                .audio(asset("hello.wav"))
                .build(),
        ),
        (
            "missing",
            AvatarRequest::builder()
                .image(dir.path().join("nope.png"))
                .audio(asset("hello.wav"))
                .build(),
        ),
        (
            "directory",
            AvatarRequest::builder()
                .image(dir.path())
                .audio(asset("hello.wav"))
                .build(),
        ),
        (
            "ftp url",
            AvatarRequest::builder()
                .image("ftp://x.example.com/a.png")
                .audio(asset("hello.wav"))
                .build(),
        ),
        (
            "relative callback",
            AvatarRequest::builder()
                .image(asset("face.png"))
                .audio(asset("hello.wav"))
                .callback_url("/cb")
                .build(),
        ),
        (
            "no audio",
            AvatarRequest::builder().image(asset("face.png")).build(),
        ),
    ];
    for (label, built) in cases {
        match built {
            Err(Error::InvalidInput { .. }) => {}
            Err(other) => panic!("{label}: expected InvalidInput, got {other:?}"),
            Ok(request) => panic!("{label}: built {request:?}"),
        }
    }
    // A file that changes after it was checked is refused at upload time.
    let changing = copy_as(&asset("face.png"), dir.path(), "changing.png");
    let request = AvatarRequest::builder()
        .image(&changing)
        .audio(asset("hello.wav"))
        .build()
        .unwrap();
    std::fs::write(&changing, [0u8; 10]).unwrap();
    let error = client.submit(&request).await.unwrap_err();
    assert!(
        matches!(&error, Error::InvalidInput { field: Field::Image, reason, .. } if reason.contains("changed")),
        "{error:?}"
    );
    create.assert_calls(0);
    upload.assert_calls(0);
}

/// A media server for preflight tests.
async fn media_server(head_status: u16, content_type: &str, length: &str) -> MockServer {
    let server = MockServer::start_async().await;
    let (content_type, length) = (content_type.to_owned(), length.to_owned());
    server.mock(|when, then| {
        when.method(Method::HEAD).path("/media");
        then.status(head_status)
            .header("content-type", &content_type)
            .header("content-length", &length);
    });
    let mut png = png_head(640, 800);
    png.resize(2000, 0);
    server.mock(|when, then| {
        when.method(Method::GET)
            .path("/media")
            .header("range", "bytes=0-65535");
        then.status(206)
            .header("content-type", "application/octet-stream")
            .header("content-range", "bytes 0-1999/123456")
            .body(png);
    });
    server
}

async fn preflight_image(media: &MockServer) -> Result<AvatarRequest, Error> {
    let api = MockServer::start_async().await;
    let create = any_create(&api);
    let request = AvatarRequest::builder()
        .image(format!("{}/media", media.base_url()))
        .audio(asset("hello.wav"))
        .build()
        .unwrap();
    let result = client(&api).preflight(&request).await;
    create.assert_calls(0);
    result
}

#[tokio::test]
async fn preflight_accepts_a_url_serving_an_allowed_type() {
    let media = media_server(200, "image/png", "123456").await;
    let checked = preflight_image(&media).await.unwrap();
    let facts = checked.image().facts().unwrap();
    assert_eq!((facts.mime, facts.bytes), ("image/png", Some(123456)));
}

#[tokio::test]
async fn preflight_falls_back_to_a_ranged_get_when_head_is_refused() {
    // Presigned URLs are often signed for GET only.
    let media = media_server(403, "application/xml", "0").await;
    let checked = preflight_image(&media).await.unwrap();
    let facts = checked.image().facts().unwrap();
    assert_eq!(facts.mime, "image/png");
    assert_eq!(facts.bytes, Some(123456));
    assert_eq!(facts.dimensions, Some((640, 800)));
}

#[tokio::test]
async fn preflight_sniffs_the_bytes_behind_a_generic_type() {
    let media = media_server(200, "application/octet-stream", "123456").await;
    assert_eq!(
        preflight_image(&media)
            .await
            .unwrap()
            .image()
            .facts()
            .unwrap()
            .mime,
        "image/png"
    );
}

#[tokio::test]
async fn preflight_refuses_wrong_types_sizes_and_dead_links() {
    for (status, content_type, length, why) in [
        (
            200,
            "text/html; charset=utf-8",
            "5000",
            "the URL serves text/html; charset=utf-8; allowed: image/jpeg",
        ),
        (200, "image/gif", "5000", "the URL serves image/gif"),
        (
            200,
            "image/png",
            "10000001",
            "the file is 10000001 bytes; the limit is 10000000",
        ),
        (200, "image/png", "0", "the file is empty"),
        (404, "text/html", "10", "the URL answers HTTP 404 Not Found"),
    ] {
        let media = MockServer::start_async().await;
        media.mock(|when, then| {
            when.path("/media");
            then.status(status)
                .header("content-type", content_type)
                .header("content-length", length);
        });
        let error = preflight_image(&media).await.unwrap_err();
        match &error {
            Error::InvalidInput {
                field: Field::Image,
                reason,
                ..
            } => assert!(reason.starts_with(why), "{reason}"),
            other => panic!("{why}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn submit_preflights_urls_and_sends_nothing_when_one_is_bad() {
    let media = MockServer::start_async().await;
    media.mock(|when, then| {
        when.path("/face.png");
        then.status(200)
            .header("content-type", "text/html")
            .header("content-length", "100");
    });
    let api = MockServer::start_async().await;
    let create = any_create(&api);
    let request = AvatarRequest::builder()
        .image(format!("{}/face.png", media.base_url()))
        .audio(asset("hello.wav"))
        .build()
        .unwrap();
    let upload = any_upload(&api);
    let error = client(&api).submit(&request).await.unwrap_err();
    assert_eq!(error.kind(), "invalid_input");
    create.assert_calls(0);
    upload.assert_calls(0);
}

#[tokio::test]
async fn create_task_needs_urls() {
    let server = MockServer::start_async().await;
    let create = any_create(&server);
    let request = AvatarRequest::builder()
        .image(asset("face.png"))
        .audio(asset("hello.wav"))
        .build()
        .unwrap();
    let error = client(&server).create_task(&request).await.unwrap_err();
    assert!(
        error.to_string().contains("must be uploaded first"),
        "{error}"
    );
    create.assert_calls(0);
}

#[tokio::test]
async fn the_same_files_are_uploaded_once_for_many_submits() {
    let server = MockServer::start_async().await;
    let uploads = any_upload(&server);
    let create = any_create(&server);
    let client = client(&server);
    for prompt in ["one", "two", "three"] {
        let request = AvatarRequest::builder()
            .image(asset("face.png"))
            .audio(asset("hello.wav"))
            .prompt(prompt)
            .build()
            .unwrap();
        client.submit(&request).await.unwrap();
    }
    uploads.assert_calls(2);
    create.assert_calls(3);
    // A changed file is uploaded again.
    let dir = tempfile::tempdir().unwrap();
    let copy = copy_as(&asset("face.png"), dir.path(), "face.png");
    let request = AvatarRequest::builder()
        .image(&copy)
        .audio(asset("hello.wav"))
        .build()
        .unwrap();
    client.submit(&request).await.unwrap();
    uploads.assert_calls(3);
}

#[tokio::test]
async fn prepare_reports_each_step_and_each_retry_before_its_wait() {
    use crate::support::{Canned, ScriptedServer};
    use kling_api_ext::MediaKind;
    use kling_api_ext::error::Operation;
    use kling_api_ext::submit::{PrepareEvent, PrepareOptions};

    // In order: the image URL's HEAD, a failed audio upload, the retried one.
    let image = Canned {
        status: 200,
        headers: vec![("content-type".into(), "image/png".into())],
        body: "x".repeat(2000),
    };
    let server = ScriptedServer::start(vec![
        image,
        Canned::html(502),
        Canned::json(200, &uploaded("https://files.example.com/hello.mp3")),
    ])
    .await;
    let client = kling_api_ext::Client::builder()
        .api_key("k")
        .base_url(&server.url)
        .upload_base_url(&server.url)
        .retry(crate::support::fast_retry())
        .preflight(true)
        .build()
        .unwrap();
    let request = AvatarRequest::builder()
        .image(format!("{}/face.png", server.url))
        .audio(data("hello.mp3"))
        .build()
        .unwrap();
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = events.clone();
    let prepared = client
        .prepare(&request)
        .options(PrepareOptions::new().on_event(move |e| seen.lock().unwrap().push(e.clone())))
        .await
        .unwrap();
    assert!(
        matches!(prepared.audio().source(), kling_api_ext::request::MediaSource::Url(u) if u.as_str() == "https://files.example.com/hello.mp3")
    );
    let events = events.lock().unwrap();
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(
        matches!(events[0], PrepareEvent::CheckingUrls { urls: 1 }),
        "{events:?}"
    );
    let size = std::fs::metadata(data("hello.mp3")).unwrap().len();
    assert!(
        matches!(&events[1], PrepareEvent::Uploading { kind: MediaKind::Audio, bytes, .. } if *bytes == size),
        "{events:?}"
    );
    match &events[2] {
        PrepareEvent::Retrying(r) => {
            assert_eq!(r.operation, Operation::UploadStream);
            assert_eq!((r.attempt, r.max_attempts), (2, 4));
            assert!(r.wait > std::time::Duration::ZERO);
            // One short line: no HTML body on a status line.
            assert_eq!(r.error, "HTTP 502 instead of the envelope", "{r:?}");
        }
        other => panic!("expected a retry, got {other:?}"),
    }
    assert_eq!(server.hits(), 3);
}

/// A keep-alive server whose idle timer fires just as a request arrives on a
/// reused connection: that request is read and the connection closed without
/// an answer. Answers the envelope on a connection's first request.
async fn closes_reused_connections() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let dropped = Arc::new(AtomicUsize::new(0));
    let count = dropped.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let count = count.clone();
            tokio::spawn(async move {
                let mut served = 0;
                loop {
                    // One request: headers, then Content-Length bytes.
                    let mut bytes = Vec::new();
                    let mut buf = [0u8; 8192];
                    let (head, length) = loop {
                        let Ok(n) = socket.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        bytes.extend_from_slice(&buf[..n]);
                        let text = String::from_utf8_lossy(&bytes).into_owned();
                        if let Some((head, _)) = text.split_once("\r\n\r\n") {
                            let length = head
                                .lines()
                                .find_map(|l| {
                                    l.to_ascii_lowercase()
                                        .strip_prefix("content-length:")
                                        .map(|v| v.trim().parse::<usize>().unwrap())
                                })
                                .unwrap_or(0);
                            break (head.to_owned(), length);
                        }
                    };
                    while bytes.len() < head.len() + 4 + length {
                        let Ok(n) = socket.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        bytes.extend_from_slice(&buf[..n]);
                    }
                    if served > 0 {
                        count.fetch_add(1, Ordering::SeqCst);
                        return; // closed, unanswered
                    }
                    served += 1;
                    let body = if head.contains("createTask") {
                        created("c420e5a6f3b84ad2b6c1e4d0a9f7b311").to_string()
                    } else {
                        r#"{"code":200,"msg":"success","data":100.0}"#.to_owned()
                    };
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if socket.write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, dropped)
}

/// createTask never rides a pooled connection: a server closing an idle
/// keep-alive connection as the request arrives would leave the outcome
/// unknown (the task may or may not exist). Reads still reuse connections.
#[tokio::test]
async fn create_task_is_not_sent_on_a_reused_connection() {
    let (url, dropped) = closes_reused_connections().await;
    let client = Client::builder()
        .api_key(KEY)
        .base_url(url.as_str())
        .upload_base_url(url.as_str())
        .preflight(false)
        .build()
        .unwrap();
    assert_eq!(client.credits().await.unwrap(), 100.0);
    let request = AvatarRequest::builder()
        .image("https://cdn.example.com/face.png")
        .audio("https://cdn.example.com/hello.mp3")
        .build()
        .unwrap();
    for _ in 0..3 {
        let id = client.submit(&request).await.unwrap();
        assert_eq!(id.as_str(), "c420e5a6f3b84ad2b6c1e4d0a9f7b311");
    }
    assert_eq!(dropped.load(std::sync::atomic::Ordering::SeqCst), 0);
}

/// The intent hook runs after the limiter's slot and before the
/// request; its error sends nothing.
#[tokio::test]
async fn before_send_runs_just_before_the_request_and_its_error_sends_nothing() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    let server = MockServer::start_async().await;
    let create = any_create(&server);
    let client = builder(&server)
        .preflight(false)
        .rate_limit(Some(kling_api_ext::RateLimit::new(
            1,
            Duration::from_millis(300),
        )))
        .build()
        .unwrap();
    let request = crate::support::url_request();
    let calls = Arc::new(AtomicU32::new(0));
    let seen = calls.clone();
    let options = kling_api_ext::SubmitOptions::new().before_send(move || {
        let seen = seen.clone();
        async move {
            seen.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    });
    client
        .submit(&request)
        .options(options.clone())
        .await
        .unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    create.assert_calls(1);

    // The second submit waits for the window first; the hook only after it.
    let waited = Arc::new(std::sync::Mutex::new(None));
    let (waited_in_hook, started) = (waited.clone(), std::time::Instant::now());
    let options = kling_api_ext::SubmitOptions::new().before_send(move || {
        let waited = waited_in_hook.clone();
        async move {
            *waited.lock().unwrap() = Some(started.elapsed());
            Ok(())
        }
    });
    client.submit(&request).options(options).await.unwrap();
    let waited = waited.lock().unwrap().expect("the hook ran");
    assert!(
        waited >= Duration::from_millis(250),
        "the hook ran before the slot: {waited:?}"
    );

    let refusing =
        kling_api_ext::SubmitOptions::new().before_send(|| async { Err("disk full".to_owned()) });
    let error = client.submit(&request).options(refusing).await.unwrap_err();
    assert!(matches!(error, Error::NotSent { .. }), "{error:?}");
    create.assert_calls(2);
}

/// Around an attempt the service did not take: the intent hook runs before
/// each attempt and the not-taken hook between them, in that order.
#[tokio::test]
async fn an_attempt_not_taken_is_recorded_before_the_next_intent() {
    use std::sync::{Arc, Mutex};

    let server = kling_testkit::ScriptedServer::start(vec![
        kling_testkit::Canned::json(
            200,
            &json!({"code": 455, "msg": "Service unavailable (maintenance)", "data": null}),
        ),
        kling_testkit::Canned::json(200, &created("t-after-455")),
    ])
    .await;
    let client = Client::builder()
        .api_key(KEY)
        .base_url(&server.url)
        .upload_base_url(&server.url)
        .retry(crate::support::fast_retry())
        .rate_limit(None)
        .preflight(false)
        .build()
        .unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let (before, after) = (events.clone(), events.clone());
    let options = kling_api_ext::SubmitOptions::new()
        .before_send(move || {
            let events = before.clone();
            async move {
                events.lock().unwrap().push("intent".to_owned());
                Ok(())
            }
        })
        .after_not_taken(move |error| {
            let (events, kind) = (after.clone(), error.kind());
            async move {
                events.lock().unwrap().push(format!("not taken: {kind}"));
                Ok(())
            }
        });
    let task = client
        .submit(&crate::support::url_request())
        .options(options)
        .await
        .unwrap();
    assert_eq!(task.as_str(), "t-after-455");
    assert_eq!(
        *events.lock().unwrap(),
        ["intent", "not taken: maintenance", "intent"]
    );
}
