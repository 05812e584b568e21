//! The JSON Schema that schemars derives for the generated createTask body must
//! agree with the request schema in the vendored `spec/ai-avatar-v1-pro.json`.

use kling_api::types::KlingAiAvatarV1ProBody;
use serde_json::{Value, json};

use crate::support::spec;

/// Model ids outside the seed's one-value enum: the generated field takes any
/// id (`open_model_ids` in kling-api/build/patches.rs) so the SDK can send
/// them; nothing else may differ.
const OTHER_MODELS: &[&str] = &[
    "kling/ai-avatar-pro",
    "kling/ai-avatar-standard",
    "kling/v1-avatar-standard",
    "acme/some-future-model",
];

fn spec_request_schema() -> Value {
    spec("ai-avatar-v1-pro.json")
        .pointer(
            "/paths/~1api~1v1~1jobs~1createTask/post/requestBody/content/application~1json/schema",
        )
        .expect("createTask request schema")
        .clone()
}

fn derived_schema() -> Value {
    serde_json::to_value(kling_api::schemars::schema_for!(KlingAiAvatarV1ProBody)).unwrap()
}

/// Follows `$ref` and schemars' `allOf: [$ref]` / `anyOf: [$ref, null]` wrappers.
fn resolve<'a>(root: &'a Value, schema: &'a Value) -> &'a Value {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.trim_start_matches("#/definitions/");
        return resolve(root, &root["definitions"][name]);
    }
    for key in ["allOf", "anyOf"] {
        if let Some(items) = schema.get(key).and_then(Value::as_array)
            && let Some(first) = items.iter().find(|s| s.get("type") != Some(&json!("null")))
        {
            return resolve(root, first);
        }
    }
    schema
}

fn sorted_strings(value: &Value) -> Vec<String> {
    let mut items: Vec<String> = value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    items.sort();
    items
}

#[test]
fn derived_schema_requires_what_the_spec_requires() {
    let spec = spec_request_schema();
    let derived = derived_schema();
    assert_eq!(
        sorted_strings(&derived["required"]),
        sorted_strings(&spec["required"])
    );
    let derived_input = resolve(&derived, &derived["properties"]["input"]);
    assert_eq!(
        sorted_strings(&derived_input["required"]),
        sorted_strings(&spec["properties"]["input"]["required"]),
    );
    assert_eq!(
        sorted_strings(&derived_input["required"]),
        ["audio_url", "image_url", "prompt"]
    );
}

#[test]
fn derived_schema_limits_the_prompt_to_5000_characters() {
    let spec = spec_request_schema();
    let derived = derived_schema();
    let derived_input = resolve(&derived, &derived["properties"]["input"]);
    let prompt = resolve(&derived, &derived_input["properties"]["prompt"]);
    assert_eq!(prompt["type"], json!("string"));
    assert_eq!(prompt["maxLength"], json!(5000));
    assert_eq!(
        prompt["maxLength"],
        spec["properties"]["input"]["properties"]["prompt"]["maxLength"]
    );
}

#[test]
fn derived_schema_takes_any_model_id() {
    let spec = spec_request_schema();
    let derived = derived_schema();
    let model = resolve(&derived, &derived["properties"]["model"]);
    assert_eq!(model["type"], json!("string"), "{model}");
    assert_eq!(
        model.get("enum"),
        None,
        "the generated model is open: {model}"
    );
    assert_eq!(
        sorted_strings(&spec["properties"]["model"]["enum"]),
        ["kling/ai-avatar-v1-pro"],
        "the seed's enum changed"
    );
}

#[test]
fn derived_and_spec_schemas_accept_and_reject_the_same_bodies() {
    let spec = spec_request_schema();
    let derived = derived_schema();
    let spec_validator = jsonschema::validator_for(&spec).expect("spec schema compiles");
    let derived_validator = jsonschema::validator_for(&derived).expect("derived schema compiles");
    let input = |prompt: &str| json!({"image_url": "https://x.test/a.png", "audio_url": "https://x.test/a.mp3", "prompt": prompt});
    let cases = [
        (
            json!({"model": "kling/ai-avatar-v1-pro", "input": input("")}),
            true,
        ),
        (
            json!({"model": "kling/ai-avatar-v1-pro", "input": input(&"é".repeat(5000))}),
            true,
        ),
        (
            json!({"model": "kling/ai-avatar-v1-pro", "input": input(&"é".repeat(5001))}),
            false,
        ),
        (
            json!({"model": "kling/ai-avatar-v1-pro", "callBackUrl": "https://x.test/cb", "input": input("hi")}),
            true,
        ),
        (json!({"input": input("hi")}), false),
        (
            json!({"model": "kling/ai-avatar-v1-pro", "input": {"image_url": "https://x.test/a.png", "prompt": ""}}),
            false,
        ),
    ];
    for (body, valid) in cases {
        let label = body.to_string().chars().take(120).collect::<String>();
        assert_eq!(
            spec_validator.is_valid(&body),
            valid,
            "spec schema on {label}"
        );
        assert_eq!(
            derived_validator.is_valid(&body),
            valid,
            "derived schema on {label}"
        );
        // The generated type agrees with both.
        assert_eq!(
            serde_json::from_value::<KlingAiAvatarV1ProBody>(body).is_ok(),
            valid,
            "type on {label}"
        );
    }
    // The one intended difference: other model ids.
    for model in OTHER_MODELS {
        let body = json!({"model": model, "input": input("")});
        assert!(
            !spec_validator.is_valid(&body),
            "{model}: the seed's schema does not know it"
        );
        assert!(
            derived_validator.is_valid(&body),
            "{model}: the generated type must accept it"
        );
    }
}
