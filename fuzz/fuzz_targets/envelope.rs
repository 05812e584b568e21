//! Any HTTP status and body the service (or a proxy) might send.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u16, &[u8])| {
    let (status, body) = input;
    let error = kling_api_ext::fuzzing::envelope(status, body);
    // Every error renders, and keeps at most a KiB of the body.
    let text = error.to_string();
    if let kling_api_ext::Error::UnexpectedResponse { body, .. } = &error {
        assert!(body.len() <= 1024 + 3, "{}", body.len());
    }
    let _ = (text, error.is_retryable(), error.kind());
});
