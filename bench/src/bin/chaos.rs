//! The chaos run: hundreds of jobs through the SDK (`submit_and_wait` +
//! `download`) and through `kling batch`, against `kling-sim` with every fault
//! kind switched on, with every form of 429. It reports what ended how, and
//! checks what must never happen: a hang, a paid task created twice, a corrupt
//! or partial video on disk, the API key in any output.
//!
//! ```text
//! cargo build --release -p kling-cli          # the CLI runs as a child process
//! cargo run --release -p kling-bench --bin chaos -- [--jobs 500] [--via sdk|cli|both] [--mode http429|bare429|envelope429|all]
//! ```
//!
//! The three forms of a 429: HTTP 429 with `Retry-After`, HTTP 429 without it
//! (`bare429`), HTTP 200 with code 429 (`envelope429`). Besides the random 429
//! faults, the simulator allows 40 creations per 5 s while the clients allow
//! themselves 50, so real 429 storms come in bursts every window. Time is scaled
//! down (tasks take 1 to 3 s) so that a 500-job run takes about a minute per
//! mode and path.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kling_api_ext::WaitOptions;
use kling_api_ext::{AvatarRequest, Client, RateLimit, RetryPolicy};
use kling_sim::{RateLimitMode, SimConfig, Simulator};

const KEY: &str = "sk-chaos-7f3e9a1c5b2d-SECRET";
const FAULT: f64 = 0.06;

/// How the simulator says "too many requests".
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    /// HTTP 429 with `Retry-After`.
    Http429,
    /// HTTP 429 without `Retry-After`.
    Bare429,
    /// HTTP 200 with code 429.
    Envelope429,
}

fn faults(config: &mut SimConfig, mode: Mode) {
    config.api_keys = vec![KEY.to_owned()];
    config.credits = 1e12;
    config.lifecycle.waiting_ms = [100, 400];
    config.lifecycle.queuing_ms = [100, 600];
    config.lifecycle.generating_ms = [800, 2000];
    config.lifecycle.fail_fraction = 0.05;
    // Below the clients' 50 per 5 s: storms of real 429s every window.
    config.rate_limit.max = 40;
    config.rate_limit.window_ms = 5000;
    config.rate_limit.mode = match mode {
        Mode::Envelope429 => RateLimitMode::Envelope429,
        Mode::Http429 | Mode::Bare429 => RateLimitMode::Http429,
    };
    config.rate_limit.retry_after = mode == Mode::Http429;
    let f = &mut config.faults;
    f.seed = 2026;
    f.slow_ms = 3000; // past the client's 2 s request timeout
    f.retry_after_on_fault = mode == Mode::Http429;
    f.null_record = FAULT;
    f.null_record_ms = 1500;
    f.unknown_state = FAULT;
    f.unknown_state_ms = 1000;
    f.fail_code_int = 0.5;
    for endpoint in [
        &mut f.create_task,
        &mut f.record_info,
        &mut f.common,
        &mut f.upload,
    ] {
        endpoint.reset_before = FAULT;
        endpoint.reset_after = FAULT;
        endpoint.slow_after = FAULT;
        endpoint.html502 = FAULT;
        endpoint.html520 = FAULT;
        endpoint.envelope500 = FAULT;
        endpoint.envelope455 = FAULT;
        endpoint.rate_limited = FAULT;
        endpoint.message_alias = FAULT;
    }
    f.download.truncate = 0.1;
    f.download.html502 = FAULT;
    f.download.html520 = FAULT;
    f.download.reset_before = FAULT;
    f.download.slow_after = FAULT;
}

struct Report {
    title: String,
    outcomes: BTreeMap<String, u32>,
    videos: u32,
    bad_videos: Vec<String>,
    partial_files: Vec<String>,
    hangs: u32,
    duplicates: usize,
    tasks: u64,
    rate_limited: u64,
    key_leaks: Vec<String>,
    faults: u64,
    elapsed: Duration,
    notes: Vec<String>,
}

impl Report {
    fn print(&self) {
        println!("\n## {}", self.title);
        println!(
            "  elapsed {:.1} s; faults injected {}; 429s sent {}",
            self.elapsed.as_secs_f64(),
            self.faults,
            self.rate_limited
        );
        println!("  tasks created {}; jobs by outcome:", self.tasks);
        for (outcome, n) in &self.outcomes {
            println!("    {outcome:<26} {n}");
        }
        println!(
            "  videos on disk {} ({} corrupt, {} partial files)",
            self.videos,
            self.bad_videos.len(),
            self.partial_files.len()
        );
        println!(
            "  hangs {}   paid tasks created twice {}   key leaks {}",
            self.hangs,
            self.duplicates,
            self.key_leaks.len()
        );
        for note in &self.notes {
            println!("    - {note}");
        }
        for problem in self
            .bad_videos
            .iter()
            .chain(&self.partial_files)
            .chain(&self.key_leaks)
        {
            println!("    ! {problem}");
        }
    }

