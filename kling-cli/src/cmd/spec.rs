//! `kling spec`: the API documents this CLI was built from, and the drift
//! check against the published one.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Value, json};

use crate::cli::{SpecArgs, SpecCheckArgs, SpecCommand};
use crate::error::code;
use crate::output::Out;

/// The vendored document and where it was published.
const VENDORED: &str = "ai-avatar-v1-pro.json";
/// Where `spec/origin.json` says the vendored document comes from (the
/// default of `--url`).
pub const ORIGIN_URL: &str = "https://docs.apikley.ru/kling-api/Kling_ai-avatar-v1-pro";

pub async fn spec(out: &Out, args: SpecArgs) -> u8 {
    match args.command {
        SpecCommand::Show { name, contract } => show(out, &name, contract),
        SpecCommand::Check(args) => check(out, args).await,
    }
}

fn show(out: &Out, name: &str, contract: bool) -> u8 {
    let table = if contract {
        kling_api_ext::kling_api::spec::ALL
    } else {
        kling_api_ext::kling_api::spec::SOURCES
    };
    match table.iter().find(|(n, _)| *n == name) {
        Some((_, text)) => {
            out.text(text.trim_end());
            code::OK
        }
        None => {
            let names: Vec<&str> = table.iter().map(|(n, _)| *n).collect();
            out.usage(&format!(
                "no document {name:?}; there are {}",
                names.join(", ")
            ))
        }
    }
}

async fn check(out: &Out, args: SpecCheckArgs) -> u8 {
    let url = args.url.as_deref().unwrap_or(ORIGIN_URL);
    let published = match fetch(url).await {
        Ok(doc) => doc,
        Err(why) => {
            let message = format!("cannot read the published document at {url}: {why}");
            out.problem(&message);
            if out.json {
                out.document(&json!({"url": url, "error": message}));
            }
            return code::SERVICE;
        }
    };
    let vendored_text = kling_api_ext::kling_api::spec::SOURCES
        .iter()
        .find(|(n, _)| *n == VENDORED)
        .map(|(_, t)| *t)
        .unwrap_or_default();
    let vendored: Value = serde_json::from_str(vendored_text).unwrap_or(Value::Null);
    let published_value: Value = serde_json::from_str(&published).unwrap_or(Value::Null);
    let same = published_value == vendored;
    let before = outline(&vendored);
    let after = outline(&published_value);
    let gained: Vec<&String> = after.difference(&before).collect();
    let lost: Vec<&String> = before.difference(&after).collect();
    if out.json {
        out.document(&json!({
            "url": url, "same": same, "gained": gained, "lost": lost,
        }));
    }
    if same {
        out.say(&format!(
            "spec/{VENDORED} is the published document at {url} (after normalising)"
        ));
        return code::OK;
    }
    out.say(&format!(
        "spec/{VENDORED} differs from the published document at {url}:"
    ));
    if gained.is_empty() && lost.is_empty() {
        out.say("  the surface is the same (descriptions, examples or order differ)");
    }
    for line in &gained {
        out.say(&format!("  + {line}"));
    }
    for line in &lost {
        out.say(&format!("  - {line}"));
    }
    if args.update {
        match update(&args.spec_dir, &published, url) {
            Ok(()) => out.say(&format!(
                "replaced {} and recorded its SHA-256 in {}; rebuild, review the surface diff \
                 (cargo test -p kling-api --test surface) and the patches",
                args.spec_dir.join(VENDORED).display(),
                args.spec_dir.join("origin.json").display()
            )),
            Err(why) => {
                out.problem(&why);
                return code::LOCAL;
            }
        }
    } else {
        out.say("  to take it: kling spec check --update (in a checkout, from its root)");
    }
    code::DIFFERS
}

/// The document at `url`, as text, if it is JSON (an HTML page is not).
async fn fetch(url: &str) -> Result<String, String> {
    // ring on purpose (no C toolchain, a faster build); rustls 0.23.48
    // deprecates it only for lacking post-quantum key exchange.
    #[allow(deprecated)]
    let _ = kling_api_ext::kling_api::rustls::crypto::ring::default_provider().install_default();
    let client = kling_api_ext::reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .user_agent(kling_api_ext::config::DEFAULT_USER_AGENT)
        .build()
        .map_err(|e| e.to_string())?;
    let response = client
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .map_err(|e| chain(&e))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    let text = response.text().await.map_err(|e| chain(&e))?;
    match serde_json::from_str::<Value>(&text) {
        Ok(doc) if doc.get("openapi").is_some() => Ok(text),
        Ok(_) => Err("the answer is JSON but not an OpenAPI document".into()),
        Err(_) => Err(format!(
            "the answer is not JSON (it starts {:?})",
            text.chars().take(40).collect::<String>()
        )),
    }
}

