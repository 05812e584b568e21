//! The simulator's answers agree with the specs' response schemas.
//!
//! `kling-sim` builds its responses from `docs/service-notes.md`, not from the generated
//! types; this checks both against the documents. OpenAPI 3.0 schemas become
//! JSON Schema by resolving `$ref`s into `definitions` and turning
//! `nullable: true` into a `null` alternative.

use std::time::Duration;

use kling_sim::Simulator;
use serde_json::{Map, Value, json};

use crate::support::spec;

/// OpenAPI 3.0 schema → JSON Schema (draft 7).
fn to_json_schema(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, value) in map {
                match key.as_str() {
                    "nullable" | "example" | "examples" => {}
                    "$ref" => {
                        let name = value
                            .as_str()
                            .unwrap()
                            .trim_start_matches("#/components/schemas/");
                        out.insert("$ref".into(), json!(format!("#/definitions/{name}")));
                    }
                    _ => {
                        out.insert(key.clone(), to_json_schema(value));
                    }
                }
            }
            if map.get("nullable") == Some(&json!(true)) {
                let inner = Value::Object(out);
                return json!({"anyOf": [inner, {"type": "null"}]});
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(to_json_schema).collect()),
        other => other.clone(),
    }
}

/// A validator for the 200 response of `path` in `file`.
fn validator(file: &str, path: &str) -> jsonschema::Validator {
    let doc = spec(file);
    let operation = doc["paths"][path]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap();
    let mut schema = operation["responses"]["200"]["content"]["application/json"]["schema"].clone();
    if file == "ai-avatar-v1-pro.json" {
        // The seed's `data` is not nullable, but the service sends
        // `{"code":500,"msg":"Server exception…","data":null}` (`docs/service-notes.md` §2,
        // recorded traffic): the one relaxation of the vendored contract.
        schema["allOf"][1]["properties"]["data"]["nullable"] = json!(true);
    }
    let mut root = to_json_schema(&schema);
    let definitions: Map<String, Value> = doc["components"]["schemas"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), to_json_schema(v)))
        .collect();
    root["definitions"] = Value::Object(definitions);
    jsonschema::options()
        .with_draft(jsonschema::Draft::Draft7)
        .should_validate_formats(true)
        .build(&root)
        .unwrap_or_else(|e| panic!("{file} {path}: {e}"))
}

fn assert_valid(validator: &jsonschema::Validator, body: &Value, what: &str) {
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{what}: {body}\n{}", errors.join("\n"));
}

const KEY: &str = "contract-key";

fn http() -> kling_api::reqwest::Client {
    let _ = kling_api::rustls::crypto::ring::default_provider().install_default();
    kling_api::reqwest::Client::builder()
        .user_agent("contract/1")
        .build()
        .unwrap()
}

async fn quick_sim(fail: bool) -> Simulator {
    Simulator::builder()
        .api_key(KEY)
        .with(|c| {
            c.lifecycle.waiting_ms = [10, 10];
            c.lifecycle.queuing_ms = [10, 10];
            c.lifecycle.generating_ms = [30, 30];
            c.lifecycle.fail_fraction = if fail { 1.0 } else { 0.0 };
            c.rate_limit.max = 1000;
        })
        .start()
        .await
        .unwrap()
}

