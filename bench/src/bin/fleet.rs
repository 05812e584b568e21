//! Many `kling generate` processes started at once on one host, against the
//! simulator's 20 per 10 s limit: how many 429s they receive with the window
//! counted per process and with the default shared file
//! (`--rate-limit-store host`), and whether any 10 s window held more than 20
//! creations as the service saw them.
//!
//! ```text
//! cargo build --release -p kling-cli -p kling-bench
//! ./target/release/fleet [--processes 30]
//! ```

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kling_sim::{RateLimitMode, Simulator};

fn kling_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let candidate = exe.parent().unwrap().join("kling");
    assert!(
        candidate.exists(),
        "build the CLI first: cargo build --release -p kling-cli (looked for {})",
        candidate.display()
    );
    candidate
}

struct Row {
    store: &'static str,
    ok: usize,
    wall: Duration,
    created: u64,
    refused: u64,
    duplicates: usize,
    busiest_window: usize,
}

async fn run(store: &'static str, processes: usize) -> Row {
    let sim = Simulator::builder()
        .with(|c| {
            c.lifecycle.waiting_ms = [100, 300];
            c.lifecycle.queuing_ms = [100, 300];
            c.lifecycle.generating_ms = [1000, 2000];
            c.rate_limit.max = 20;
            c.rate_limit.window_ms = 10_000;
            c.rate_limit.mode = RateLimitMode::Http429;
            c.rate_limit.retry_after = true;
        })
        .start()
        .await
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let assets = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/assets");
    let started = Instant::now();
    let children: Vec<_> = (0..processes)
        .map(|i| {
            tokio::process::Command::new(kling_binary())
                .args([
                    "--base-url",
                    sim.base_url(),
                    "--upload-base-url",
                    &sim.upload_base_url(),
                ])
                .args(["--json", "--rate-limit-store", store, "generate"])
                .arg("--image")
                .arg(assets.join("face.png"))
                .arg("--audio")
                .arg(assets.join("hello.wav"))
                .args(["--prompt", &format!("fleet process {i}"), "--out"])
                .arg(work.path().join(format!("{i}.mp4")))
                .env("APIKLEY_API_KEY", sim.api_key())
                .env("KLING_STATE_DIR", work.path().join("state"))
                .kill_on_drop(true)
                .output()
        })
        .collect();
    let mut ok = 0;
    for child in children {
        let output = tokio::time::timeout(Duration::from_secs(300), child)
            .await
            .expect("a process hung")
            .unwrap();
        if output.status.success() {
            ok += 1;
        } else {
            eprintln!("{}", String::from_utf8_lossy(&output.stderr));
        }
    }
    let wall = started.elapsed();
    let stats = sim.stats();
    let mut created: Vec<i64> = stats.tasks.iter().map(|t| t.created_ms).collect();
    created.sort();
    let busiest_window = (0..created.len())
        .map(|i| {
            created[i..]
                .iter()
                .take_while(|t| **t - created[i] < 10_000)
                .count()
        })
        .max()
        .unwrap_or(0);
    Row {
        store,
        ok,
        wall,
        created: stats.tasks_created,
        refused: stats.rate_limited,
        duplicates: stats.duplicate_inputs().len(),
        busiest_window,
    }
}

#[tokio::main]
async fn main() {
    let mut processes = 30;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--processes" => {
                processes = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--processes N")
            }
            other => panic!("unknown argument {other}"),
        }
    }
    println!(
        "{processes} `kling generate` processes at once, simulator limit 20 per 10 s (HTTP 429 with Retry-After)"
    );
    println!(
        "{:<9} {:>8} {:>9} {:>8} {:>11} {:>10} {:>15}",
        "store", "videos", "wall s", "tasks", "429s", "paid 2x", "busiest 10 s"
    );
    let mut pass = true;
    for store in ["process", "host"] {
        let row = run(store, processes).await;
        println!(
            "{:<9} {:>8} {:>9.1} {:>8} {:>11} {:>10} {:>15}",
            row.store,
            format!("{}/{processes}", row.ok),
            row.wall.as_secs_f64(),
            row.created,
            row.refused,
            row.duplicates,
            row.busiest_window
        );
        pass &= row.ok == processes && row.duplicates == 0 && row.busiest_window <= 20;
        if store == "host" {
            pass &= row.refused == 0;
        }
    }
    println!("{}", if pass { "PASS" } else { "FAIL" });
    if !pass {
        std::process::exit(1);
    }
}
