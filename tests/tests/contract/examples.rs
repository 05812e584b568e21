//! Every example embedded in the spec files round-trips through the generated
//! types: whole request and response examples through the operation's type, and
//! each property's example after being put in its place in a whole example. An
//! example the table below cannot place fails the test, so a new one is never
//! skipped silently.

use kling_api::types as api;
use kling_api::upload::types as up;
use serde_json::Value;

use crate::support::{normalize, round_trip, spec, spec_files};

type RoundTrip = fn(&Value) -> Result<Value, String>;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Side {
    Request,
    Response,
}

/// The generated type for each operation's request and response body.
fn operation_type(file: &str, path: &str, side: Side) -> Option<RoundTrip> {
    use Side::*;
    Some(match (file, path, side) {
        ("ai-avatar-v1-pro.json", "/api/v1/jobs/createTask", Request) => {
            round_trip::<api::KlingAiAvatarV1ProBody>
        }
        ("ai-avatar-v1-pro.json", "/api/v1/jobs/createTask", Response) => {
            round_trip::<api::KlingAiAvatarV1ProResponse>
        }
        ("get-task-details.json", "/api/v1/jobs/recordInfo", Response) => {
            round_trip::<api::GetTaskDetailsResponse>
        }
        ("common.json", "/api/v1/chat/credit", Response) => {
            round_trip::<api::GetAccountCreditsResponse>
        }
        ("common.json", "/api/v1/common/download-url", Request) => {
            round_trip::<api::GetDownloadUrlBody>
        }
        ("common.json", "/api/v1/common/download-url", Response) => {
            round_trip::<api::GetDownloadUrlResponse>
        }
        ("file-upload.json", "/api/file-base64-upload", Request) => {
            round_trip::<up::UploadFileBase64Body>
        }
        ("file-upload.json", "/api/file-base64-upload", Response) => {
            round_trip::<up::UploadFileBase64Response>
        }
        ("file-upload.json", "/api/file-url-upload", Request) => {
            round_trip::<up::UploadFileUrlBody>
        }
        ("file-upload.json", "/api/file-url-upload", Response) => {
            round_trip::<up::UploadFileUrlResponse>
        }
        // The stream upload is not generated (multipart); its response has the
        // same schema as the base64 upload's (checked below).
        ("file-upload.json", "/api/file-stream-upload", Response) => {
            round_trip::<up::UploadFileBase64Response>
        }
        _ => return None,
    })
}