/// An error with its causes: reqwest's own text hides why a connection failed.
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// Replaces the vendored file with `text` as published, and records its
/// origin (URL, date, SHA-256) in `origin.json`: the one sanctioned way to
/// change it.
fn update(dir: &Path, text: &str, url: &str) -> Result<(), String> {
    use sha2::Digest as _;
    let file = dir.join(VENDORED);
    if !file.is_file() {
        return Err(format!(
            "{} is not there: run --update from the root of a checkout, or pass --spec-dir",
            file.display()
        ));
    }
    let sha = hex(&sha2::Sha256::digest(text.as_bytes()));
    let origin = json!({
        "file": VENDORED,
        "url": url,
        "retrieved": today(),
        "sha256": sha,
        "note": "The vendored document's origin. Changed only by `kling spec check --update`, which replaces the file and records the new date and SHA-256; a contract test checks the file against this SHA-256.",
    });
    let origin = serde_json::to_string_pretty(&origin).unwrap_or_default() + "\n";
    use crate::atomic::{Access, write};
    write(&file, text.as_bytes(), Access::Shared)
        .and_then(|()| write(&dir.join("origin.json"), origin.as_bytes(), Access::Shared))
        .map_err(|e| format!("cannot write {}: {e}", dir.display()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let time = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs),
    );
    time.to_string()[..10].to_owned()
}

/// What the generated client's surface is made of, one line per item:
/// operations, their documented answers, and every request and answer field
/// with its type, limits and whether it is required. Descriptions and
/// examples are left out, so only what would change the code shows.
pub fn outline(doc: &Value) -> BTreeSet<String> {
    let mut lines = BTreeSet::new();
    let Some(paths) = doc.get("paths").and_then(Value::as_object) else {
        return lines;
    };
    for (path, item) in paths {
        let Some(item) = item.as_object() else {
            continue;
        };
        for (method, op) in item {
            let route = format!("{} {path}", method.to_uppercase());
            let id = op.get("operationId").and_then(Value::as_str).unwrap_or("-");
            lines.insert(format!("operation {route} (operationId {id})"));
            for (media, body) in op
                .pointer("/requestBody/content")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                if let Some(schema) = body.get("schema") {
                    fields(
                        doc,
                        schema,
                        &format!("{route} request ({media})"),
                        "",
                        &mut lines,
                        0,
                    );
                }
            }
            for (status, answer) in op
                .get("responses")
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                lines.insert(format!("answer {route} {status}"));
                if let Some(schema) = answer.pointer("/content/application~1json/schema") {
                    fields(doc, schema, &format!("{route} {status}"), "", &mut lines, 0);
                }
            }
        }
    }
    lines
}

fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(reference) => reference
            .strip_prefix('#')
            .and_then(|p| doc.pointer(p))
            .map_or(schema, |s| resolve(doc, s)),
        None => schema,
    }
}

fn fields(
    doc: &Value,
    schema: &Value,
    at: &str,
    prefix: &str,
    lines: &mut BTreeSet<String>,
    depth: usize,
) {
    if depth > 16 {
        return;
    }
    let schema = resolve(doc, schema);
    for key in ["allOf", "oneOf", "anyOf"] {
        for part in schema
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            fields(doc, part, at, prefix, lines, depth + 1);
        }
    }
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for (name, prop) in schema
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let path = format!("{prefix}{name}");
        let prop = resolve(doc, prop);
        let mut facts = vec![describe(doc, prop)];
        if required.contains(&name.as_str()) {
            facts.push("required".into());
        }
        lines.insert(format!("field {at} {path}: {}", facts.join(", ")));
        fields(doc, prop, at, &format!("{path}."), lines, depth + 1);
        if let Some(items) = prop.get("items") {
            fields(doc, items, at, &format!("{path}[]."), lines, depth + 1);
        }
    }
}

fn describe(doc: &Value, schema: &Value) -> String {
    let mut facts = Vec::new();
    match schema.get("type").and_then(Value::as_str) {
        Some(t) => facts.push(t.to_owned()),
        None => {
            let branches: Vec<String> = ["oneOf", "anyOf"]
                .iter()
                .filter_map(|k| schema.get(*k).and_then(Value::as_array))
                .flatten()
                .map(|s| describe(doc, resolve(doc, s)))
                .collect();
            facts.push(if branches.is_empty() {
                "any".into()
            } else {
                branches.join(" | ")
            });
        }
    }
    if schema.get("nullable") == Some(&Value::Bool(true)) {
        facts.push("nullable".into());
    }
    for key in [
        "format",
        "maxLength",
        "minLength",
        "maximum",
        "minimum",
        "default",
    ] {
        if let Some(value) = schema.get(key) {
            facts.push(format!("{key} {value}"));
        }
    }
    if let Some(values) = schema.get("enum") {
        facts.push(format!("enum {values}"));
    }
    facts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outline_names_fields_with_types_and_limits() {
        let doc: Value = serde_json::from_str(
            kling_api_ext::kling_api::spec::SOURCES
                .iter()
                .find(|(n, _)| *n == VENDORED)
                .unwrap()
                .1,
        )
        .unwrap();
        let lines = outline(&doc);
        assert!(
            lines.contains("field POST /api/v1/jobs/createTask request (application/json) input.prompt: string maxLength 5000, required"),
            "{lines:#?}"
        );
        assert!(
            lines.contains("answer POST /api/v1/jobs/createTask 200"),
            "{lines:#?}"
        );
        assert!(
            lines.contains("field POST /api/v1/jobs/createTask 200 code: integer enum [200,401,402,404,422,429,455,500,501,505]"),
            "{lines:#?}"
        );
    }
}
