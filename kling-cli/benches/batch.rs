//! A 200-job batch against the simulator with its default rate limit (20
//! creations per 10 s): wall time against the floor the limit allows, 429s
//! received, and the CLI's peak memory.
//!
//! ```text
//! cargo bench -p kling-cli --bench batch
//! ```

use std::io::Write as _;
use std::time::Instant;

const JOBS: usize = 200;

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sim = runtime
        .block_on(
            kling_sim::Simulator::builder()
                .with(|c| c.credits = 1e9)
                .start(),
        )
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let assets = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/assets");
    std::fs::copy(assets.join("face.png"), dir.path().join("face.png")).unwrap();
    std::fs::copy(assets.join("hello.wav"), dir.path().join("hello.wav")).unwrap();
    let manifest = dir.path().join("jobs.jsonl");
    let lines: Vec<String> = (0..JOBS)
        .map(|i| serde_json::json!({"id": format!("job-{i:03}"), "image": "face.png", "audio": "hello.wav", "prompt": format!("take {i}")}).to_string())
        .collect();
    std::fs::write(&manifest, lines.join("\n")).unwrap();
    let out = dir.path().join("out");

    let time = std::path::Path::new("/usr/bin/time");
    let mut command = if time.exists() {
        let mut c = std::process::Command::new(time);
        c.args(["-f", "peak-rss-kb %M"])
            .arg(env!("CARGO_BIN_EXE_kling"));
        c
    } else {
        std::process::Command::new(env!("CARGO_BIN_EXE_kling"))
    };
    command
        .args([
            "--base-url",
            sim.base_url(),
            "--upload-base-url",
            &sim.upload_base_url(),
            "--json",
            "--quiet",
            "batch",
        ])
        .arg(&manifest)
        .arg("--out-dir")
        .arg(&out)
        .args(["--concurrency", "64"])
        .env("APIKLEY_API_KEY", sim.api_key())
        // What the CLI learns about a throwaway simulator stays with it.
        .env("KLING_STATE_DIR", dir.path().join("state"));
    let started = Instant::now();
    let output = command.output().unwrap();
    let wall = started.elapsed().as_secs_f64();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let peak = String::from_utf8_lossy(&output.stderr)
        .lines()
        .find_map(|l| {
            l.strip_prefix("peak-rss-kb ")
                .map(|v| v.trim().parse::<f64>().unwrap() / 1024.0)
        });

    let stats = sim.stats();
    let longest = stats
        .tasks
        .iter()
        .map(|t| t.ends_after_ms)
        .max()
        .unwrap_or(0) as f64
        / 1000.0;
    let limit = &sim.config().rate_limit;
    let per_second = f64::from(limit.max) / (limit.window_ms as f64 / 1000.0);
    let formula = JOBS as f64 / per_second + longest;
    // With a sliding window the last of 200 creations can go out at 90 s: 20 at
    // once, then 20 every 10 s.
    let windows = (JOBS as f64 / f64::from(limit.max)).ceil() - 1.0;
    let window_floor = windows * limit.window_ms as f64 / 1000.0 + longest;
    println!(
        "batch of {JOBS} jobs against kling-sim (rate limit {} per {} s), --concurrency 64:",
        limit.max,
        limit.window_ms / 1000
    );
    println!("  wall time           {wall:.1} s");
    println!(
        "  floor (200 / {per_second:.0} per s + longest job {longest:.1} s)  {formula:.1} s  → {:.2}x",
        wall / formula
    );
    println!(
        "  sliding-window floor ({windows} full windows + longest job)  {window_floor:.1} s  → {:.2}x",
        wall / window_floor
    );
    println!(
        "  done {} of {JOBS}; tasks created {}; duplicates {}",
        summary["done"],
        stats.tasks_created,
        stats.duplicate_inputs().len()
    );
    println!("  429s received       {}", stats.rate_limited);
    println!(
        "  uploads             {}",
        stats.requests_to("uploadStream")
    );
    println!(
        "  status requests     {} ({:.1} per task)",
        stats.requests_to("recordInfo"),
        stats.requests_to("recordInfo") as f64 / JOBS as f64
    );
    match peak {
        Some(mb) => println!("  peak memory (kling) {mb:.1} MB"),
        None => println!("  peak memory: /usr/bin/time not found"),
    }
    std::io::stdout().flush().unwrap();
}
