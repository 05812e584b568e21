//! The lean build (`--no-default-features`): one video and one host's
//! batches work; a flag whose feature is missing exits 2 naming it, with
//! nothing sent. Runs only in that build (`.ci/run` makes it).
#![cfg(not(any(feature = "postgres", feature = "webhooks", feature = "mcp")))]

use crate::support::{asset, kling, stderr};

#[test]
fn the_lean_build_makes_a_video_and_names_a_missing_feature() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("avatar.mp4");
    let output = kling()
        .args(["--sim", "generate", "--image", &asset("face.png")])
        .args(["--audio", &asset("hello.wav"), "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(&std::fs::read(&out).unwrap()[4..8], b"ftyp");

    let manifest = dir.path().join("jobs.jsonl");
    std::fs::write(&manifest, "").unwrap();
    for (args, what, feature) in [
        (
            vec!["batch", "--store", "postgres://localhost/kling"],
            "--store",
            "postgres",
        ),
        (
            vec![
                "--rate-limit-store",
                "postgres://localhost/kling",
                "credits",
            ],
            "--rate-limit-store",
            "postgres",
        ),
        (vec!["mcp", "--out-dir", "."], "kling mcp", "mcp"),
        (
            vec![
                "generate",
                "--listen",
                "127.0.0.1:0",
                "--image",
                "a.png",
                "--audio",
                "a.wav",
            ],
            "--listen",
            "webhooks",
        ),
    ] {
        let mut command = kling();
        command.arg("--sim").args(&args);
        if args[0] == "batch" {
            command
                .arg(&manifest)
                .arg("--out-dir")
                .arg(dir.path().join("out"));
        }
        let output = command.output().unwrap();
        let said = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {said}");
        assert!(said.contains(what), "{args:?}: {said}");
        assert!(
            said.contains(&format!("without the `{feature}` feature")),
            "{args:?}: {said}"
        );
        assert!(
            said.contains(&format!("--features {feature}")),
            "{args:?}: {said}"
        );
    }
}
