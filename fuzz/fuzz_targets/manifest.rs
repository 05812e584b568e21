//! The batch manifest parser, straight from the CLI's source.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "../../kling-cli/src/batch/manifest.rs"]
#[allow(dead_code)]
mod manifest;

fuzz_target!(|text: &str| {
    let (jobs, bad) = manifest::parse(std::path::Path::new("/nonexistent/jobs.jsonl"), text, None);
    for job in &jobs {
        // Every accepted id is a safe file name.
        assert!(manifest::check_id(&job.id).is_ok());
        assert!(!job.id.contains('/') && !job.id.starts_with('.'));
    }
    let lines = text.lines().filter(|l| !l.trim().is_empty()).count();
    assert_eq!(jobs.len() + bad.len(), lines);
});