    fn ok(&self) -> bool {
        self.hangs == 0
            && self.duplicates == 0
            && self.bad_videos.is_empty()
            && self.partial_files.is_empty()
            && self.key_leaks.is_empty()
    }
}

/// Checks every file in `dir`: videos must be whole, nothing partial may stay.
fn check_dir(dir: &Path, report: &mut Report) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        // `.lock` is the batch's directory lock: expected, not a partial file.
        if name == ".lock" {
            continue;
        }
        if name.ends_with(".part") || name.starts_with('.') {
            report.partial_files.push(path.display().to_string());
        } else if name.ends_with(".mp4") {
            report.videos += 1;
            if std::fs::read(&path).unwrap() != kling_sim::RESULT_VIDEO {
                report.bad_videos.push(path.display().to_string());
            }
        }
    }
}

/// Looks for the key in every file under `dir` (logs, journal, results).
fn grep_key(dir: &Path, report: &mut Report) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            grep_key(&path, report);
        } else if let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes())
        {
            report.key_leaks.push(path.display().to_string());
        }
    }
}

fn new_report(title: String) -> Report {
    Report {
        title,
        outcomes: BTreeMap::new(),
        videos: 0,
        bad_videos: vec![],
        partial_files: vec![],
        hangs: 0,
        duplicates: 0,
        tasks: 0,
        rate_limited: 0,
        key_leaks: vec![],
        faults: 0,
        elapsed: Duration::ZERO,
        notes: vec![],
    }
}

fn finish(report: &mut Report, sim: &Simulator, started: Instant) {
    let stats = sim.stats();
    report.duplicates = stats.duplicate_inputs().len();
    report.tasks = stats.tasks_created;
    report.rate_limited = stats.rate_limited;
    report.faults = stats.faults.values().sum();
    report.elapsed = started.elapsed();
}

async fn via_sdk(jobs: usize, mode: Mode, assets: &Path, work: &Path) -> Report {
    let sim = Simulator::builder()
        .with(|c| faults(c, mode))
        .start()
        .await
        .unwrap();
    let mut report = new_report(format!(
        "SDK submit_and_wait + download, {jobs} jobs, rate limit as {mode:?}"
    ));
    let client = Client::builder()
        .api_key(KEY)
        .base_url(sim.base_url())
        .upload_base_url(sim.upload_base_url())
        .request_timeout(Duration::from_secs(2))
        .rate_limit(Some(RateLimit::new(50, Duration::from_secs(5))))
        .retry(RetryPolicy::default().time_budget(Duration::from_secs(20)))
        .build()
        .unwrap();
    let out = work.join(format!("sdk-{mode:?}"));
    std::fs::create_dir_all(&out).unwrap();
    let started = Instant::now();
    let limit = Arc::new(tokio::sync::Semaphore::new(64));
    let handles: Vec<_> = (0..jobs)
        .map(|i| {
            let (client, limit, out) = (client.clone(), limit.clone(), out.clone());
            let request = AvatarRequest::builder()
                .image(assets.join("face.png"))
                .audio(assets.join("hello.wav"))
                .prompt(format!("chaos job {i}"))
                .build()
                .unwrap();
            tokio::spawn(async move {
                let _permit = limit.acquire_owned().await.unwrap();
                // A hang is a job that does not end within two minutes, whatever it does.
                tokio::time::timeout(Duration::from_secs(120), async {
                    let options = WaitOptions::new().deadline(Some(Duration::from_secs(60)));
                    let task = client.submit_and_wait(&request, options).await?;
                    client
                        .download(&task, out.join(format!("job-{i}.mp4")))
                        .await?;
                    Ok::<(), kling_api_ext::Error>(())
                })
                .await
            })
        })
        .collect();
    for handle in handles {
        let key = match handle.await.unwrap() {
            Err(_) => {
                report.hangs += 1;
                "HANG".to_owned()
            }
            Ok(Ok(())) => "video".to_owned(),
            Ok(Err(e)) => {
                if matches!(e, kling_api_ext::Error::WaitTimedOut { .. }) {
                    // Rare enough to show each: the task may still finish.
                    report.notes.push(e.to_string());
                }
                format!("error: {}", e.kind())
            }
        };
        *report.outcomes.entry(key).or_default() += 1;
    }
    finish(&mut report, &sim, started);
    check_dir(&out, &mut report);
    report
}

use kling_bench::kling_binary;

