//! The vendored document is the one `spec/origin.json` records, byte for
//! byte: `kling spec check --update` is the only way to change the two.

use serde_json::Value;
use sha2::Digest as _;

use crate::support::repo_root;

#[test]
fn the_vendored_document_is_the_recorded_one() {
    let spec = repo_root().join("spec");
    let origin: Value =
        serde_json::from_str(&std::fs::read_to_string(spec.join("origin.json")).unwrap()).unwrap();
    let file = origin["file"].as_str().unwrap();
    assert_eq!(file, "ai-avatar-v1-pro.json");
    let bytes = std::fs::read(spec.join(file)).unwrap();
    let sha: String = sha2::Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        origin["sha256"].as_str(),
        Some(sha.as_str()),
        "spec/{file} changed by hand: only `kling spec check --update` replaces it"
    );
    assert!(origin["url"].as_str().unwrap().starts_with("https://"));
    assert_eq!(origin["retrieved"].as_str().unwrap().len(), 10);
    // What the build embeds is the file it read: this one, or the changed
    // copy `.ci/probe` builds against.
    let built_from: std::path::PathBuf =
        std::env::var_os("KLING_API_SPEC_DIR").map_or(spec, Into::into);
    let read = std::fs::read_to_string(built_from.join(file)).unwrap();
    let embedded = kling_api::spec::SOURCES
        .iter()
        .find(|(n, _)| *n == file)
        .unwrap()
        .1;
    assert!(
        embedded == read,
        "the build embedded {} bytes, {} has {}",
        embedded.len(),
        built_from.join(file).display(),
        read.len()
    );
}
