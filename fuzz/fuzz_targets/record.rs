//! recordInfo bodies, all the way to a Task.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    if let Ok(task) = kling_api_ext::fuzzing::record(body) {
        // A success always has a usable http(s) video URL.
        if task.state == kling_api_ext::State::Success {
            let url = task.video_url().expect("a success has a URL");
            assert!(matches!(url.scheme(), "http" | "https"));
        }
        let _ = serde_json::to_string(&task).unwrap();
    }
});
