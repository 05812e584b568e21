//! Every simulator answer conforms to the contract documents, strictly.
//!
//! `kling-sim` builds its answers from `docs/service-notes.md`, not from the
//! generated types. Each answer is checked against the response its HTTP
//! status has in the contract (`kling_api::spec`: the documents after their
//! contract patches), with strict OAS 3.0.3 `nullable` semantics: `nullable`
//! only widens a sibling `type`, so a `null` the document does not allow
//! fails (openapi-core's reading). An answer with an undocumented status
//! fails too. Covered: every lifecycle state, every error path, every upload
//! route, both ways errors travel (HTTP 200 with `code`, and the HTTP status),
//! and callbacks.

use std::collections::BTreeMap;
use std::time::Duration;

use kling_sim::{RateLimitMode, SimConfig, Simulator};
use serde_json::{Map, Value, json};

/// A contract document (`kling_api::spec::ALL`) by file name.
fn contract(file: &str) -> Value {
    let text = kling_api::spec::ALL
        .iter()
        .find(|(name, _)| *name == file)
        .unwrap_or_else(|| panic!("no contract document {file}"))
        .1;
    serde_json::from_str(text).unwrap()
}

/// OpenAPI 3.0 schema → JSON Schema (draft 7), strictly: `nullable: true`
/// adds `null` to a sibling `type` (and to a sibling `enum`); without a `type`
/// it adds nothing.
fn to_json_schema(schema: &Value) -> Value {
    match schema {
        Value::Object(map) => {
            let mut out = Map::new();
            for (key, value) in map {
                match key.as_str() {
                    "nullable" | "example" | "examples" | "discriminator" | "xml" => {}
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
            if map.get("nullable") == Some(&json!(true))
                && let Some(Value::String(t)) = map.get("type")
            {
                out.insert("type".into(), json!([t, "null"]));
                if let Some(Value::Array(values)) = out.get_mut("enum") {
                    values.push(Value::Null);
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(to_json_schema).collect()),
        other => other.clone(),
    }
}

/// Checks answers against one document.
struct Contract {
    file: &'static str,
    doc: Value,
    definitions: Value,
}

impl Contract {
    fn new(file: &'static str) -> Contract {
        let doc = contract(file);
        let definitions: Map<String, Value> = doc["components"]["schemas"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), to_json_schema(v)))
            .collect();
        Contract {
            file,
            doc,
            definitions: Value::Object(definitions),
        }
    }

    fn validator(&self, path: &str, status: u16) -> jsonschema::Validator {
        let operation = self.doc["paths"][path]
            .as_object()
            .unwrap_or_else(|| panic!("{} has no path {path}", self.file))
            .values()
            .next()
            .unwrap();
        let response = &operation["responses"][status.to_string()];
        let schema = response
            .pointer("/content/application~1json/schema")
            .unwrap_or_else(|| {
                panic!(
                    "{} {path}: HTTP {status} is not documented with a JSON body",
                    self.file
                )
            });
        let mut root = to_json_schema(schema);
        root["definitions"] = self.definitions.clone();
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft7)
            .should_validate_formats(true)
            .build(&root)
            .unwrap_or_else(|e| panic!("{} {path} {status}: {e}", self.file))
    }

    /// Asserts `answer` conforms to what `path` documents for its status.
    fn check(&self, path: &str, answer: &Answer, what: &str) {
        let validator = self.validator(path, answer.status);
        let errors: Vec<String> = validator
            .iter_errors(&answer.body)
            .map(|e| format!("{e} at {}", e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{what}: HTTP {} {}\n{}",
            answer.status,
            answer.body,
            errors.join("\n")
        );
    }
}

const KEY: &str = "contract-key";

struct Answer {
    status: u16,
    body: Value,
}

fn http() -> kling_api::reqwest::Client {
    // ring on purpose (no C toolchain, a faster build); rustls 0.23.48
    // deprecates it only for lacking post-quantum key exchange.
    #[allow(deprecated)]
    let _ = kling_api::rustls::crypto::ring::default_provider().install_default();
    kling_api::reqwest::Client::builder()
        .user_agent("contract/1")
        .build()
        .unwrap()
}

async fn answer(request: kling_api::reqwest::RequestBuilder) -> Answer {
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or_else(|_| panic!("HTTP {status}: {text}"));
    Answer { status, body }
}

async fn post(url: String, key: &str, body: &Value) -> Answer {
    answer(http().post(url).bearer_auth(key).json(body)).await
}

async fn get(url: String, key: &str) -> Answer {
    answer(http().get(url).bearer_auth(key)).await
}

async fn sim(change: impl FnOnce(&mut SimConfig)) -> Simulator {
    Simulator::builder()
        .api_key(KEY)
        .with(|c| {
            c.lifecycle.waiting_ms = [10, 10];
            c.lifecycle.queuing_ms = [10, 10];
            c.lifecycle.generating_ms = [30, 30];
            c.rate_limit.max = 1000;
            change(c);
        })
        .start()
        .await
        .unwrap()
}

fn create_body(prompt: &str) -> Value {
    json!({"model": "kling/ai-avatar-v1-pro", "callBackUrl": "http://127.0.0.1:9/cb",
        "input": {"image_url": "https://cdn.example.com/f.png", "audio_url": "https://cdn.example.com/a.mp3", "prompt": prompt}})
}

const CREATE: &str = "/api/v1/jobs/createTask";
const RECORD: &str = "/api/v1/jobs/recordInfo";

#[tokio::test]
async fn create_task_answers_conform() {
    let c = Contract::new("ai-avatar-v1-pro.json");
    let s = sim(|_| {}).await;
    let url = format!("{}{CREATE}", s.base_url());
    let ok = post(url.clone(), KEY, &create_body("ok")).await;
    assert_eq!((ok.status, ok.body["code"].clone()), (200, json!(200)));
    c.check(CREATE, &ok, "success");
    c.check(
        CREATE,
        &post(url.clone(), "wrong", &create_body("x")).await,
        "401",
    );
    let mut model = create_body("x");
    model["model"] = json!("kling/nope");
    c.check(CREATE, &post(url.clone(), KEY, &model).await, "422 model");
    let mut missing = create_body("x");
    missing["input"].as_object_mut().unwrap().remove("prompt");
    c.check(CREATE, &post(url.clone(), KEY, &missing).await, "500");
    // Strictness is real: the error envelope's `data: null` needs the
    // contract patch, and a code outside the enum fails.
    let v = c.validator(CREATE, 200);
    assert!(!v.is_valid(&json!({"code": 999, "msg": "x", "data": null})));
    let raw: Value = serde_json::from_str(kling_api::spec::SOURCES[0].1).unwrap();
    let raw_data = &raw.pointer("/paths/~1api~1v1~1jobs~1createTask/post/responses/200/content/application~1json/schema/allOf/1/properties/data").unwrap();
    assert!(
        !jsonschema::is_valid(&to_json_schema(raw_data), &Value::Null),
        "as vendored, null data does not conform"
    );

    // Out of credits, maintenance, and both kinds of rate limit.
    let broke = sim(|c| c.credits = 0.0).await;
    let answer = post(
        format!("{}{CREATE}", broke.base_url()),
        KEY,
        &create_body("x"),
    )
    .await;
    assert_eq!(answer.body["code"], json!(402));
    c.check(CREATE, &answer, "402");
    let down = sim(|c| c.faults.create_task.envelope455 = 1.0).await;
    let answer = post(
        format!("{}{CREATE}", down.base_url()),
        KEY,
        &create_body("x"),
    )
    .await;
    assert_eq!(answer.body["code"], json!(455));
    c.check(CREATE, &answer, "455");
    for mode in [RateLimitMode::Http429, RateLimitMode::Envelope429] {
        let busy = sim(|c| {
            c.rate_limit.max = 1;
            c.rate_limit.mode = mode;
        })
        .await;
        let url = format!("{}{CREATE}", busy.base_url());
        c.check(
            CREATE,
            &post(url.clone(), KEY, &create_body("a")).await,
            "first",
        );
        let refused = post(url, KEY, &create_body("b")).await;
        assert_eq!(refused.body["code"], json!(429), "{mode:?}");
        c.check(CREATE, &refused, "429");
    }
}

/// Polls one task until it ends, keeping the first answer of each state.
async fn states(s: &Simulator, id: &str) -> BTreeMap<String, Answer> {
    let url = format!("{}{RECORD}?taskId={id}", s.base_url());
    let mut seen = BTreeMap::new();
    for _ in 0..2000 {
        let answer = get(url.clone(), KEY).await;
        let state = answer.body["data"]["state"]
            .as_str()
            .unwrap_or("-")
            .to_owned();
        let ended = state == "success" || state == "fail";
        seen.entry(state).or_insert(answer);
        if ended {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("task {id} did not end")
}

#[tokio::test]
async fn record_info_answers_conform_in_every_state() {
    let c = Contract::new("get-task-details.json");
    for (fail, fail_code_int) in [(false, false), (true, false), (true, true)] {
        // Long enough states that a 10 ms poll sees each, even on a loaded machine.
        let s = sim(|c| {
            c.lifecycle.waiting_ms = [400, 400];
            c.lifecycle.queuing_ms = [400, 400];
            c.lifecycle.generating_ms = [400, 400];
            c.lifecycle.fail_fraction = if fail { 1.0 } else { 0.0 };
            c.faults.fail_code_int = if fail_code_int { 1.0 } else { 0.0 };
        })
        .await;
        let created = post(format!("{}{CREATE}", s.base_url()), KEY, &create_body("r")).await;
        let id = created.body["data"]["taskId"].as_str().unwrap().to_owned();
        let seen = states(&s, &id).await;
        let end = if fail { "fail" } else { "success" };
        for state in ["waiting", "queuing", "generating", end] {
            let answer = seen
                .get(state)
                .unwrap_or_else(|| panic!("{state} not seen: {:?}", seen.keys()));
            c.check(RECORD, answer, state);
        }
        let data = &seen[end].body["data"];
        if fail {
            // As observed: a failed task has no cost or completion time.
            assert!(
                data["costTime"].is_null() && data["completeTime"].is_null(),
                "{data}"
            );
            assert!(!data["failCode"].is_null(), "{data}");
        } else {
            assert!(
                data["costTime"].is_number() && data["failCode"].is_null(),
                "{data}"
            );
        }
    }
    // The `unknownState` fault sends a state the documents do not list: it
    // is there to test clients (the generated types take any state, the
    // `open_state_enums` patch), so it must not conform.
    let odd = sim(|c| {
        c.faults.unknown_state = 1.0;
        c.faults.unknown_state_ms = 60_000;
        c.faults.null_record = 0.0;
        // An ended task shows its real state: it must not end before the
        // look, however loaded the machine.
        c.lifecycle.generating_ms = [60_000, 60_000];
    })
    .await;
    let created = post(
        format!("{}{CREATE}", odd.base_url()),
        KEY,
        &create_body("u"),
    )
    .await;
    let id = created.body["data"]["taskId"].as_str().unwrap();
    let answer = get(format!("{}{RECORD}?taskId={id}", odd.base_url()), KEY).await;
    assert_eq!(answer.body["data"]["state"], json!("pending_review"));
    assert!(
        !c.validator(RECORD, 200).is_valid(&answer.body),
        "{}",
        answer.body
    );
    // The checker is strict: a record without its required state fails, and
    // so does null where the document allows none.
    let v = c.validator(RECORD, 200);
    assert!(!v.is_valid(&json!({"code": 200, "msg": "success", "data": {"taskId": "t"}})));
    assert!(!v.is_valid(&json!({"code": 200, "msg": null, "data": null})));
}

#[tokio::test]
async fn record_info_errors_conform_both_ways() {
    let c = Contract::new("get-task-details.json");
    for http_status in [false, true] {
        let s = sim(|c| c.http_error_status = http_status).await;
        let base = format!("{}{RECORD}", s.base_url());
        let cases = [
            (
                get(format!("{base}?taskId=nope"), KEY).await,
                if http_status { 404 } else { 422 },
            ),
            (get(base.clone(), KEY).await, 400),
            (get(format!("{base}?taskId=nope"), "wrong").await, 401),
        ];
        for (answer, code) in cases {
            assert_eq!(answer.body["code"], json!(code), "{}", answer.body);
            let status = if http_status && code != 422 {
                code as u16
            } else {
                200
            };
            assert_eq!(answer.status, status, "{}", answer.body);
            c.check(
                RECORD,
                &answer,
                &format!("{code} (HTTP status: {http_status})"),
            );
        }
    }
}

#[tokio::test]
async fn credit_and_download_url_answers_conform() {
    let c = Contract::new("common.json");
    let s = sim(|_| {}).await;
    let credit = "/api/v1/chat/credit";
    c.check(
        credit,
        &get(format!("{}{credit}", s.base_url()), KEY).await,
        "credit",
    );
    c.check(
        credit,
        &get(format!("{}{credit}", s.base_url()), "wrong").await,
        "credit 401",
    );
    let link = "/api/v1/common/download-url";
    let url = format!("{}{link}", s.base_url());
    let own = json!({"url": format!("{}/results/x.mp4", s.base_url())});
    c.check(link, &post(url.clone(), KEY, &own).await, "link");
    c.check(
        link,
        &post(url, KEY, &json!({"url": "https://example.com/x"})).await,
        "url is wrong",
    );
}

fn png_form() -> kling_api::reqwest::multipart::Form {
    kling_api::reqwest::multipart::Form::new()
        .text("uploadPath", "images")
        .part(
            "file",
            kling_api::reqwest::multipart::Part::bytes(b"\x89PNG\r\n\x1a\n".to_vec())
                .file_name("a.png")
                .mime_str("image/png")
                .unwrap(),
        )
}

#[tokio::test]
async fn every_upload_route_conforms_both_ways() {
    let c = Contract::new("file-upload.json");
    for http_status in [false, true] {
        let s = sim(|c| c.http_error_status = http_status).await;
        let on = |route: &str| format!("{}{route}", s.upload_base_url());
        let expect = |answer: &Answer, code: i64, what: &str, route: &str| {
            assert_eq!(answer.body["code"], json!(code), "{what}: {}", answer.body);
            let status = if http_status { code as u16 } else { 200 };
            assert_eq!(answer.status, status, "{what}: {}", answer.body);
            c.check(
                route,
                answer,
                &format!("{what} (HTTP status: {http_status})"),
            );
        };
        let base64 = "/api/file-base64-upload";
        let png =
            json!({"base64Data": "data:image/png;base64,iVBORw0KGgo=", "uploadPath": "images/t"});
        expect(&post(on(base64), KEY, &png).await, 200, "base64", base64);
        let bad = json!({"base64Data": "%%%", "uploadPath": "i"});
        expect(
            &post(on(base64), KEY, &bad).await,
            400,
            "bad base64",
            base64,
        );
        expect(
            &post(on(base64), KEY, &json!({"base64Data": "x"})).await,
            400,
            "no path",
            base64,
        );
        expect(
            &post(on(base64), "wrong", &png).await,
            401,
            "base64 key",
            base64,
        );

        let url = "/api/file-url-upload";
        let remote = json!({"fileUrl": "https://example.com/a.png", "uploadPath": "images"});
        expect(&post(on(url), KEY, &remote).await, 200, "url", url);
        expect(
            &post(on(url), KEY, &json!({"uploadPath": "i"})).await,
            400,
            "no url",
            url,
        );
        expect(&post(on(url), "wrong", &remote).await, 401, "url key", url);

        let stream = "/api/file-stream-upload";
        let sent = |key: &'static str, form| {
            answer(http().post(on(stream)).bearer_auth(key).multipart(form))
        };
        expect(&sent(KEY, png_form()).await, 200, "stream", stream);
        let no_file = kling_api::reqwest::multipart::Form::new().text("uploadPath", "images");
        expect(&sent(KEY, no_file).await, 400, "no file", stream);
        expect(&sent("wrong", png_form()).await, 401, "stream key", stream);
    }
}

/// Accepts one HTTP request on loopback and answers 200; returns its body.
async fn receive_one(listener: tokio::net::TcpListener) -> Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let (mut socket, _) = listener.accept().await.unwrap();
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = socket.read(&mut buf).await.unwrap();
        assert!(n > 0, "the callback ended early");
        bytes.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&bytes);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap())
                })
                .unwrap_or(0);
            if body.len() >= length {
                let body: Value = serde_json::from_str(&body[..length]).unwrap();
                socket
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await
                    .unwrap();
                return body;
            }
        }
    }
}

