//! What the bench binaries share.

use std::path::PathBuf;

/// The `kling` binary built beside the running bench binary (the same
/// profile): `cargo build --release -p kling-cli -p kling-bench` builds both.
pub fn kling_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the running binary has a path");
    let candidate = exe
        .parent()
        .expect("a binary lives in a directory")
        .join("kling");
    assert!(
        candidate.exists(),
        "build the CLI first: cargo build --release -p kling-cli (looked for {})",
        candidate.display()
    );
    candidate
}