async fn post(url: String, key: &str, body: &Value) -> Value {
    http()
        .post(url)
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn get(url: String, key: &str) -> Value {
    http()
        .get(url)
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn create_body(prompt: &str) -> Value {
    json!({"model": "kling/ai-avatar-v1-pro", "callBackUrl": "http://127.0.0.1:9/cb",
        "input": {"image_url": "https://cdn.example.com/f.png", "audio_url": "https://cdn.example.com/a.mp3", "prompt": prompt}})
}

#[tokio::test]
async fn create_task_answers_match_the_vendored_schema() {
    let sim = quick_sim(false).await;
    let v = validator("ai-avatar-v1-pro.json", "/api/v1/jobs/createTask");
    let url = format!("{}/api/v1/jobs/createTask", sim.base_url());
    let ok = post(url.clone(), KEY, &create_body("ok")).await;
    assert_eq!(ok["code"], json!(200));
    assert_valid(&v, &ok, "success");
    assert_valid(
        &v,
        &post(url.clone(), "wrong", &create_body("x")).await,
        "401",
    );
    let mut unknown_model = create_body("x");
    unknown_model["model"] = json!("kling/nope");
    assert_valid(&v, &post(url.clone(), KEY, &unknown_model).await, "422");
    let mut missing = create_body("x");
    missing["input"].as_object_mut().unwrap().remove("prompt");
    assert_valid(&v, &post(url.clone(), KEY, &missing).await, "500");
    // The schema is not a rubber stamp: a code outside the enum fails it.
    assert!(!v.is_valid(&json!({"code": 999, "msg": "x"})));
}

#[tokio::test]
async fn record_info_answers_match_the_task_details_schema() {
    for fail in [false, true] {
        let sim = quick_sim(fail).await;
        let v = validator("get-task-details.json", "/api/v1/jobs/recordInfo");
        let created = post(
            format!("{}/api/v1/jobs/createTask", sim.base_url()),
            KEY,
            &create_body("r"),
        )
        .await;
        let id = created["data"]["taskId"].as_str().unwrap().to_owned();
        let url = format!("{}/api/v1/jobs/recordInfo?taskId={id}", sim.base_url());
        let running = get(url.clone(), KEY).await;
        assert_valid(&v, &running, "running");
        tokio::time::sleep(Duration::from_millis(80)).await;
        let ended = get(url.clone(), KEY).await;
        assert_eq!(
            ended["data"]["state"],
            json!(if fail { "fail" } else { "success" })
        );
        assert_valid(&v, &ended, "ended");
        assert_valid(
            &v,
            &get(
                format!("{}/api/v1/jobs/recordInfo?taskId=nope", sim.base_url()),
                KEY,
            )
            .await,
            "null",
        );
        assert_valid(
            &v,
            &get(format!("{}/api/v1/jobs/recordInfo", sim.base_url()), KEY).await,
            "400",
        );
        assert_valid(&v, &get(url, "wrong").await, "401");
        assert!(
            !v.is_valid(&json!({"code": 200, "msg": "success", "data": {"taskId": "t"}})),
            "state is required"
        );
    }
}

#[tokio::test]
async fn common_answers_match_their_schemas() {
    let sim = quick_sim(false).await;
    let credit = validator("common.json", "/api/v1/chat/credit");
    assert_valid(
        &credit,
        &get(format!("{}/api/v1/chat/credit", sim.base_url()), KEY).await,
        "credit",
    );
    assert_valid(
        &credit,
        &get(format!("{}/api/v1/chat/credit", sim.base_url()), "wrong").await,
        "credit 401",
    );
    let link = validator("common.json", "/api/v1/common/download-url");
    let url = format!("{}/api/v1/common/download-url", sim.base_url());
    let own = json!({"url": format!("{}/results/x.mp4", sim.base_url())});
    assert_valid(&link, &post(url.clone(), KEY, &own).await, "link");
    assert_valid(
        &link,
        &post(url, KEY, &json!({"url": "https://example.com/x"})).await,
        "url is wrong",
    );
}

#[tokio::test]
async fn upload_answers_match_the_upload_schema() {
    let sim = quick_sim(false).await;
    let v = validator("file-upload.json", "/api/file-base64-upload");
    let url = format!("{}/api/file-base64-upload", sim.upload_base_url());
    let ok = post(
        url.clone(),
        KEY,
        &json!({"base64Data": "data:image/png;base64,iVBORw0KGgo=", "uploadPath": "images/t"}),
    )
    .await;
    assert_eq!(ok["code"], json!(200));
    assert_valid(&v, &ok, "base64");
    assert_valid(
        &v,
        &post(
            url.clone(),
            KEY,
            &json!({"base64Data": "%%%", "uploadPath": "i"}),
        )
        .await,
        "bad base64",
    );
    assert_valid(&v, &post(url, "wrong", &json!({})).await, "401");
    let url_upload = validator("file-upload.json", "/api/file-url-upload");
    let answer = post(
        format!("{}/api/file-url-upload", sim.upload_base_url()),
        KEY,
        &json!({"fileUrl": "https://example.com/a.png", "uploadPath": "images"}),
    )
    .await;
    assert_valid(&url_upload, &answer, "url upload");
    let stream = validator("file-upload.json", "/api/file-stream-upload");
    let form = kling_api::reqwest::multipart::Form::new()
        .text("uploadPath", "images")
        .part(
            "file",
            kling_api::reqwest::multipart::Part::bytes(b"\x89PNG\r\n\x1a\n".to_vec())
                .file_name("a.png")
                .mime_str("image/png")
                .unwrap(),
        );
    let answer: Value = http()
        .post(format!("{}/api/file-stream-upload", sim.upload_base_url()))
        .bearer_auth(KEY)
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_valid(&stream, &answer, "stream upload");
}

#[test]
fn nullable_becomes_a_null_alternative() {
    let converted = to_json_schema(&json!({"type": "string", "nullable": true, "example": "x"}));
    assert_eq!(
        converted,
        json!({"anyOf": [{"type": "string"}, {"type": "null"}]})
    );
}
