//! The build script's patches, on the real documents and on changed copies: a
//! patch whose target is gone must stop the build with its name, and a renamed
//! `operationId` must not change the generated names.

#[allow(dead_code)]
#[path = "../build/patches.rs"]
mod patches;

use serde_json::{json, Value};

fn doc(name: &str) -> Value {
    // `spec/` in the package (a link to the workspace's in a checkout).
    let path = format!("{}/spec/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

const CREATE_DATA: &str = "/paths/~1api~1v1~1jobs~1createTask/post/responses/200/content/application~1json/schema/allOf/1/properties/data";

#[test]
fn contract_patches_fix_the_vendored_defects() {
    let mut d = doc("ai-avatar-v1-pro.json");
    patches::contract("ai-avatar-v1-pro.json", &mut d).unwrap();
    assert_eq!(
        d.pointer(&format!("{CREATE_DATA}/nullable")),
        Some(&json!(true))
    );
    assert!(d
        .pointer("/paths/~1api~1v1~1jobs~1createTask/post/responses/429")
        .is_some());
    assert_eq!(d.pointer("/info/contact/email"), None);
}

#[test]
fn a_patch_whose_target_is_gone_fails_with_its_name() {
    let mut d = doc("ai-avatar-v1-pro.json");
    d.pointer_mut("/paths/~1api~1v1~1jobs~1createTask/post/responses/200/content/application~1json/schema/allOf/1/properties")
        .unwrap()
        .as_object_mut()
        .unwrap()
        .remove("data");
    let error = patches::contract("ai-avatar-v1-pro.json", &mut d).unwrap_err();
    assert!(error.contains("`nullable_error_data`"), "{error}");
    assert!(error.contains("nothing at"), "{error}");
}

#[test]
fn a_patch_that_changes_nothing_fails_with_its_name() {
    // A new version that opened the code enum itself: the patch must be reviewed.
    let mut d = doc("get-task-details.json");
    d.pointer_mut("/components/schemas/Envelope/properties/code")
        .unwrap()
        .as_object_mut()
        .unwrap()
        .remove("enum");
    patches::contract("get-task-details.json", &mut d).unwrap();
    let error = patches::generation("get-task-details.json", &mut d)
        .err()
        .unwrap();
    assert!(
        error.contains("`open_code_enums` matched nothing"),
        "{error}"
    );
    // And a version that documents the 429 itself.
    let mut d = doc("ai-avatar-v1-pro.json");
    d.pointer_mut("/paths/~1api~1v1~1jobs~1createTask/post/responses")
        .unwrap()
        .as_object_mut()
        .unwrap()
        .insert("429".into(), json!({"description": "rate limited"}));
    let error = patches::contract("ai-avatar-v1-pro.json", &mut d).unwrap_err();
    assert!(error.contains("`document_rate_limit`"), "{error}");
}

#[test]
fn a_renamed_operation_keeps_its_pinned_names() {
    let mut d = doc("ai-avatar-v1-pro.json");
    let op = "/paths/~1api~1v1~1jobs~1createTask/post";
    d.pointer_mut(op).unwrap()["operationId"] = json!("create-avatar-task");
    patches::contract("ai-avatar-v1-pro.json", &mut d).unwrap();
    let seen = patches::generation("ai-avatar-v1-pro.json", &mut d).unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].spec_id, "create-avatar-task");
    assert_eq!(seen[0].id, "kling-ai-avatar-v1-pro");
    assert_eq!(
        d.pointer(&format!("{op}/operationId")),
        Some(&json!("kling-ai-avatar-v1-pro"))
    );
    for name in [
        "KlingAiAvatarV1ProBody",
        "KlingAiAvatarV1ProBodyInput",
        "KlingAiAvatarV1ProResponse",
        "KlingAiAvatarV1ProResponseData",
    ] {
        assert!(
            d.pointer(&format!("/components/schemas/{name}")).is_some(),
            "{name}"
        );
    }
    // The prompt's limit is read from the document, on the pinned input schema.
    let limits = patches::length_limits(&d);
    assert_eq!(
        limits,
        [(
            "KlingAiAvatarV1ProBodyInput".to_owned(),
            "prompt".to_owned(),
            5000
        )]
    );
    // Only 2xx answers reach the generator.
    let responses = d
        .pointer(&format!("{op}/responses"))
        .unwrap()
        .as_object()
        .unwrap();
    assert_eq!(responses.keys().collect::<Vec<_>>(), ["200"]);
}

#[test]
fn a_moved_operation_fails_the_build() {
    let mut d = doc("common.json");
    let paths = d.pointer_mut("/paths").unwrap().as_object_mut().unwrap();
    let item = paths.remove("/api/v1/chat/credit").unwrap();
    paths.insert("/api/v2/chat/credit".into(), item);
    let error = patches::generation("common.json", &mut d).err().unwrap();
    assert!(error.contains("GET /api/v1/chat/credit"), "{error}");
}
