//! `kling batch --listen` against the simulator: status requests per task and
//! detection lag when callbacks end the waits, when some are lost or
//! duplicated, and how many lost createTask answers their callbacks recover.
//!
//! ```text
//! cargo build --release -p kling-cli -p kling-bench
//! ./target/release/webhooks [--jobs 30]
//! ```
//!
//! Each scenario runs one `kling batch` (a fresh simulator, a fresh state
//! directory, so nothing is learned beforehand) and reads the simulator's
//! counters: recordInfo requests per task, and the detection lag (from a
//! task's end to the first status answer showing it ended).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use kling_sim::{SimConfig, Simulator};
use serde_json::Value;

use kling_bench::kling_binary;

fn manifest(dir: &Path, jobs: usize) -> PathBuf {
    let assets = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/assets");
    let lines: Vec<String> = (0..jobs)
        .map(|i| {
            serde_json::json!({
                "id": format!("job-{i}"),
                "image": assets.join("face.png"),
                "audio": assets.join("hello.wav"),
                "prompt": format!("webhook bench {i}"),
            })
            .to_string()
        })
        .collect();
    let path = dir.join("jobs.jsonl");
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

fn percentile(values: &mut [f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    values[((values.len() as f64 - 1.0) * p).round() as usize]
}

struct Outcome {
    summary: Value,
    sim: Simulator,
    wall: Duration,
}

async fn batch(
    jobs: usize,
    listen: bool,
    global: &[&str],
    extra: &[&str],
    config: impl FnOnce(&mut SimConfig),
) -> Outcome {
    let sim = Simulator::builder()
        .with(|c| {
            c.credits = 1e9;
            config(c);
        })
        .start()
        .await
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let manifest = manifest(work.path(), jobs);
    let mut command = tokio::process::Command::new(kling_binary());
    command
        .args([
            "--base-url",
            sim.base_url(),
            "--upload-base-url",
            &sim.upload_base_url(),
        ])
        .args(global)
        .args(["--json", "batch", "--yes", "--concurrency", "64"])
        .args(extra)
        .arg(&manifest)
        .arg("--out-dir")
        .arg(work.path().join("out"))
        .env("APIKLEY_API_KEY", sim.api_key())
        .env("KLING_STATE_DIR", work.path().join("state"))
        .env_remove("APIKLEY_WEBHOOK_KEY")
        .env_remove("KLING_STORE")
        .stderr(std::process::Stdio::null());
    if listen {
        command.args(["--listen", "127.0.0.1:0"]);
    }
    let started = Instant::now();
    let output = command.output().await.unwrap();
    let wall = started.elapsed();
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    Outcome { summary, sim, wall }
}

/// Prints one row: requests per task, lag p50/p95 (all tasks, and the tasks
/// whose callback was lost), done and failed.
fn row(name: &str, outcome: &Outcome) -> (f64, f64, f64) {
    let stats = outcome.sim.stats();
    let tasks = stats.tasks_created.max(1) as f64;
    let per_task = stats.requests_to("recordInfo") as f64 / tasks;
    let lost: std::collections::HashSet<&str> = stats
        .callbacks
        .iter()
        .filter(|c| c.fault.as_deref() == Some("lost"))
        .map(|c| c.task_id.as_str())
        .collect();
    let lag = |t: &kling_sim::TaskStats| t.detection_lag_ms.map(|ms| ms as f64 / 1000.0);
    let mut all: Vec<f64> = stats.tasks.iter().filter_map(lag).collect();
    let mut of_lost: Vec<f64> = stats
        .tasks
        .iter()
        .filter(|t| lost.contains(t.task_id.as_str()))
        .filter_map(lag)
        .collect();
    let p95 = percentile(&mut all, 0.95);
    let lost_p95 = percentile(&mut of_lost, 0.95);
    let s = &outcome.summary;
    let n = |key: &str| s[key].as_u64().map_or("?".to_owned(), |v| v.to_string());
    println!(
        "{name:<44} {per_task:>8.2} {:>8.3}s {p95:>8.3}s {:>13} {:>5} {:>6} {:>7} {:>9} {:>6} {:>6.0}s",
        percentile(&mut all, 0.5),
        if of_lost.is_empty() {
            "-".to_owned()
        } else {
            format!("{} at {lost_p95:.1}s", of_lost.len())
        },
        n("done"),
        n("failed"),
        n("ambiguous"),
        n("recovered"),
        stats.duplicate_inputs().len(),
        outcome.wall.as_secs_f64(),
    );
    (per_task, p95, lost_p95)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let jobs: usize = args
        .iter()
        .position(|a| a == "--jobs")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(100);
    const SMALL: usize = 30;
    println!(
        "{SMALL} jobs in the first two runs, {jobs} in the others; tasks of 3-7 s (the simulator's default lifecycle), 20 creations per 10 s\n"
    );
    println!(
        "{:<44} {:>8} {:>9} {:>9} {:>13} {:>5} {:>6} {:>7} {:>9} {:>6} {:>7}",
        "run",
        "req/task",
        "lag p50",
        "lag p95",
        "lost: n, p95",
        "done",
        "failed",
        "unknown",
        "recovered",
        "twice",
        "wall"
    );
    let failing = |c: &mut SimConfig| c.lifecycle.fail_fraction = 0.1;
    let polled = batch(SMALL, false, &[], &[], failing).await;
    row("polling, 10 % failing (reference)", &polled);
    let hooked = batch(SMALL, true, &[], &[], failing).await;
    let (per_task, p95, _) = row("--listen, 10 % failing", &hooked);
    let s = &hooked.summary;
    let all_made =
        s["done"].as_u64().unwrap_or(0) + s["failed"].as_u64().unwrap_or(0) == SMALL as u64;
    println!(
        "  target <= 1.1 req/task, p95 <= 1 s, every video: {}",
        if per_task <= 1.1 && p95 <= 1.0 && all_made {
            "met"
        } else {
            "NOT met"
        }
    );

    let lossy = |c: &mut SimConfig| {
        c.faults.seed = 7;
        c.faults.callback.lost = 0.1;
        c.faults.callback.duplicated = 0.05;
    };
    let lossy_run = batch(jobs, true, &[], &[], lossy).await;
    let (_, _, lost_p95) = row("--listen, 10 % lost, 5 % duplicated", &lossy_run);
    let short = batch(jobs, true, &[], &["--safety-poll", "10s"], lossy).await;
    row("  the same, --safety-poll 10s", &short);
    let ended = lossy_run.summary["done"].as_u64() == Some(jobs as u64);
    let short_ended = short.summary["done"].as_u64() == Some(jobs as u64);
    println!(
        "  every job ends correctly: {} (and {} with 10 s); the lost ones are found by the first safety look (30 s after the wait began): p95 {lost_p95:.1} s after their end",
        if ended { "yes" } else { "NO" },
        if short_ended { "yes" } else { "NO" },
    );

    let chaos = |c: &mut SimConfig| {
        c.faults.seed = 3;
        c.faults.create_task.reset_after = 0.15;
        c.faults.create_task.slow_after = 0.1;
        c.faults.slow_ms = 5_000;
    };
    let chaotic = batch(jobs, true, &["--request-timeout", "2s"], &[], chaos).await;
    row("--listen, createTask answers cut or stalled", &chaotic);
    let stats = chaotic.sim.stats();
    let lost_answers = stats
        .faults
        .get("createTask.resetAfter")
        .copied()
        .unwrap_or(0)
        + stats
            .faults
            .get("createTask.slowAfter")
            .copied()
            .unwrap_or(0);
    let recovered = chaotic.summary["recovered"].as_u64().unwrap_or(0);
    println!(
        "  lost answers {lost_answers}, recovered {recovered} ({:.0} %), tasks {} for {jobs} jobs, paid twice {}: target >= 90 % recovered and 0 paid twice: {}",
        100.0 * recovered as f64 / lost_answers.max(1) as f64,
        stats.tasks_created,
        stats.duplicate_inputs().len(),
        if recovered * 10 >= lost_answers * 9 && stats.duplicate_inputs().is_empty() {
            "met"
        } else {
            "NOT met"
        }
    );
}
