//! Property tests: the fuzz targets' checks (`fuzz/`), bounded, so that every
//! CI run throws a few thousand hostile inputs at the parsers. Crashes the
//! fuzzers found are kept below as regression tests.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kling_api_ext::fuzzing;
use kling_api_ext::reqwest::header::{HeaderMap, HeaderValue};
use kling_api_ext::webhook::{SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookError};
use kling_api_ext::{Callback, Error, State};
use kling_api_ext::{VerifyOptions, verify_callback};
use proptest::prelude::*;
use serde_json::{Value, json};

/// JSON values of any shape, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| json!(f)),
        ".{0,40}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Task records whose fields are the right names with values of any type.
fn any_record() -> impl Strategy<Value = Value> {
    let field = prop_oneof![
        any_json(),
        "(waiting|queuing|generating|success|fail|pending)".prop_map(Value::String)
    ];
    prop::collection::btree_map(
        "(taskId|state|resultJson|failCode|failMsg|costTime|createTime|completeTime|model|param|progress|creditsConsumed)",
        field,
        0..12,
    )
    .prop_map(|m| json!({"code": 200, "msg": "success", "data": Value::Object(m.into_iter().collect())}))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn any_answer_maps_to_an_error_keeping_at_most_a_kib(status in 100u16..600, body in prop::collection::vec(any::<u8>(), 0..3000)) {
        let error = fuzzing::envelope(status, &body);
        if let Error::UnexpectedResponse { body, .. } = &error {
            prop_assert!(body.len() <= 1024 + 3);
        }
        let _ = (error.to_string(), error.is_retryable(), error.kind());
    }

    #[test]
    fn any_json_body_parses_to_a_task_or_an_error(body in any_json()) {
        let _ = fuzzing::record(body.to_string().as_bytes());
    }

    #[test]
    fn any_record_that_parses_and_succeeds_has_an_http_video(body in any_record()) {
        if let Ok(task) = fuzzing::record(body.to_string().as_bytes())
            && task.state == State::Success
        {
            let url = task.video_url().expect("a success has a URL");
            prop_assert!(matches!(url.scheme(), "http" | "https"));
        }
    }

    #[test]
    fn any_result_json_and_retry_after(text in ".{0,200}") {
        if let Ok(urls) = fuzzing::result_json(&text) {
            prop_assert!(!urls.is_empty());
        }
        let _ = fuzzing::retry_after(&text);
    }

    #[test]
    fn any_callback_body_parses_or_is_refused(body in any_json()) {
        if let Ok(callback) = Callback::parse(body.to_string().as_bytes()) {
            prop_assert!(!callback.task.task_id.as_str().is_empty());
        }
    }

    #[test]
    fn signed_callbacks_verify_and_any_altered_byte_does_not(
        task_id in "[A-Za-z0-9_-]{1,40}",
        timestamp in 1_600_000_000i64..2_000_000_000,
        skew in -300i64..=300,
        key in prop::collection::vec(any::<u8>(), 1..64),
        flip in 0usize..44,
    ) {
        let body = json!({"code": 200, "msg": "ok", "data": {"taskId": task_id, "state": "fail"}}).to_string();
        let now = UNIX_EPOCH + Duration::from_secs((timestamp + skew) as u64);
        let signature = kling_api_ext::fuzzing::sign_callback(&key, &task_id, timestamp);
        let mut headers = HeaderMap::new();
        headers.insert(TIMESTAMP_HEADER, HeaderValue::from_str(&timestamp.to_string()).unwrap());
        headers.insert(SIGNATURE_HEADER, HeaderValue::from_str(&signature).unwrap());
        let verified = verify_callback(&headers, body.as_bytes(), &key, now, &VerifyOptions::default());
        prop_assert!(verified.is_ok(), "{verified:?}");
        // Change one character of the signature (keeping it base64).
        let mut altered: Vec<u8> = signature.into_bytes();
        let i = flip % (altered.len() - 1);
        altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
        headers.insert(SIGNATURE_HEADER, HeaderValue::from_bytes(&altered).unwrap());
        prop_assert_eq!(verify_callback(&headers, body.as_bytes(), &key, now, &VerifyOptions::default()).unwrap_err(), WebhookError::BadSignature);
    }

    #[test]
    fn hostile_headers_never_verify_without_the_key(
        timestamp in prop::collection::vec(any::<u8>(), 0..30),
        signature in prop::collection::vec(any::<u8>(), 0..60),
        body in any_json(),
    ) {
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_bytes(&timestamp) { headers.insert(TIMESTAMP_HEADER, v); }
        if let Ok(v) = HeaderValue::from_bytes(&signature) { headers.insert(SIGNATURE_HEADER, v); }
        let result = verify_callback(&headers, body.to_string().as_bytes(), b"secret-key", SystemTime::now(), &VerifyOptions::default().tolerance(None));
        prop_assert!(result.is_err());
    }
}

/// Every input a fuzzer crashed on (`fuzz/corpus/*/regression-*.bin`), replayed
/// through the same entry point and checks as its fuzz target, so CI keeps them
/// fixed without cargo-fuzz.
#[test]
fn fuzz_crash_inputs_stay_fixed() {
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let mut replayed = 0;
    for target in std::fs::read_dir(&corpus).unwrap() {
        let target = target.unwrap().path();
        let name = target.file_name().unwrap().to_string_lossy().into_owned();
        for file in std::fs::read_dir(&target).unwrap() {
            let file = file.unwrap().path();
            let file_name = file.file_name().unwrap().to_string_lossy().into_owned();
            if !file_name.starts_with("regression-") {
                continue;
            }
            let bytes = std::fs::read(&file).unwrap();
            match name.as_str() {
                "envelope" => {
                    // The target's input is (u16, &[u8]) as `arbitrary` reads it:
                    // a little-endian status, then the rest. The property holds
                    // for any status, so a few are tried besides that one.
                    let status = u16::from_le_bytes([bytes[0], bytes[1]]);
                    for status in [status, 200, 500, 502] {
                        let error = fuzzing::envelope(status, &bytes[2..]);
                        let _ = (error.to_string(), error.is_retryable(), error.kind());
                        if let Error::UnexpectedResponse { body, .. } = &error {
                            assert!(body.len() <= 1024 + 3, "{file_name}: {}", body.len());
                        }
                    }
                }
                "record" => {
                    if let Ok(task) = fuzzing::record(&bytes) {
                        if task.state == State::Success {
                            let url = task.video_url().expect("a success has a URL");
                            assert!(matches!(url.scheme(), "http" | "https"));
                        }
                        serde_json::to_string(&task).unwrap();
                    }
                }
                "callback" => {
                    if let Ok(callback) = Callback::parse(&bytes) {
                        assert!(!callback.task.task_id.as_str().is_empty());
                        serde_json::to_string(&callback).unwrap();
                    }
                }
                "result_json" => {
                    let text = String::from_utf8_lossy(&bytes);
                    if let Ok(urls) = fuzzing::result_json(&text) {
                        assert!(!urls.is_empty());
                    }
                    let _ = fuzzing::retry_after(&text);
                }
                other => panic!("{file_name}: no replay written for fuzz target {other}"),
            }
            replayed += 1;
        }
    }
    // The three crashes found so far (envelope, record, callback).
    assert!(replayed >= 3, "only {replayed} regression inputs found");
}
