//! `kling spec check` against a local server serving the vendored document,
//! a changed copy, an HTML page and nothing.

use httpmock::MockServer;
use serde_json::{Value, json};

use crate::support::{json, kling, stderr};

/// The vendored document the CLI was built from: spec/'s, or the changed
/// copy `.ci/probe` builds against.
fn vendored() -> String {
    let dir = std::env::var("KLING_API_SPEC_DIR")
        .unwrap_or_else(|_| format!("{}/../spec", env!("CARGO_MANIFEST_DIR")));
    std::fs::read_to_string(format!("{dir}/ai-avatar-v1-pro.json")).unwrap()
}

fn serve(body: &str, content_type: &str) -> MockServer {
    let server = MockServer::start();
    server.mock(|when, then| {
        when.path("/doc");
        then.status(200)
            .header("content-type", content_type)
            .body(body);
    });
    server
}

fn check(server: &MockServer, extra: &[&str]) -> std::process::Output {
    kling()
        .args(["spec", "check", "--url", &server.url("/doc")])
        .args(extra)
        .output()
        .unwrap()
}

/// A copy with an optional input field added and the callback URL removed.
fn changed() -> String {
    let mut doc: Value = serde_json::from_str(&vendored()).unwrap();
    let schema = doc
        .pointer_mut(
            "/paths/~1api~1v1~1jobs~1createTask/post/requestBody/content/application~1json/schema",
        )
        .unwrap();
    schema["properties"]["input"]["properties"]["seed"] = json!({"type": "integer", "minimum": 0});
    schema["properties"]
        .as_object_mut()
        .unwrap()
        .remove("callBackUrl");
    serde_json::to_string_pretty(&doc).unwrap()
}

#[test]
fn the_same_document_reformatted_is_the_same() {
    // Normalised: key order and whitespace do not matter.
    let doc: Value = serde_json::from_str(&vendored()).unwrap();
    let server = serve(&doc.to_string(), "application/json");
    let output = check(&server, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report = json(&output);
    assert_eq!(report["same"], json!(true));
    assert_eq!(report["gained"], json!([]));
}

#[test]
fn a_changed_copy_shows_what_the_surface_gains_and_loses() {
    let server = serve(&changed(), "application/json");
    let output = check(&server, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let report = json(&output);
    assert_eq!(report["same"], json!(false));
    assert_eq!(
        report["gained"],
        json!([
            "field POST /api/v1/jobs/createTask request (application/json) input.seed: integer minimum 0"
        ])
    );
    assert_eq!(
        report["lost"],
        json!([
            "field POST /api/v1/jobs/createTask request (application/json) callBackUrl: string format \"uri\""
        ])
    );
    // Text for a person, on stderr.
    let output = kling()
        .args(["--no-json", "spec", "check", "--url", &server.url("/doc")])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let text = stderr(&output);
    assert!(
        text.contains("+ field POST /api/v1/jobs/createTask request (application/json) input.seed"),
        "{text}"
    );
    assert!(
        text.contains(
            "- field POST /api/v1/jobs/createTask request (application/json) callBackUrl"
        ),
        "{text}"
    );
    assert!(text.contains("kling spec check --update"), "{text}");
}

#[test]
fn update_replaces_the_file_and_records_its_origin() {
    use sha2::Digest as _;
    let body = changed();
    let server = serve(&body, "application/json");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ai-avatar-v1-pro.json"), vendored()).unwrap();
    let output = check(
        &server,
        &["--update", "--spec-dir", dir.path().to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let written = std::fs::read_to_string(dir.path().join("ai-avatar-v1-pro.json")).unwrap();
    assert_eq!(written, body, "the file is the published bytes");
    let origin: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("origin.json")).unwrap())
            .unwrap();
    let sha: String = sha2::Sha256::digest(body.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(origin["sha256"], json!(sha));
    assert_eq!(origin["url"], json!(server.url("/doc")));
    assert_eq!(origin["retrieved"].as_str().unwrap().len(), 10, "{origin}");
    // Without a checkout there is nothing to update.
    let empty = tempfile::tempdir().unwrap();
    let output = check(
        &server,
        &["--update", "--spec-dir", empty.path().to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("run --update from the root of a checkout"),
        "{}",
        stderr(&output)
    );
    assert!(!empty.path().join("origin.json").exists());
}

#[test]
fn no_document_is_exit_3() {
    let server = serve("<!DOCTYPE html><html>docs page</html>", "text/html");
    let output = check(&server, &[]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(stderr(&output).contains("not JSON"), "{}", stderr(&output));
    let output = kling()
        .args([
            "spec",
            "check",
            "--url",
            &format!("http://127.0.0.1:{}/doc", kling_testkit::closed_port()),
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        json(&output)["error"]
            .as_str()
            .unwrap()
            .contains("cannot read")
    );
}
