//! The createTask `input` fields beyond image, audio and prompt: set through
//! the generated builder (typed, checked by the spec's own rules) or as raw
//! JSON, so a field a new spec version adds is usable without an SDK release.

use std::collections::BTreeMap;

use kling_api::types::KlingAiAvatarV1ProBodyInput as Input;
use serde_json::{Map, Value};

use crate::error::{Error, Field};

/// The generated builder of the createTask `input`, as the spec this SDK was
/// built from defines it: one setter per field. See
/// [`AvatarRequestBuilder::input_with`](crate::request::AvatarRequestBuilder::input_with).
pub type InputBuilder = kling_api::types::builder::KlingAiAvatarV1ProBodyInput;

/// The fields the request's own methods set (`image`, `audio`, `prompt`).
const OWNED: &[(&str, &str)] = &[
    ("image_url", "AvatarRequestBuilder::image"),
    ("audio_url", "AvatarRequestBuilder::audio"),
    ("prompt", "AvatarRequestBuilder::prompt"),
];

/// What stands in for the owned fields while the other fields are checked.
pub(super) fn baseline() -> InputBuilder {
    Input::builder()
        .image_url("https://placeholder.invalid/image")
        .audio_url("https://placeholder.invalid/audio")
        .prompt("")
}

/// The JSON Schema of the createTask `input`, derived from the generated type
/// (so from the spec): `properties` names every field the spec knows, with its
/// type and limits: what a caller can check a field against before setting
/// it (the `kling` CLI does, for `--set`).
pub fn input_schema() -> Value {
    let schema = kling_api::schemars::schema_for!(Input);
    serde_json::to_value(schema).unwrap_or(Value::Null)
}

fn known_fields() -> Vec<String> {
    input_schema()
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

fn to_map(input: &Input) -> Map<String, Value> {
    match serde_json::to_value(input) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

/// The fields `hook` and `raw` set, checked: a typed field must convert and a
/// raw value for a known field must have its type; an owned field is refused;
/// a field the spec does not know is kept with a warning.
pub(crate) fn collect(
    hook: Option<InputBuilder>,
    raw: BTreeMap<String, Value>,
    warnings: &mut Vec<String>,
) -> Result<BTreeMap<String, Value>, Error> {
    let base = to_map(&Input::try_from(baseline()).expect("the baseline input is valid"));
    let mut fields = BTreeMap::new();
    if let Some(hook) = hook {
        let typed = Input::try_from(hook)
            .map_err(|e| Error::invalid(Field::Input, None, format!("input_with: {e}")))?;
        for (key, value) in to_map(&typed) {
            if base.get(&key) == Some(&value) {
                continue;
            }
            owned(&key)?;
            fields.insert(key, value);
        }
    }
    let known = known_fields();
    for (key, value) in raw {
        owned(&key)?;
        if known.contains(&key) {
            let mut probe = base.clone();
            probe.insert(key.clone(), value.clone());
            serde_json::from_value::<Input>(Value::Object(probe)).map_err(|e| {
                Error::invalid(
                    Field::Input,
                    Some(key.clone()),
                    format!("{value} does not fit the spec's input.{key}: {e}"),
                )
            })?;
        } else {
            warnings.push(format!(
                "input.{key} is not in the spec this SDK was built from ({}); it is sent as \
                 given, unchecked",
                known.join(", ")
            ));
        }
        fields.insert(key, value);
    }
    Ok(fields)
}

fn owned(key: &str) -> Result<(), Error> {
    match OWNED.iter().find(|(k, _)| *k == key) {
        Some((_, method)) => Err(Error::invalid(
            Field::Input,
            Some(key.to_owned()),
            format!("input.{key} is set with {method}, not as an extra field"),
        )),
        None => Ok(()),
    }
}

/// The createTask `input`: the typed one when every extra field is one the
/// spec knows, else JSON with the unknown ones added.
pub(crate) enum Built {
    Typed(Input),
    Json(Value),
}

pub(crate) fn build(
    image_url: String,
    audio_url: String,
    prompt: &str,
    extra: &BTreeMap<String, Value>,
) -> Result<Built, Error> {
    let typed = Input::try_from(
        Input::builder()
            .image_url(image_url)
            .audio_url(audio_url)
            .prompt(prompt),
    )
    .map_err(|e| Error::invalid(Field::Input, None, e.to_string()))?;
    if extra.is_empty() {
        return Ok(Built::Typed(typed));
    }
    let mut map = to_map(&typed);
    map.extend(extra.iter().map(|(k, v)| (k.clone(), v.clone())));
    let known = known_fields();
    if extra.keys().all(|k| known.contains(k)) {
        let typed = serde_json::from_value(Value::Object(map))
            .map_err(|e| Error::invalid(Field::Input, None, e.to_string()))?;
        Ok(Built::Typed(typed))
    } else {
        Ok(Built::Json(Value::Object(map)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn owned_fields_are_refused_both_ways() {
        let mut warnings = Vec::new();
        let raw = BTreeMap::from([("image_url".to_owned(), json!("https://x.test/a.png"))]);
        let error = collect(None, raw, &mut warnings).unwrap_err();
        assert!(
            error.to_string().contains("AvatarRequestBuilder::image"),
            "{error}"
        );
        let hook = baseline().prompt("changed");
        let error = collect(Some(hook), BTreeMap::new(), &mut warnings).unwrap_err();
        assert!(
            error.to_string().contains("AvatarRequestBuilder::prompt"),
            "{error}"
        );
        // A hook that changes nothing sets nothing.
        assert!(
            collect(Some(baseline()), BTreeMap::new(), &mut warnings)
                .unwrap()
                .is_empty()
        );
        assert!(warnings.is_empty());
    }

    #[test]
    fn unknown_fields_are_kept_with_a_warning_and_sent_as_json() {
        let mut warnings = Vec::new();
        let raw = BTreeMap::from([("seed".to_owned(), json!(42))]);
        let fields = collect(None, raw, &mut warnings).unwrap();
        assert_eq!(fields["seed"], json!(42));
        assert!(
            warnings[0].contains("input.seed is not in the spec"),
            "{warnings:?}"
        );
        assert!(
            warnings[0].contains("image_url, audio_url, prompt")
                || warnings[0].contains("audio_url")
        );
        let Built::Json(body) = build(
            "https://x.test/a.png".into(),
            "https://x.test/a.mp3".into(),
            "p",
            &fields,
        )
        .unwrap() else {
            panic!("an unknown field needs the JSON body");
        };
        assert_eq!(body["seed"], json!(42));
        assert_eq!(body["prompt"], json!("p"));
        assert!(matches!(
            build(
                "https://x.test/a.png".into(),
                "https://x.test/a.mp3".into(),
                "p",
                &BTreeMap::new()
            )
            .unwrap(),
            Built::Typed(_)
        ));
    }

    #[test]
    fn the_schema_names_the_spec_fields() {
        let schema = input_schema();
        let props = schema["properties"].as_object().unwrap();
        for key in ["image_url", "audio_url", "prompt"] {
            assert!(props.contains_key(key), "{schema}");
        }
        assert_eq!(known_fields().len(), props.len());
    }
}