async fn via_cli(jobs: usize, mode: Mode, assets: &Path, work: &Path) -> Report {
    let sim = Simulator::builder()
        .with(|c| faults(c, mode))
        .start()
        .await
        .unwrap();
    let mut report = new_report(format!(
        "kling batch, {jobs} jobs, rate limit as {mode:?}, -vv and RUST_LOG=trace"
    ));
    let dir = work.join(format!("cli-{mode:?}"));
    let out = dir.join("out");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(assets.join("face.png"), dir.join("face.png")).unwrap();
    std::fs::copy(assets.join("hello.wav"), dir.join("hello.wav")).unwrap();
    let manifest = dir.join("jobs.jsonl");
    let lines: Vec<String> = (0..jobs)
        .map(|i| serde_json::json!({"id": format!("job-{i:03}"), "image": "face.png", "audio": "hello.wav", "prompt": format!("chaos job {i}")}).to_string())
        .collect();
    std::fs::write(&manifest, lines.join("\n")).unwrap();
    let started = Instant::now();
    // Two runs: the second resumes what the first left running or timed out.
    for run in 1..=2 {
        let child = tokio::process::Command::new(kling_binary())
            .args([
                "--base-url",
                sim.base_url(),
                "--upload-base-url",
                &sim.upload_base_url(),
            ])
            .args([
                "--request-timeout",
                "2s",
                "--rate-limit",
                "50/5s",
                "--json",
                "-vv",
                "batch",
            ])
            .arg(&manifest)
            .arg("--out-dir")
            .arg(&out)
            .args(["--concurrency", "64", "--timeout", "60s"])
            .env("APIKLEY_API_KEY", KEY)
            .env("KLING_STATE_DIR", dir.join("state"))
            .env("RUST_LOG", "trace")
            .kill_on_drop(true)
            .output();
        match tokio::time::timeout(Duration::from_secs(600), child).await {
            Err(_) => report.hangs += 1,
            Ok(output) => {
                let output = output.unwrap();
                std::fs::write(dir.join(format!("stdout-{run}.txt")), &output.stdout).unwrap();
                std::fs::write(dir.join(format!("stderr-{run}.txt")), &output.stderr).unwrap();
            }
        }
    }
    finish(&mut report, &sim, started);
    let results = std::fs::read_to_string(out.join("results.jsonl")).unwrap_or_default();
    let mut ended = 0;
    for line in results.lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        let status = value["status"].as_str().unwrap_or("?");
        let key = match status {
            "done" => "video".to_owned(),
            other => format!(
                "{other}: {}",
                value["error"]["kind"].as_str().unwrap_or("?")
            ),
        };
        *report.outcomes.entry(key).or_default() += 1;
        ended += 1;
    }
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("stdout-2.txt")).unwrap_or_default())
            .unwrap_or_default();
    let unknown = summary["ambiguous"].as_u64().unwrap_or(0) as u32;
    *report
        .outcomes
        .entry("outcome unknown (left alone)".into())
        .or_default() += unknown;
    let not_ended = jobs as u32 - ended - unknown;
    if not_ended > 0 {
        *report
            .outcomes
            .entry("not ended after 2 runs".into())
            .or_default() += not_ended;
    }
    check_dir(&out, &mut report);
    grep_key(&dir, &mut report);
    report
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str, default: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
            .unwrap_or_else(|| default.to_owned())
    };
    let jobs: usize = value("--jobs", "500").parse().expect("--jobs N");
    let via = value("--via", "both");
    let modes = match value("--mode", "all").as_str() {
        "http429" => vec![Mode::Http429],
        "bare429" => vec![Mode::Bare429],
        "envelope429" => vec![Mode::Envelope429],
        _ => vec![Mode::Http429, Mode::Bare429, Mode::Envelope429],
    };
    let assets = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/assets");
    let work = tempfile::tempdir().unwrap();
    println!(
        "# Chaos run: {jobs} jobs per path and mode; every fault kind at {:.0} % (truncated downloads 10 %)",
        FAULT * 100.0
    );
    let mut all_ok = true;
    for mode in modes {
        if via == "sdk" || via == "both" {
            let report = via_sdk(jobs, mode, &assets, work.path()).await;
            report.print();
            all_ok &= report.ok();
        }
        if via == "cli" || via == "both" {
            let report = via_cli(jobs, mode, &assets, work.path()).await;
            report.print();
            all_ok &= report.ok();
        }
    }
    println!(
        "\n{}",
        if all_ok {
            "PASS: 0 hangs, 0 duplicates, 0 corrupt or partial videos, 0 key leaks"
        } else {
            "FAIL"
        }
    );
    if !all_ok {
        std::process::exit(1);
    }
}
