//! `kling batch --store`: several worker processes, one database, under
//! SIGKILL. What must hold: every job ends once, `unknown` only where a kill
//! fell between intent and answer (and then at most one task exists for it),
//! no 10 s window over the limit, no 429.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use kling_testkit::TestPg;

use crate::support::{Sim, sim};

const JOBS: usize = 60;
const WORKERS: usize = 3;

fn manifest(dir: &Path) -> std::path::PathBuf {
    std::fs::copy(kling_testkit::asset("face.png"), dir.join("face.png")).unwrap();
    std::fs::copy(kling_testkit::asset("hello.wav"), dir.join("hello.wav")).unwrap();
    let lines: Vec<String> = (0..JOBS)
        .map(|i| format!(r#"{{"id":"job-{i:02}","image":"face.png","audio":"hello.wav","prompt":"fleet job {i}"}}"#))
        .collect();
    let path = dir.join("jobs.jsonl");
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

/// Worker `slot`: its own output and state directories, the shared store.
fn worker(sim: &Sim, pg: &TestPg, dir: &Path, slot: usize, clock: Option<&str>) -> Child {
    let mut command = sim.kling_std();
    command
        .env("KLING_STORE", pg.url())
        .env("KLING_STATE_DIR", dir.join(format!("state-{slot}")))
        .args(["--json", "batch"])
        .arg(dir.join("jobs.jsonl"))
        .arg("--out-dir")
        .arg(dir.join(format!("out-{slot}")))
        .args([
            "--yes",
            "--concurrency",
            "8",
            "--lease",
            "2s",
            "--timeout",
            "60s",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(offset) = clock {
        // The wall clock only: tokio's timers keep the real monotonic clock.
        command
            .env(
                "LD_PRELOAD",
                faketime_library().expect("checked by the caller"),
            )
            .env("FAKETIME", offset)
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1");
    }
    command.spawn().unwrap()
}

fn faketime_library() -> Option<&'static str> {
    [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    ]
    .into_iter()
    .find(|p| Path::new(p).exists())
}

struct Outcome {
    states: BTreeMap<String, String>,
    outputs: BTreeMap<String, String>,
}

fn status(sim: &Sim, pg: &TestPg, dir: &Path) -> Outcome {
    let output = sim
        .kling_std()
        .env("KLING_STORE", pg.url())
        .args(["--json", "batch"])
        .arg(dir.join("jobs.jsonl"))
        .arg("--status")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let mut states = BTreeMap::new();
    let mut outputs = BTreeMap::new();
    for job in doc["jobs"].as_array().unwrap() {
        let id = job["id"].as_str().unwrap().to_owned();
        states.insert(id.clone(), job["state"].as_str().unwrap().to_owned());
        if let Some(out) = job["output"].as_str() {
            outputs.insert(id, out.to_owned());
        }
    }
    Outcome { states, outputs }
}

/// Runs the fleet, SIGKILLing a random worker every ~2 s and restarting it,
/// `kills` times; then lets it finish. `clocks[slot]` fakes a worker's clock.
fn run_fleet(test: &str, kills: usize, clocks: [Option<&str>; WORKERS]) {
    let Some(pg) = TestPg::start(test) else {
        return;
    };
    if clocks.iter().any(Option::is_some) && faketime_library().is_none() {
        let why = "faketime is not installed (Debian's `faketime` package)";
        assert!(
            std::env::var_os("CI").is_none(),
            "{test}: {why}; CI runs every fleet test"
        );
        eprintln!("skipped {test}: {why}");
        return;
    }
    let sim = sim(|c| {
        c.rate_limit.max = 20;
        c.rate_limit.window_ms = 10_000;
    });
    let dir = tempfile::tempdir().unwrap();
    manifest(dir.path());
    let mut workers: Vec<Child> = (0..WORKERS)
        .map(|slot| worker(&sim, &pg, dir.path(), slot, clocks[slot]))
        .collect();
    let mut random = fastrand::Rng::with_seed(15);
    for _ in 0..kills {
        std::thread::sleep(Duration::from_millis(1500 + random.u64(0..1000)));
        let slot = random.usize(0..WORKERS);
        workers[slot].kill().unwrap(); // SIGKILL
        workers[slot].wait().unwrap();
        workers[slot] = worker(&sim, &pg, dir.path(), slot, clocks[slot]);
    }
    let deadline = Instant::now() + Duration::from_secs(240);
    for (slot, child) in workers.iter_mut().enumerate() {
        loop {
            if child.try_wait().unwrap().is_some() {
                break;
            }
            if Instant::now() > deadline {
                for child in &mut workers.iter_mut() {
                    let _ = child.kill();
                }
                panic!("worker {slot} did not end within 240 s");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    let outcome = status(&sim, &pg, dir.path());
    let stats = sim.sim.stats();
    assert_eq!(outcome.states.len(), JOBS);
    // Every job ended once: finished, or unknown (a kill between intent and answer).
    for (id, state) in &outcome.states {
        assert!(state == "finished" || state == "unknown", "{id}: {state}");
    }
    let unknown = outcome.states.values().filter(|s| *s == "unknown").count();
    // At most one task per job, whatever the kills: the simulator saw no input twice.
    assert!(
        stats.duplicate_inputs().is_empty(),
        "paid twice: {:?}",
        stats.duplicate_inputs()
    );
    assert!(stats.tasks_created as usize <= JOBS);
    assert!(stats.tasks_created as usize >= JOBS - unknown);
    assert!(
        unknown <= kills,
        "{unknown} unknown jobs from {kills} kills"
    );
    // The account's limit held for the fleet: no 429, no window over 20.
    assert_eq!(stats.rate_limited, 0, "the service refused creations");
    let mut created: Vec<i64> = stats.tasks.iter().map(|t| t.created_ms).collect();
    created.sort();
    for pair in created.windows(21) {
        assert!(
            pair[20] - pair[0] >= 10_000,
            "21 creations within 10 s: {pair:?}"
        );
    }
    // A faked clock took effect: that worker's history says it lived in another hour.
    for (slot, clock) in clocks.iter().enumerate() {
        if let Some(offset) = clock {
            let history =
                std::fs::read_to_string(dir.path().join(format!("state-{slot}/history.jsonl")))
                    .unwrap_or_default();
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as i64;
            let skew = history
                .lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter_map(|v| v["at"].as_i64())
                .map(|at| at - now)
                .max_by_key(|d| d.abs());
            let skew = skew.unwrap_or_else(|| panic!("worker {slot} ({offset}) sent nothing"));
            assert!(
                skew.abs() > 20 * 60 * 1000,
                "worker {slot} ({offset}): history {skew} ms off"
            );
        }
    }
    eprintln!(
        "{test}: {kills} kills, {} finished, {unknown} unknown, {} tasks created, 0 paid twice, 0 429",
        outcome.states.values().filter(|s| *s == "finished").count(),
        stats.tasks_created
    );
    // Each finished job's video is where the store says, and is an MP4.
    for (id, state) in &outcome.states {
        if state == "finished" {
            let output = &outcome.outputs[id];
            let bytes = std::fs::read(output).unwrap_or_else(|e| panic!("{id}: {output}: {e}"));
            kling_testkit::check_mp4(&bytes).unwrap_or_else(|e| panic!("{id}: {e}"));
        }
    }
}

#[test]
fn three_workers_sigkilled_at_random_end_every_job_once_within_the_limit() {
    run_fleet(
        "three_workers_sigkilled_at_random_end_every_job_once_within_the_limit",
        6,
        [None, None, None],
    );
}

#[test]
fn workers_whose_clocks_differ_change_nothing() {
    run_fleet(
        "workers_whose_clocks_differ_change_nothing",
        3,
        [None, Some("+1h"), Some("-25m")],
    );
}

#[test]
fn an_unreachable_store_is_said_with_its_cause_and_without_its_password() {
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(dir.path());
    let url = format!(
        "postgres://kling:s3cret@localhost/kling?host={}",
        dir.path().join("no-server").display()
    );
    let out = dir.path().join("out").display().to_string();
    for args in [vec!["--status"], vec!["--out-dir", out.as_str(), "--yes"]] {
        let output = crate::support::kling()
            .env("APIKLEY_API_KEY", "sk-test")
            // Nothing may reach a service: a closed loopback port if anything tried.
            .args([
                "--base-url",
                "http://127.0.0.1:9",
                "--upload-base-url",
                "http://127.0.0.1:9",
            ])
            .env("KLING_STORE", &url)
            .args(["--json", "batch"])
            .arg(&manifest)
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let text = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        let doc: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(doc["error"]["kind"], "store", "{text}");
        assert!(text.contains("No such file"), "the cause is said: {text}");
        assert!(!text.contains("s3cret"), "{text}");
    }
}
