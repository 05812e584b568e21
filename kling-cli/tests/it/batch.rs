//! `kling batch`: checks, results, and crash safety.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{asset, json, sim, stderr};

/// A manifest of `n` jobs using the example assets (relative to the manifest).
pub fn manifest(dir: &Path, n: usize, extra: &[&str]) -> std::path::PathBuf {
    std::fs::copy(asset("face.png"), dir.join("face.png")).unwrap();
    std::fs::copy(asset("hello.wav"), dir.join("hello.wav")).unwrap();
    let mut lines: Vec<String> = (0..n)
        .map(|i| json!({"id": format!("job-{i}"), "image": "face.png", "audio": "hello.wav", "prompt": format!("take {i}")}).to_string())
        .collect();
    lines.extend(extra.iter().map(|s| s.to_string()));
    let path = dir.join("jobs.jsonl");
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

pub fn results(out: &Path) -> Vec<Value> {
    std::fs::read_to_string(out.join("results.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_batch_runs_every_valid_line_and_reports_the_bad_ones() {
    let sim = sim(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(
        dir.path(),
        5,
        &[
            r#"{"id": "bad", "image": "face.png"}"#,
            "not json",
            r#"{"id": "../x", "image": "face.png", "audio": "hello.wav"}"#,
        ],
    );
    let out = dir.path().join("out");
    let output = sim
        .kling()
        .args(["--json", "batch"])
        .arg(&manifest)
        .arg("--out-dir")
        .arg(&out)
        .output()
        .unwrap();
    // Invalid lines, but every valid job done: exit 2.
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(
        text.contains("jobs.jsonl:6: not a valid job: missing field `audio`"),
        "{text}"
    );
    assert!(text.contains("jobs.jsonl:7: not a valid job"), "{text}");
    assert!(text.contains("jobs.jsonl:8: id \"../x\""), "{text}");
    let summary = json(&output);
    assert_eq!(
        (summary["done"].clone(), summary["invalidLines"].clone()),
        (json!(5), json!(3))
    );
    let results = results(&out);
    // Every line of the manifest is accounted for: 5 videos, 3 invalid lines.
    assert_eq!(results.len(), 8);
    let invalid: Vec<&Value> = results
        .iter()
        .filter(|r| r["status"] == json!("invalid"))
        .collect();
    assert_eq!(
        invalid
            .iter()
            .map(|r| r["line"].clone())
            .collect::<Vec<_>>(),
        [json!(6), json!(7), json!(8)]
    );
    assert!(
        invalid[0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("missing field `audio`")
    );
    let results: Vec<&Value> = results
        .iter()
        .filter(|r| r["status"] != json!("invalid"))
        .collect();
    assert_eq!(results.len(), 5);
    for r in &results {
        assert_eq!(r["status"], json!("done"));
        let file = out.join(format!("{}.mp4", r["id"].as_str().unwrap()));
        assert_eq!(
            std::fs::read(&file).unwrap(),
            kling_sim::RESULT_VIDEO,
            "{}",
            file.display()
        );
        assert_eq!(r["output"], json!(file.display().to_string()));
    }
    let stats = sim.sim.stats();
    assert_eq!(stats.tasks_created, 5);
    assert!(stats.duplicate_inputs().is_empty());
    // The two files were uploaded once for all five jobs.
    assert_eq!(stats.requests_to("uploadStream"), 2);
}

#[test]
fn strict_stops_before_sending_anything() {
    let sim = sim(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(dir.path(), 3, &["{}"]);
    let output = sim
        .kling()
        .args(["--json", "batch", "--strict"])
        .arg(&manifest)
        .arg("--out-dir")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("nothing was sent"),
        "{}",
        stderr(&output)
    );
    assert_eq!(sim.sim.stats().requests.values().sum::<u64>(), 0);
}

#[test]
fn running_it_again_skips_what_ended() {
    let sim = sim(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(dir.path(), 3, &[]);
    let out = dir.path().join("out");
    for _ in 0..2 {
        let output = sim
            .kling()
            .args(["--json", "batch"])
            .arg(&manifest)
            .arg("--out-dir")
            .arg(&out)
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
    }
    assert_eq!(sim.sim.stats().tasks_created, 3);
    assert_eq!(results(&out).len(), 3);
}

#[cfg(unix)]
#[test]
fn a_batch_killed_mid_run_resumes_without_paying_twice() {
    // Tasks last about two seconds: long enough to be killed while running.
    let sim = sim(|c| c.lifecycle.generating_ms = [1500, 2500]);
    let dir = tempfile::tempdir().unwrap();
    let jobs = 10;
    let manifest = manifest(dir.path(), jobs, &[]);
    let out = dir.path().join("out");
    let mut child = crate::support::kling_std()
        .args([
            "--base-url",
            sim.sim.base_url(),
            "--upload-base-url",
            &sim.sim.upload_base_url(),
            "--json",
            "batch",
        ])
        .arg(&manifest)
        .arg("--out-dir")
        .arg(&out)
        .env("APIKLEY_API_KEY", sim.sim.api_key())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it (SIGKILL: no cleanup at all) once every job is submitted.
    let journal = out.join("journal.jsonl");
    let mut submitted = 0;
    for _ in 0..500 {
        submitted = std::fs::read_to_string(&journal)
            .unwrap_or_default()
            .matches("\"event\":\"submitted\"")
            .count();
        if submitted == jobs {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(submitted, jobs, "not all submitted before the kill");
    let finished_before = results(&out).len();
    assert!(
        finished_before < jobs,
        "everything finished before the kill; the test proves nothing"
    );

    let output = sim
        .kling()
        .args(["--json", "batch"])
        .arg(&manifest)
        .arg("--out-dir")
        .arg(&out)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let stats = sim.sim.stats();
    assert_eq!(
        stats.tasks_created, jobs as u64,
        "a job was submitted twice"
    );
    assert!(stats.duplicate_inputs().is_empty());
    let results = results(&out);
    assert_eq!(results.len(), jobs, "one line per job");
    let mut ids: Vec<&str> = results.iter().map(|r| r["id"].as_str().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), jobs);
    for id in ids {
        assert_eq!(
            std::fs::read(out.join(format!("{id}.mp4"))).unwrap(),
            kling_sim::RESULT_VIDEO
        );
    }
}

#[test]
fn unknown_submit_outcomes_are_left_alone_until_asked() {
    let sim = sim(|c| c.faults.create_task.reset_after = 1.0);
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(dir.path(), 2, &[]);
    let out = dir.path().join("out");
    let run = |extra: &[&str]| {
        sim.kling()
            .args(["--json", "batch"])
            .args(extra)
            .arg(&manifest)
            .arg("--out-dir")
            .arg(&out)
            .output()
            .unwrap()
    };
    let first = run(&[]);
    assert_eq!(first.status.code(), Some(6), "{}", stderr(&first));
    assert_eq!(json(&first)["ambiguous"], json!(2));
    // Each may have created a task: the simulator did create them.
    assert_eq!(sim.sim.stats().tasks_created, 2);
    let second = run(&[]);
    assert_eq!(second.status.code(), Some(6));
    assert!(
        stderr(&second).contains("left alone"),
        "{}",
        stderr(&second)
    );
    assert_eq!(json(&second)["leftAlone"], json!(["job-0", "job-1"]));
    assert_eq!(
        sim.sim.stats().requests_to("createTask"),
        2,
        "nothing resubmitted without the flag"
    );
    let third = run(&["--resubmit-ambiguous"]);
    assert_eq!(third.status.code(), Some(6), "the fault is still on");
    assert_eq!(
        sim.sim.stats().requests_to("createTask"),
        4,
        "resubmitted when asked"
    );
}

#[test]
fn running_out_of_credits_stops_submitting_and_a_rerun_after_a_top_up_finishes() {
    // The service charges more than the CLI estimates (16 credits/s): the
    // batch passes the balance check (4 x 48 = 192 <= 200) and then runs out
    // mid-run (120 per task).
    let sim = sim(|c| {
        c.credits = 200.0;
        c.models.insert("kling/ai-avatar-v1-pro".into(), 40.0);
    });
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(dir.path(), 4, &[]);
    let out = dir.path().join("out");
    let run = || {
        sim.kling()
            .args(["--json", "batch", "--concurrency", "1"])
            .arg(&manifest)
            .arg("--out-dir")
            .arg(&out)
            .output()
            .unwrap()
    };
    let output = run();
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let summary = json(&output);
    assert_eq!(
        (
            summary["done"].clone(),
            summary["notTaken"].clone(),
            summary["notStarted"].clone()
        ),
        (json!(1), json!(1), json!(2)),
        "{summary}"
    );
    assert!(
        stderr(&output).contains("no more jobs are submitted in this run"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        sim.sim.stats().requests_to("createTask"),
        2,
        "nothing was sent after the 402"
    );
    assert_eq!(results(&out).len(), 1, "only ended jobs have result lines");
    // Topped up: a plain rerun submits the three left and ends with every video.
    sim.sim.set_credits(10_000.0);
    let again = run();
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(json(&again)["done"], json!(4));
    let stats = sim.sim.stats();
    assert_eq!(stats.tasks_created, 4);
    assert!(stats.duplicate_inputs().is_empty());
    assert_eq!(results(&out).len(), 4);
}

#[test]
fn rejected_jobs_are_final_unless_retried() {
    let sim = sim(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let manifest_path = manifest(dir.path(), 2, &[]);
    // A URL that answers 404: refused before anything is created, for good.
    let missing = format!("{}/missing.png", sim.sim.upload_base_url());
    let mut text = std::fs::read_to_string(&manifest_path).unwrap();
    text.push_str(&format!(
        "\n{}",
        json!({"id": "gone", "image": missing, "audio": "hello.wav"})
    ));
    std::fs::write(&manifest_path, text).unwrap();
    let out = dir.path().join("out");
    let run = |extra: &[&str], manifest: &Path| {
        sim.kling()
            .args(["--json", "batch"])
            .args(extra)
            .arg(manifest)
            .arg("--out-dir")
            .arg(&out)
            .output()
            .unwrap()
    };
    let output = run(&[], &manifest_path);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let results_now = results(&out);
    assert_eq!(results_now.len(), 3);
    let rejected: Vec<&Value> = results_now
        .iter()
        .filter(|r| r["status"] == json!("rejected"))
        .collect();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0]["id"], json!("gone"));
    assert_eq!(rejected[0]["error"]["kind"], json!("invalid_input"));
    // Rerun: nothing to do, nothing sent.
    let before = sim.sim.stats().requests.values().sum::<u64>();
    let again = run(&[], &manifest_path);
    assert_eq!(again.status.code(), Some(3));
    assert_eq!(sim.sim.stats().requests.values().sum::<u64>(), before);
    assert!(!stderr(&again).contains("job gone"), "{}", stderr(&again));
    // Asked to: tried again (and refused again, still for free).
    let retried = run(&["--retry-rejected"], &manifest_path);
    assert_eq!(retried.status.code(), Some(3));
    assert!(
        stderr(&retried).contains("job gone (line 3): invalid image"),
        "{}",
        stderr(&retried)
    );
    assert_eq!(sim.sim.stats().tasks_created, 2);
    // The line fixed: it runs, no flag needed (no task existed to protect).
    let text = std::fs::read_to_string(&manifest_path)
        .unwrap()
        .replace(&missing, "face.png");
    std::fs::write(&manifest_path, text).unwrap();
    let fixed = run(&[], &manifest_path);
    assert!(fixed.status.success(), "{}", stderr(&fixed));
    assert!(
        stderr(&fixed).contains("the line changed since it was refused"),
        "{}",
        stderr(&fixed)
    );
    assert_eq!(sim.sim.stats().tasks_created, 3);
}

#[test]
fn failed_jobs_are_named_at_the_end_and_retried_when_asked() {
    let sim = sim(|c| c.lifecycle.fail_fraction = 1.0);
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(dir.path(), 2, &[]);
    let out = dir.path().join("out");
    let run = |extra: &[&str]| {
        sim.kling()
            .args(["--json", "batch"])
            .args(extra)
            .arg(&manifest)
            .arg("--out-dir")
            .arg(&out)
            .output()
            .unwrap()
    };
    let first = run(&[]);
    assert_eq!(first.status.code(), Some(4), "{}", stderr(&first));
    let text = stderr(&first);
    assert!(
        text.contains("2 job(s) did not make a video in this run:"),
        "{text}"
    );
    assert!(text.contains("job-0 (line 1): the task "), "{text}");
    assert_eq!(sim.sim.stats().tasks_created, 2);
    // A plain rerun leaves them (ended); --retry-failed submits them again.
    let again = run(&[]);
    assert_eq!(again.status.code(), Some(4));
    assert_eq!(sim.sim.stats().tasks_created, 2);
    let retried = run(&["--retry-failed"]);
    assert!(
        stderr(&retried).contains("submitting it again (a new task, paid if it succeeds)"),
        "{}",
        stderr(&retried)
    );
    assert_eq!(sim.sim.stats().tasks_created, 4);
    assert_eq!(
        results(&out).len(),
        2,
        "one line per job, the latest outcome"
    );
}
