//! A second reading of a `code: 200` answer the generated type refused: one
//! optional field of an unexpected type (a fractional `progress`, a number
//! sent as a string) must not make the whole answer unreadable. Each field
//! of `data` is tried on its own beside the fields the type requires; a
//! field that cannot be taken as sent is taken converted (a number from a
//! string, an integer from a fraction, a string from a number) or left out,
//! and logged at debug level. What the type requires (a task's id and
//! state) is never made up: without it the answer stays unreadable.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::Operation;

/// The envelope `whole` with `data` in place of its data.
fn with_data(whole: &Value, data: Map<String, Value>) -> Value {
    let mut value = whole.clone();
    value["data"] = Value::Object(data);
    value
}

/// The name serde gives in "missing field `NAME`".
fn missing_field(error: &serde_json::Error) -> Option<String> {
    let text = error.to_string();
    let rest = text.strip_prefix("missing field `")?;
    Some(rest.split('`').next()?.to_owned())
}

/// Other forms of `value` that may be what the type wanted.
fn conversions(value: &Value) -> Vec<Value> {
    let mut forms = Vec::new();
    match value {
        Value::String(text) => {
            if let Ok(n) = text.trim().parse::<i64>() {
                forms.push(Value::from(n));
            }
            if let Ok(x) = text.trim().parse::<f64>()
                && x.is_finite()
            {
                forms.push(Value::from(x));
            }
        }
        Value::Number(n) => {
            if let Some(x) = n.as_f64()
                && x.is_finite()
                && n.as_i64().is_none()
                && x.abs() < 9.0e15
            {
                forms.push(Value::from(x.trunc() as i64));
            }
            forms.push(Value::String(n.to_string()));
        }
        Value::Bool(b) => forms.push(Value::String(b.to_string())),
        _ => {}
    }
    forms
}

/// `bytes` read as `B`, leaving out or converting the optional fields of
/// `data` that `B` cannot take as sent. `None` when the body is not a
/// `code: 200` envelope with an object as data, or when what `B` requires
/// is missing or unusable.
pub(crate) fn read<B: DeserializeOwned>(operation: Operation, bytes: &[u8]) -> Option<B> {
    let whole: Value = serde_json::from_slice(bytes).ok()?;
    if whole.get("code").and_then(Value::as_i64) != Some(200) {
        return None;
    }
    let data = whole.get("data")?.as_object()?.clone();
    // The fields the type requires, as serde names them one by one.
    let mut base = Map::new();
    loop {
        match serde_json::from_value::<B>(with_data(&whole, base.clone())) {
            Ok(_) => break,
            Err(error) => {
                let name = missing_field(&error)?;
                if base.contains_key(&name) {
                    return None;
                }
                base.insert(name.clone(), data.get(&name)?.clone());
            }
        }
    }
    let mut taken = base.clone();
    for (name, value) in &data {
        if base.contains_key(name) {
            continue;
        }
        let fits = |candidate: &Value| {
            let mut probe = base.clone();
            probe.insert(name.clone(), candidate.clone());
            serde_json::from_value::<B>(with_data(&whole, probe)).is_ok()
        };
        if fits(value) {
            taken.insert(name.clone(), value.clone());
            continue;
        }
        match conversions(value).into_iter().find(|c| fits(c)) {
            Some(converted) => {
                tracing::debug!(%operation, field = %name, sent = %crate::redact(&value.to_string()), taken = %converted, "an answer's field had an unexpected type; converted");
                taken.insert(name.clone(), converted);
            }
            None => {
                tracing::debug!(%operation, field = %name, sent = %crate::redact(&value.to_string()), "an answer's field had an unexpected type; left out");
            }
        }
    }
    serde_json::from_value::<B>(with_data(&whole, taken)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    type Record = kling_api::types::GetTaskDetailsResponse;

    fn record(data: Value) -> Option<kling_api::types::TaskRecord> {
        let body = json!({"code": 200, "msg": "success", "data": data});
        read::<Record>(Operation::GetTask, &serde_json::to_vec(&body).unwrap())?.data
    }

    #[test]
    fn an_odd_optional_field_is_converted_or_left_out() {
        let r = record(json!({
            "taskId": "t1", "state": "success", "progress": 12.5, "costTime": "127",
            "resultJson": "{\"resultUrls\":[\"https://f.example/v.mp4\"]}",
            "createTime": {"odd": true}, "failMsg": null
        }))
        .unwrap();
        assert_eq!(r.task_id, "t1");
        assert_eq!(r.state, "success");
        assert_eq!(r.progress, Some(12));
        assert_eq!(r.cost_time, Some(127.0));
        assert_eq!(r.create_time, None);
        assert!(r.result_json.unwrap().contains("v.mp4"));
    }

    #[test]
    fn what_the_type_requires_is_never_made_up() {
        assert!(record(json!({"state": "success", "progress": 1.5})).is_none());
        assert!(record(json!({"taskId": "t1", "state": 7})).is_none());
        let body = json!({"code": 500, "msg": "x", "data": {"taskId": "t1", "state": "fail"}});
        assert!(read::<Record>(Operation::GetTask, &serde_json::to_vec(&body).unwrap()).is_none());
        assert!(read::<Record>(Operation::GetTask, b"<html>502</html>").is_none());
    }
}
