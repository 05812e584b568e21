//! The daily budget: counted in the state directory's ledger by every kling
//! process, set in the config file or with `--daily-budget`, holding across
//! `generate`, `batch` and calls made at the same time.

use std::path::Path;

use crate::batch::{manifest, results};
use crate::support::{Sim, asset, sim, stderr};

/// The sample voice lasts 3 s: 48 credits at 16 credits/s.
const EACH: f64 = 48.0;

/// `kling` on `sim`, with its own state directory and a config file whose
/// default profile sets `daily_budget`.
fn kling(sim: &Sim, state: &Path, budget: f64) -> std::process::Command {
    let config = state.join("config.toml");
    std::fs::write(
        &config,
        format!("[profiles.default]\ndaily_budget = {budget}\n"),
    )
    .unwrap();
    let mut cmd = sim.kling_std();
    cmd.env("KLING_STATE_DIR", state)
        .env("KLING_CONFIG", config);
    cmd
}

fn generate(sim: &Sim, state: &Path, budget: f64, out: &Path) -> std::process::Output {
    kling(sim, state, budget)
        .args([
            "generate",
            "--image",
            &asset("face.png"),
            "--audio",
            &asset("hello.wav"),
        ])
        .arg("--out")
        .arg(out)
        .output()
        .unwrap()
}

#[test]
fn the_config_files_daily_budget_refuses_the_call_that_would_pass_it() {
    let sim = sim(|_| {});
    let state = tempfile::tempdir().unwrap();
    let budget = 2.0 * EACH + 10.0;
    for i in 0..2 {
        let output = generate(
            &sim,
            state.path(),
            budget,
            &state.path().join(format!("{i}.mp4")),
        );
        assert!(output.status.success(), "{i}: {}", stderr(&output));
    }
    let uploads = sim.sim.stats().requests_to("uploadStream");
    let output = generate(&sim, state.path(), budget, &state.path().join("2.mp4"));
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let said = stderr(&output);
    assert!(said.contains("daily budget of 106 credits"), "{said}");
    assert!(said.contains("96 spent or reserved today"), "{said}");
    assert!(said.contains("nothing was sent"), "{said}");
    let stats = sim.sim.stats();
    assert_eq!(stats.requests_to("uploadStream"), uploads, "uploaded");
    assert_eq!(stats.requests_to("createTask"), 2);
    // The flag beats the file.
    let output = kling(&sim, state.path(), budget)
        .args([
            "--daily-budget",
            "1000",
            "generate",
            "--image",
            &asset("face.png"),
        ])
        .args(["--audio", &asset("hello.wav"), "--out"])
        .arg(state.path().join("3.mp4"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn two_calls_at_once_cannot_slip_past_the_budget_together() {
    let sim = sim(|_| {});
    let state = tempfile::tempdir().unwrap();
    // Room for one video, not two.
    let budget = EACH + 10.0;
    let children: Vec<_> = (0..2)
        .map(|i| {
            kling(&sim, state.path(), budget)
                .args(["-q", "generate", "--image", &asset("face.png")])
                .args(["--audio", &asset("hello.wav"), "--out"])
                .arg(state.path().join(format!("{i}.mp4")))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let codes: Vec<_> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .map(|o| (o.status.code(), stderr(&o)))
        .collect();
    let ok = codes.iter().filter(|(c, _)| *c == Some(0)).count();
    let refused = codes
        .iter()
        .filter(|(c, s)| *c == Some(2) && s.contains("daily budget"))
        .count();
    assert_eq!((ok, refused), (1, 1), "{codes:?}");
    assert_eq!(sim.sim.stats().requests_to("createTask"), 1);
}

#[test]
fn a_batch_stops_submitting_at_the_budget_and_leaves_the_rest_to_do() {
    let sim = sim(|_| {});
    let state = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(dir.path(), 4, &[]);
    let out = dir.path().join("out");
    let budget = 2.0 * EACH + 10.0;
    let run = || {
        kling(&sim, state.path(), budget)
            .args(["batch", "--concurrency", "1"])
            .arg(&manifest)
            .arg("--out-dir")
            .arg(&out)
            .output()
            .unwrap()
    };
    let output = run();
    assert_ne!(output.status.code(), Some(0), "{}", stderr(&output));
    let said = stderr(&output);
    assert!(said.contains("daily budget"), "{said}");
    assert!(said.contains("no more jobs are submitted"), "{said}");
    assert_eq!(sim.sim.stats().requests_to("createTask"), 2);
    assert_eq!(results(&out).len(), 2);
    // The same day, a rerun submits nothing more.
    let output = run();
    assert_ne!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(sim.sim.stats().requests_to("createTask"), 2);
}