#[tokio::test]
async fn callbacks_conform_to_the_record_answer() {
    let c = Contract::new("get-task-details.json");
    for fail in [false, true] {
        let s = sim(|c| c.lifecycle.fail_fraction = if fail { 1.0 } else { 0.0 }).await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut body = create_body("cb");
        body["callBackUrl"] = json!(format!("http://{}/cb", listener.local_addr().unwrap()));
        let created = post(format!("{}{CREATE}", s.base_url()), KEY, &body).await;
        assert_eq!(created.body["code"], json!(200));
        let callback = tokio::time::timeout(Duration::from_secs(30), receive_one(listener))
            .await
            .expect("a callback within 30 s");
        assert_eq!(
            callback["data"]["state"],
            json!(if fail { "fail" } else { "success" })
        );
        c.check(
            RECORD,
            &Answer {
                status: 200,
                body: callback,
            },
            "callback",
        );
    }
}

#[test]
fn nullable_is_strict() {
    assert_eq!(
        to_json_schema(&json!({"type": "string", "nullable": true, "example": "x"})),
        json!({"type": ["string", "null"]})
    );
    assert_eq!(
        to_json_schema(&json!({"type": "string", "nullable": true, "enum": ["a"]})),
        json!({"type": ["string", "null"], "enum": ["a", null]})
    );
    // Without a type, nullable adds nothing: null fails the allOf.
    let schema = to_json_schema(&json!({"nullable": true, "allOf": [{"type": "object"}]}));
    assert!(!jsonschema::is_valid(&schema, &Value::Null));
}
