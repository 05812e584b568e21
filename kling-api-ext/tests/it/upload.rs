//! The three uploads.

use httpmock::{Method, MockServer};
use kling_api::upload::mock::MockServerExt as _;
use kling_api_ext::Error;

use crate::support::{asset, client, data, uploaded};

#[tokio::test]
async fn a_file_streams_as_multipart_with_its_type_and_a_typed_name() {
    let server = MockServer::start_async().await;
    let mock = server.mock(|when, then| {
        when.method(Method::POST)
            .path("/api/file-stream-upload")
            .header_includes("content-type", "multipart/form-data; boundary=")
            .body_includes("Content-Type: audio/mpeg")
            .body_matches(regex::Regex::new(r#"filename="hello-\d+-[0-9a-f]{6}\.mp3""#).unwrap());
        then.status(200)
            .body(uploaded("https://files.example.com/hello.mp3").to_string());
    });
    let progress = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = progress.clone();
    let file = client(&server)
        .upload_file(data("hello.mp3"))
        .options(
            kling_api_ext::upload::TransferOptions::new().progress(std::sync::Arc::new(
                move |done, total| seen.lock().unwrap().push((done, total)),
            )),
        )
        .await
        .unwrap();
    assert_eq!(file.url.as_str(), "https://files.example.com/hello.mp3");
    mock.assert_calls(1);
    let progress = progress.lock().unwrap();
    let size = std::fs::metadata(data("hello.mp3")).unwrap().len();
    assert_eq!(progress.last(), Some(&(size, Some(size))));
}

#[tokio::test]
async fn the_upload_server_may_live_under_a_path() {
    let server = MockServer::start_async().await;
    let mock = server.mock(|when, then| {
        when.method(Method::POST)
            .path("/file-upload/api/file-stream-upload");
        then.status(200)
            .body(uploaded("https://files.example.com/face.png").to_string());
    });
    let client = crate::support::builder(&server)
        .upload_base_url(format!("{}/file-upload/", server.base_url()))
        .build()
        .unwrap();
    client.upload_file(asset("face.png")).await.unwrap();
    mock.assert_calls(1);
}

#[tokio::test]
async fn base64_and_url_uploads() {
    let server = MockServer::start_async().await;
    let b64 = server.upload_file_base64(|when, then| {
        when.into_inner()
            .body_includes("\"base64Data\":\"data:image/png;base64,iVBORw0KGgo");
        then.into_inner()
            .status(200)
            .body(uploaded("https://files.example.com/b.png").to_string());
    });
    let from_url = server.upload_file_url(|when, then| {
        when.into_inner()
            .body_includes("\"fileUrl\":\"https://example.com/face.png\"");
        then.into_inner()
            .status(200)
            .body(uploaded("https://files.example.com/u.png").to_string());
    });
    let client = client(&server);
    let bytes = std::fs::read(asset("face.png")).unwrap();
    assert_eq!(
        client
            .upload_base64(&bytes, "face.png")
            .await
            .unwrap()
            .url
            .as_str(),
        "https://files.example.com/b.png"
    );
    let url = "https://example.com/face.png".parse().unwrap();
    assert_eq!(
        client.upload_from_url(&url).await.unwrap().url.as_str(),
        "https://files.example.com/u.png"
    );
    b64.assert_calls(1);
    from_url.assert_calls(1);
}

#[tokio::test]
async fn any_file_can_be_uploaded_with_the_type_of_its_content() {
    let server = MockServer::start_async().await;
    let mock = server.mock(|when, then| {
        when.method(Method::POST)
            .path("/api/file-stream-upload")
            .body_includes("Content-Type: image/gif")
            .body_matches(regex::Regex::new(r#"filename="face-\d+-[0-9a-f]{6}\.gif""#).unwrap());
        then.status(200)
            .body(uploaded("https://files.example.com/face.gif").to_string());
    });
    // The upload API takes any file; the avatar rules are the request's.
    client(&server).upload_file(data("face.gif")).await.unwrap();
    mock.assert_calls(1);
}

#[tokio::test]
async fn upload_errors_are_typed_and_nothing_is_sent_for_bad_files() {
    let server = MockServer::start_async().await;
    let rejected = server.mock(|when, then| {
        when.method(Method::POST).path("/api/file-stream-upload");
        then.status(200)
            .body(r#"{"success":false,"code":401,"msg":"Authentication failed: Invalid API Key"}"#);
    });
    let client = client(&server);
    let error = client.upload_file(asset("face.png")).await.unwrap_err();
    assert_eq!(error.kind(), "unauthorized");
    rejected.assert_calls(1);
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.png");
    std::fs::write(&empty, "").unwrap();
    for bad in [empty, dir.path().join("missing.png"), dir.path().to_owned()] {
        let error = client.upload_file(&bad).await.unwrap_err();
        assert!(
            matches!(
                error,
                Error::InvalidInput {
                    field: kling_api_ext::Field::File,
                    ..
                }
            ),
            "{error:?}"
        );
    }
    rejected.assert_calls(1);
}
