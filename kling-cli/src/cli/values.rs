//! Parsers of option values: model ids and `--set` fields (the SDK's own
//! checks), durations, and the rate limit and where it is counted.

use std::time::Duration;

use kling_api_ext::Model;

/// Any model id: a known one, or another sent unchecked (the request carries
/// a warning saying so). Blank ids and ids with whitespace are refused, as the
/// SDK refuses them when a request is built.
pub fn parse_model(text: &str) -> Result<Model, String> {
    Model::try_custom(text).map_err(|e| match e {
        kling_api_ext::Error::InvalidInput { reason, .. } => reason,
        other => other.to_string(),
    })
}

/// Builds a request with placeholder media and `f`'s setting: the SDK's own
/// check of that setting, with its reason.
fn check_with_sdk(
    f: impl FnOnce(
        kling_api_ext::request::AvatarRequestBuilder,
    ) -> kling_api_ext::request::AvatarRequestBuilder,
) -> Result<(), String> {
    f(kling_api_ext::AvatarRequest::builder()
        .image("https://placeholder.invalid/a.png")
        .audio("https://placeholder.invalid/a.mp3"))
    .build()
    .map(drop)
    .map_err(|e| match e {
        kling_api_ext::Error::InvalidInput { reason, .. } => reason,
        other => other.to_string(),
    })
}

/// `--set KEY=VALUE`: a field of the createTask `input` the spec defines,
/// its value parsed by the field's type in the schema (a string as is; a
/// number, boolean, array or object as JSON).
pub fn parse_set(text: &str) -> Result<(String, serde_json::Value), String> {
    use serde_json::Value;
    let (key, value) = text
        .split_once('=')
        .ok_or("use KEY=VALUE, e.g. --set seed=42")?;
    let schema = kling_api_ext::request::input_schema();
    let props = schema["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let owned = [
        ("image_url", "--image"),
        ("audio_url", "--audio"),
        ("prompt", "--prompt"),
    ];
    if let Some((_, flag)) = owned.iter().find(|(k, _)| *k == key) {
        return Err(format!("{key} is set with {flag}"));
    }
    let others: Vec<&str> = props
        .keys()
        .map(String::as_str)
        .filter(|k| !owned.iter().any(|(o, _)| o == k))
        .collect();
    let Some(field) = props.get(key) else {
        return Err(format!(
            "the API document has no input field {key:?}; it has {}",
            if others.is_empty() {
                "none besides image_url, audio_url and prompt".to_owned()
            } else {
                others.join(", ")
            }
        ));
    };
    let types: Vec<&str> = match &field["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let parsed =
        if types.contains(&"string") && !types.iter().any(|t| *t != "string" && *t != "null") {
            Value::String(value.to_owned())
        } else {
            serde_json::from_str(value).map_err(|e| {
                format!(
                    "{key} takes {} (JSON): {e}",
                    if types.is_empty() {
                        "a value".to_owned()
                    } else {
                        types.join(" or ")
                    }
                )
            })?
        };
    // The SDK's own check, against the generated type.
    check_with_sdk(|b| b.extra_input(key, parsed.clone()))?;
    Ok((key.to_owned(), parsed))
}

/// `--rate-limit`: a limit, or none.
#[derive(Debug, Clone, Copy)]
pub struct RateLimitArg(pub Option<kling_api_ext::RateLimit>);

/// Where the CLI counts creation slots (`--rate-limit-store`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitStore {
    /// A file in the state directory: this host's processes share it.
    Host,
    /// This process only.
    Process,
    /// A PostgreSQL database: every host using it shares it.
    Postgres(String),
}

pub(super) fn parse_limit_store(text: &str) -> Result<LimitStore, String> {
    match text.trim() {
        "host" => Ok(LimitStore::Host),
        "process" => Ok(LimitStore::Process),
        url if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            Ok(LimitStore::Postgres(url.to_owned()))
        }
        _ => Err("use host, process or a postgres:// URL".into()),
    }
}

pub(super) fn parse_rate_limit(text: &str) -> Result<RateLimitArg, String> {
    if text.eq_ignore_ascii_case("off") {
        return Ok(RateLimitArg(None));
    }
    let (max, window) = text
        .split_once('/')
        .ok_or("use N/DURATION (e.g. 20/10s) or off")?;
    let max: u32 = max
        .trim()
        .parse()
        .map_err(|_| format!("{max:?} is not a whole number"))?;
    let window = parse_duration(window.trim())?;
    if max == 0 || window.is_zero() {
        return Err("the limit needs N > 0 and a duration > 0 (or off)".into());
    }
    Ok(RateLimitArg(Some(kling_api_ext::RateLimit::new(
        max, window,
    ))))
}

pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration =
        humantime::parse_duration(text).map_err(|e| format!("{e} (examples: 90s, 20m, 1h)"))?;
    // A zero timeout would end every wait (or request) before it starts,
    // after the money is spent.
    if duration.is_zero() {
        return Err("must be more than zero (examples: 90s, 20m, 1h)".into());
    }
    Ok(duration)
}

/// A number of credits: finite and not negative.
pub(crate) fn parse_credits(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 0.0 => Ok(n),
        _ => Err(format!("{text:?}: give a number of credits, 0 or more")),
    }
}
