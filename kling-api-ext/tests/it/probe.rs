//! Built only by `.ci/probe`, against a copy of the spec whose createTask
//! input has an extra optional integer `probe_seed`: a field the spec gains is
//! settable through the SDK with no SDK change, typed and checked.

use httpmock::{Method, MockServer};
use kling_api_ext::{AvatarRequest, Error, Field};
use serde_json::json;

use crate::support::{builder, created};

#[tokio::test]
async fn a_field_the_spec_gains_is_set_through_the_hook() {
    let server = MockServer::start_async().await;
    let create = server.mock(|when, then| {
        when.method(Method::POST)
            .path("/api/v1/jobs/createTask")
            .json_body(json!({"model": "kling/ai-avatar-v1-pro", "input": {
                "image_url": "https://cdn.example.com/face.png", "audio_url": "https://cdn.example.com/hello.mp3",
                "prompt": "", "probe_seed": 42}}));
        then.status(200)
            .body(created("c420e5a6f3b84ad2b6c1e4d0a9f7b311").to_string());
    });
    let request = AvatarRequest::builder()
        .image("https://cdn.example.com/face.png")
        .audio("https://cdn.example.com/hello.mp3")
        .input_with(|b| b.probe_seed(Some(42_i64)))
        .build()
        .unwrap();
    assert!(request.warnings().is_empty(), "{:?}", request.warnings());
    assert_eq!(request.extra_input()["probe_seed"], json!(42));
    let client = builder(&server).preflight(false).build().unwrap();
    client.submit(&request).await.unwrap();
    // The raw way, checked against the field's schema now that the spec knows it.
    let raw = AvatarRequest::builder()
        .image("https://cdn.example.com/face.png")
        .audio("https://cdn.example.com/hello.mp3")
        .extra_input("probe_seed", 42)
        .build()
        .unwrap();
    assert!(raw.warnings().is_empty(), "{:?}", raw.warnings());
    client.submit(&raw).await.unwrap();
    create.assert_calls(2);
    let error = AvatarRequest::builder()
        .image("https://cdn.example.com/face.png")
        .audio("https://cdn.example.com/hello.mp3")
        .extra_input("probe_seed", "forty-two")
        .build()
        .unwrap_err();
    assert!(
        matches!(&error, Error::InvalidInput { field: Field::Input, subject: Some(key), .. } if key == "probe_seed"),
        "{error}"
    );
}
