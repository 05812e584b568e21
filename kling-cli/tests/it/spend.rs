//! The guard on spending: `--dry-run`, the balance against the estimate,
//! `--max-credits`, and no question off a terminal.

use serde_json::json;

use crate::batch::manifest;
use crate::support::{Sim, asset, json, sim, stderr};

fn generate(sim: &Sim, command: &str, extra: &[&str]) -> std::process::Output {
    sim.kling()
        .args([
            "--json",
            command,
            "--image",
            &asset("face.png"),
            "--audio",
            &asset("hello.wav"),
        ])
        .args(extra)
        .output()
        .unwrap()
}

fn nothing_sent(sim: &Sim, what: &str) {
    let stats = sim.sim.stats();
    assert_eq!(stats.requests_to("uploadStream"), 0, "{what}: uploaded");
    assert_eq!(stats.requests_to("createTask"), 0, "{what}: created");
}

#[test]
fn dry_run_checks_and_estimates_but_sends_nothing() {
    let sim = sim(|_| {});
    for command in ["generate", "submit"] {
        let output = generate(&sim, command, &["--dry-run"]);
        assert!(output.status.success(), "{command}: {}", stderr(&output));
        let doc = json(&output);
        assert_eq!(doc["dryRun"], json!(true), "{doc}");
        assert!(doc["estimatedCredits"].as_f64().unwrap() > 0.0, "{doc}");
        assert_eq!(doc["balance"], json!(10_000.0), "{doc}");
        nothing_sent(&sim, command);
    }
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(dir.path(), 3, &[]);
    let output = sim
        .kling()
        .args(["--json", "batch", "--dry-run"])
        .arg(&manifest)
        .arg("--out-dir")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let doc = json(&output);
    let each = doc["jobs"][0]["estimatedCredits"].as_f64().unwrap();
    assert_eq!(doc["jobs"].as_array().unwrap().len(), 3);
    assert_eq!(
        doc["estimatedCredits"].as_f64().unwrap(),
        each * 3.0,
        "{doc}"
    );
    nothing_sent(&sim, "batch");
}

#[test]
fn a_balance_below_the_estimate_stops_before_any_upload() {
    let sim = sim(|c| c.credits = 20.0);
    let output = generate(&sim, "generate", &[]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("the balance is 20 credits, below the"),
        "{}",
        stderr(&output)
    );
    nothing_sent(&sim, "generate");
    // A batch is held against its total: each job alone would fit, all do not.
    let sim = crate::support::sim(|c| c.credits = 100.0);
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(dir.path(), 3, &[]);
    let output = sim
        .kling()
        .args(["--json", "batch"])
        .arg(&manifest)
        .arg("--out-dir")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("this batch (3 job(s) to submit)"),
        "{}",
        stderr(&output)
    );
    nothing_sent(&sim, "batch");
}

#[test]
fn max_credits_refuses_a_job_estimated_above_it() {
    let sim = sim(|_| {});
    let output = generate(&sim, "generate", &["--max-credits", "10"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("above the limit you set"),
        "{}",
        stderr(&output)
    );
    nothing_sent(&sim, "--max-credits");
    // Above the estimate: it goes.
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a.mp4");
    let output = generate(
        &sim,
        "generate",
        &["--max-credits", "100000", "--out", out.to_str().unwrap()],
    );
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn off_a_terminal_nothing_is_asked() {
    let sim = sim(|_| {});
    let output = generate(&sim, "submit", &["--confirm-above", "1"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        !stderr(&output).contains("Go ahead?"),
        "{}",
        stderr(&output)
    );
    assert_eq!(sim.sim.stats().tasks_created, 1);
}
