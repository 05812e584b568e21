//! Creation limits shared between `kling` processes.

use crate::support::{asset, sim, stderr};

/// Processes started at once by a script keep one window between them: the
/// default store is a file in the state directory.
#[test]
fn concurrent_processes_share_the_window_and_get_no_429() {
    let sim = sim(|c| {
        c.rate_limit.max = 2;
        c.rate_limit.window_ms = 1500;
    });
    let state = tempfile::tempdir().unwrap();
    let out = tempfile::tempdir().unwrap();
    let children: Vec<_> = (0..6)
        .map(|i| {
            sim.kling_std()
                .env("KLING_STATE_DIR", state.path())
                .args([
                    "--json",
                    "--rate-limit",
                    "2/1500ms",
                    "generate",
                    "--image",
                    &asset("face.png"),
                ])
                .args([
                    "--audio",
                    &asset("hello.wav"),
                    "--prompt",
                    &format!("process {i}"),
                    "--out",
                ])
                .arg(out.path().join(format!("{i}.mp4")))
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
    }
    let stats = sim.sim.stats();
    assert_eq!(stats.tasks_created, 6);
    assert_eq!(
        stats.rate_limited, 0,
        "a process went over the shared window"
    );
    // No 1.5 s window holds more than two creations, as the service saw them.
    let mut created: Vec<_> = stats.tasks.iter().map(|t| t.created_ms).collect();
    created.sort();
    for pair in created.windows(3) {
        assert!(pair[2] - pair[0] >= 1500, "{created:?}");
    }
    let files: Vec<_> = std::fs::read_dir(state.path().join("ratelimit"))
        .unwrap()
        .flatten()
        .collect();
    assert!(
        files
            .iter()
            .any(|f| f.file_name().to_string_lossy().ends_with(".json")),
        "{files:?}"
    );
}

#[test]
fn a_store_that_is_not_one_is_refused_by_name() {
    let output = crate::support::kling()
        .args(["--rate-limit-store", "redis://x", "credits"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let text = stderr(&output);
    assert!(
        text.contains("--rate-limit-store") && text.contains("postgres://"),
        "{text}"
    );
}
