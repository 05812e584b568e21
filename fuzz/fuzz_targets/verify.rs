//! The webhook verifier: hostile headers and bodies never verify unless signed
//! with the key, and never panic.
#![no_main]
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kling_api_ext::reqwest::header::{HeaderMap, HeaderValue};
use kling_api_ext::fuzzing::sign_callback as sign;
use kling_api_ext::{VerifyOptions, verify_callback};
use kling_api_ext::webhook::{SIGNATURE_HEADER, TIMESTAMP_HEADER};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (&[u8], &[u8], &[u8], i64)| {
    let (timestamp, signature, body, now) = input;
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_bytes(timestamp) {
        headers.insert(TIMESTAMP_HEADER, v);
    }
    if let Ok(v) = HeaderValue::from_bytes(signature) {
        headers.insert(SIGNATURE_HEADER, v);
    }
    let now = UNIX_EPOCH + Duration::from_secs(now.unsigned_abs() % 4_000_000_000);
    let opts = VerifyOptions::default();
    if let Ok(callback) = verify_callback(&headers, body, b"fuzz-key", now, &opts) {
        // Only a signature made with the key can pass.
        let ts: i64 = std::str::from_utf8(timestamp).unwrap().trim().parse().unwrap();
        assert_eq!(std::str::from_utf8(signature).unwrap().trim(), sign(b"fuzz-key", callback.task.task_id.as_str(), ts));
    }
    let _ = SystemTime::now();
});
