//! resultJson strings and Retry-After values.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Ok(urls) = kling_api_ext::fuzzing::result_json(text) {
        assert!(!urls.is_empty());
    }
    let _ = kling_api_ext::fuzzing::retry_after(text);
});