/// Where a component's examples are placed: an operation whose body holds it,
/// and the path to it there.
fn component_home(file: &str, name: &str) -> Option<(&'static str, Side, &'static [&'static str])> {
    Some(match (file, name) {
        ("ai-avatar-v1-pro.json", "ApiResponse") => {
            ("/api/v1/jobs/createTask", Side::Response, &[])
        }
        ("get-task-details.json", "Envelope") => ("/api/v1/jobs/recordInfo", Side::Response, &[]),
        ("get-task-details.json", "TaskRecord") => {
            ("/api/v1/jobs/recordInfo", Side::Response, &["data"])
        }
        ("common.json", "Envelope") => ("/api/v1/chat/credit", Side::Response, &[]),
        ("file-upload.json", "UploadEnvelope") => ("/api/file-base64-upload", Side::Response, &[]),
        ("file-upload.json", "UploadedFile") => {
            ("/api/file-base64-upload", Side::Response, &["data"])
        }
        _ => return None,
    })
}

#[derive(Debug)]
struct Example {
    file: String,
    pointer: String,
    value: Value,
}

fn collect(file: &str, value: &Value, pointer: &str, out: &mut Vec<Example>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let child_pointer =
                    format!("{pointer}/{}", key.replace('~', "~0").replace('/', "~1"));
                match key.as_str() {
                    "example" => out.push(Example {
                        file: file.into(),
                        pointer: child_pointer,
                        value: child.clone(),
                    }),
                    "examples" => {
                        for (name, item) in child.as_object().expect("examples is a map") {
                            out.push(Example {
                                file: file.into(),
                                pointer: format!("{child_pointer}/{name}/value"),
                                value: item["value"].clone(),
                            });
                        }
                    }
                    _ => collect(file, child, &child_pointer, out),
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                collect(file, item, &format!("{pointer}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn unescape(segment: &str) -> String {
    segment.replace("~1", "/").replace("~0", "~")
}

/// The whole examples of an operation's body, in document order.
fn whole_examples(doc: &Value, path: &str, side: Side) -> Vec<Value> {
    let operation = doc["paths"][path]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap();
    let media = match side {
        Side::Request => &operation["requestBody"]["content"],
        Side::Response => &operation["responses"]["200"]["content"],
    };
    let media = media.as_object().unwrap().values().next().unwrap();
    let mut out: Vec<Value> = media.get("example").into_iter().cloned().collect();
    if let Some(map) = media.get("examples").and_then(Value::as_object) {
        out.extend(map.values().map(|e| e["value"].clone()));
    }
    out
}

/// The property path of a schema pointer: the names after each `properties`.
fn property_path(schema_segments: &[String]) -> Vec<String> {
    let mut path = Vec::new();
    let mut i = 0;
    while i < schema_segments.len() {
        match schema_segments[i].as_str() {
            "properties" => {
                path.push(schema_segments[i + 1].clone());
                i += 2;
            }
            "allOf" | "oneOf" | "anyOf" => i += 2,
            _ => i += 1,
        }
    }
    path
}

fn set_path(target: &mut Value, path: &[String], value: Value) {
    let mut slot = target;
    for key in path {
        slot = &mut slot[key.as_str()];
    }
    *slot = value;
}

/// Checks one example; returns a description of what it was checked against.
fn check(example: &Example) -> Result<String, String> {
    let doc = spec(&example.file);
    let segments: Vec<String> = example.pointer.split('/').skip(1).map(unescape).collect();
    let (path, side, prefix, rest): (String, Side, Vec<String>, &[String]) =
        match segments[0].as_str() {
            "paths" => {
                let path = segments[1].clone();
                match segments[3].as_str() {
                    "requestBody" => (path, Side::Request, vec![], &segments[6..]),
                    "responses" => (path, Side::Response, vec![], &segments[7..]),
                    "parameters" => {
                        // Operation parameters are passed as `&str` by the generated client.
                        round_trip::<String>(&example.value)?;
                        return Ok("parameter: String".into());
                    }
                    other => return Err(format!("no rule for examples under {other}")),
                }
            }
            "components" if segments[1] == "schemas" => {
                let (path, side, prefix) = component_home(&example.file, &segments[2])
                    .ok_or_else(|| format!("no home for component {}", segments[2]))?;
                (
                    path.to_owned(),
                    side,
                    prefix.iter().map(|s| s.to_string()).collect(),
                    &segments[3..],
                )
            }
            other => return Err(format!("no rule for examples under {other}")),
        };
    let is_whole = matches!(
        rest.first().map(String::as_str),
        Some("example") | Some("examples")
    );
    let Some(typed) = operation_type(&example.file, &path, side) else {
        if path == "/api/file-stream-upload" && side == Side::Request && !is_whole {
            // Multipart fields are sent as text parts.
            round_trip::<String>(&example.value)?;
            return Ok("multipart text field: String".into());
        }
        return Err(format!("no generated type for {path} {side:?}"));
    };
    let instance = if is_whole {
        example.value.clone()
    } else {
        let mut full = prefix.clone();
        full.extend(property_path(rest));
        let base = whole_examples(&doc, &path, side)
            .into_iter()
            .find(|whole| {
                prefix
                    .iter()
                    .try_fold(whole, |v, k| v.get(k.as_str()))
                    .is_some_and(Value::is_object)
                    || prefix.is_empty()
            })
            .ok_or_else(|| format!("no whole example of {path} holds {prefix:?}"))?;
        let mut instance = base;
        set_path(&mut instance, &full, example.value.clone());
        instance
    };
    let back = typed(&instance)?;
    if normalize(&back) != normalize(&instance) {
        return Err(format!(
            "round trip changed the example:\n  sent {instance}\n  got  {back}"
        ));
    }
    Ok(format!("{path} {side:?}"))
}

#[test]
fn every_spec_example_round_trips_through_the_generated_types() {
    let mut examples = Vec::new();
    for (name, doc) in spec_files() {
        collect(&name, &doc, "", &mut examples);
    }
    let mut failures = Vec::new();
    for example in &examples {
        if let Err(e) = check(example) {
            failures.push(format!("spec/{} {}: {e}", example.file, example.pointer));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} examples failed:\n{}",
        failures.len(),
        examples.len(),
        failures.join("\n")
    );
    // Whole examples: createTask 2, recordInfo 4 + 4 HTTP 4xx, credit 2, download-url 3,
    // uploads 2 + 3x2 + 3x2 HTTP 4xx.
    let whole = examples
        .iter()
        .filter(|e| {
            e.pointer.contains("/content/")
                && (e.pointer.ends_with("/example") && !e.pointer.contains("/schema/")
                    || e.pointer.contains("/examples/"))
        })
        .count();
    assert_eq!(whole, 29, "whole examples found");
    assert!(
        examples.len() > 60,
        "only {} examples found",
        examples.len()
    );
}

#[test]
fn a_wrong_example_is_caught() {
    // The checker itself must be able to fail: an over-long prompt, a missing
    // required field and a wrongly typed one are rejected by the generated types.
    let mut body = spec("ai-avatar-v1-pro.json")
        .pointer(
            "/paths/~1api~1v1~1jobs~1createTask/post/requestBody/content/application~1json/example",
        )
        .unwrap()
        .clone();
    body["input"]["prompt"] = Value::String("x".repeat(5001));
    assert!(round_trip::<api::KlingAiAvatarV1ProBody>(&body).is_err());
    body["input"]["prompt"] = Value::String(String::new());
    let mut missing = body.clone();
    missing["input"]
        .as_object_mut()
        .unwrap()
        .remove("image_url");
    assert!(round_trip::<api::KlingAiAvatarV1ProBody>(&missing).is_err());
    body["model"] = Value::from(7);
    assert!(round_trip::<api::KlingAiAvatarV1ProBody>(&body).is_err());
}

#[test]
fn stream_upload_response_schema_is_the_base64_one() {
    let doc = spec("file-upload.json");
    let schema = |path: &str| {
        doc["paths"][path]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
            .clone()
    };
    assert_eq!(
        schema("/api/file-stream-upload"),
        schema("/api/file-base64-upload")
    );
    assert_eq!(
        schema("/api/file-url-upload"),
        schema("/api/file-base64-upload")
    );
}
