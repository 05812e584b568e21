//! `kling version`: versions and where things are kept.

use crate::error::code;
use crate::output::Out;
use serde_json::json;

pub fn version(out: &Out) -> u8 {
    let models: Vec<&str> = kling_api_ext::Model::ALL
        .iter()
        .map(|m| m.as_str())
        .collect();
    // The createTask input fields the API document defines (`--set` takes
    // those besides the three with their own flags).
    let schema = kling_api_ext::request::input_schema();
    let fields: Vec<&str> = schema["properties"]
        .as_object()
        .map(|p| p.keys().map(String::as_str).collect())
        .unwrap_or_default();
    let info = json!({
        "kling": env!("CARGO_PKG_VERSION"),
        "userAgent": kling_api_ext::config::DEFAULT_USER_AGENT,
        "api": {"spec": "spec/ai-avatar-v1-pro.json", "version": "1.0.0", "baseUrl": kling_api_ext::kling_api::DEFAULT_BASE_URL,
                "uploadBaseUrl": kling_api_ext::kling_api::DEFAULT_UPLOAD_BASE_URL},
        "models": models,
        "inputFields": fields,
    });
    if out.json {
        out.document(&info);
    } else {
        out.text(&format!(
            "kling {} (API document 1.0.0, {})\nmodels: {} (or any other id, unchecked)\ninput fields: {}",
            env!("CARGO_PKG_VERSION"),
            kling_api_ext::kling_api::DEFAULT_BASE_URL,
            models.join(", "),
            fields.join(", ")
        ));
    }
    code::OK
}
