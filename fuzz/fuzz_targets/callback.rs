//! Callback bodies.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if let Ok(callback) = kling_api_ext::Callback::parse(body) {
        assert!(!callback.task.task_id.as_str().is_empty());
        let _ = serde_json::to_string(&callback).unwrap();
    }
});
