//! Helpers shared by the contract tests.

use std::path::PathBuf;

use serde_json::Value;

/// The repository's root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The spec files, as `(file name, parsed JSON)`.
pub fn spec_files() -> Vec<(String, Value)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spec");
    let mut files: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .expect("spec/ exists")
        .map(|entry| entry.expect("readable spec/ entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        // The vendored document's origin record, not an OpenAPI document.
        .filter(|path| !path.ends_with("origin.json"))
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            let text = std::fs::read_to_string(&path).expect("readable spec file");
            (
                name,
                serde_json::from_str(&text).expect("spec file is JSON"),
            )
        })
        .collect();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        files.len(),
        4,
        "expected the four spec files, found {files:?}"
    );
    files
}

pub fn spec(name: &str) -> Value {
    spec_files()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("spec/{name} not found"))
        .1
}

/// `value` with object keys whose value is `null` removed, recursively, and
/// integers written as floats: to the generated types, a null optional field and
/// an absent one are the same, and `127` and `127.0` are the same `f64`.
pub fn normalize(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), normalize(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
        Value::Number(n) => n
            .as_f64()
            .and_then(serde_json::Number::from_f64)
            .map_or_else(|| value.clone(), Value::Number),
        other => other.clone(),
    }
}

/// Deserializes `example` into `T` and serializes it back.
pub fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(
    example: &Value,
) -> Result<Value, String> {
    let typed: T = serde_json::from_value(example.clone()).map_err(|e| e.to_string())?;
    serde_json::to_value(&typed).map_err(|e| e.to_string())
}
