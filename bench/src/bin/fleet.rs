//! Many `kling` processes, one account, against the simulator's 20 per 10 s
//! limit.
//!
//! - `generate` (the default): N `kling generate` processes started at once
//!   on one host: how many 429s they receive with the window counted per
//!   process and with the default shared file (`--rate-limit-store host`),
//!   and whether any 10 s window held more than 20 creations as the service
//!   saw them.
//! - `--store`: `kling batch --store` with 1 and then 4 workers sharing one
//!   PostgreSQL database (a throwaway cluster) on a 200-job manifest: wall
//!   time against the sliding-window floor, 429s, and database transactions
//!   per job (`pg_stat_database.xact_commit`: each statement is one round trip).
//!
//! ```text
//! cargo build --release -p kling-cli -p kling-bench
//! ./target/release/fleet [--processes 30]
//! ./target/release/fleet --store [--jobs 200]
//! ```

use std::path::PathBuf;
use std::time::{Duration, Instant};

use kling_sim::{RateLimitMode, Simulator};

use kling_bench::kling_binary;

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

struct FleetRow {
    workers: usize,
    wall: Duration,
    ended: usize,
    created: u64,
    refused: u64,
    duplicates: usize,
    busiest_window: usize,
    transactions_per_job: f64,
    longest_job_ms: u64,
}

fn busiest(created: &mut [i64]) -> usize {
    created.sort();
    (0..created.len())
        .map(|i| {
            created[i..]
                .iter()
                .take_while(|t| **t - created[i] < 10_000)
                .count()
        })
        .max()
        .unwrap_or(0)
}

fn transactions(pg: &kling_testkit::TestPg) -> f64 {
    let socket = pg.dir().display().to_string();
    let out = std::process::Command::new("psql")
        .args(["-h", &socket, "-U", "postgres", "-d", "postgres", "-Atc"])
        .arg("SELECT sum(xact_commit) FROM pg_stat_database")
        .output()
        .expect("psql runs");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a number")
}

async fn fleet(workers: usize, jobs: usize) -> FleetRow {
    let pg = kling_testkit::TestPg::start("fleet bench")
        .expect("PostgreSQL server programs are installed");
    let sim = Simulator::builder()
        .with(|c| {
            c.rate_limit.max = 20;
            c.rate_limit.window_ms = 10_000;
        })
        .start()
        .await
        .unwrap();
    let work = tempfile::tempdir().unwrap();
    let assets = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/assets");
    std::fs::copy(assets.join("face.png"), work.path().join("face.png")).unwrap();
    std::fs::copy(assets.join("hello.wav"), work.path().join("hello.wav")).unwrap();
    let lines: Vec<String> = (0..jobs)
        .map(|i| serde_json::json!({"id": format!("job-{i:03}"), "image": "face.png", "audio": "hello.wav", "prompt": format!("fleet {i}")}).to_string())
        .collect();
    std::fs::write(work.path().join("jobs.jsonl"), lines.join("\n")).unwrap();
    let before = transactions(&pg);
    let started = Instant::now();
    let children: Vec<_> = (0..workers)
        .map(|w| {
            tokio::process::Command::new(kling_binary())
                .args([
                    "--base-url",
                    sim.base_url(),
                    "--upload-base-url",
                    &sim.upload_base_url(),
                ])
                .args(["--json", "batch"])
                .arg(work.path().join("jobs.jsonl"))
                .arg("--out-dir")
                .arg(work.path().join(format!("out-{w}")))
                .args(["--yes", "--concurrency", "64"])
                .env("APIKLEY_API_KEY", sim.api_key())
                .env("KLING_STORE", pg.url())
                .env("KLING_STATE_DIR", work.path().join(format!("state-{w}")))
                .kill_on_drop(true)
                .output()
        })
        .collect();
    for child in children {
        let output = tokio::time::timeout(Duration::from_secs(900), child)
            .await
            .expect("a worker hung")
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let wall = started.elapsed();
    let after = transactions(&pg);
    let stats = sim.stats();
    let mut created: Vec<i64> = stats.tasks.iter().map(|t| t.created_ms).collect();
    let results =
        std::fs::read_to_string(work.path().join("out-0/results.jsonl")).unwrap_or_default();
    FleetRow {
        workers,
        wall,
        ended: results.lines().count(),
        created: stats.tasks_created,
        refused: stats.rate_limited,
        duplicates: stats.duplicate_inputs().len(),
        busiest_window: busiest(&mut created),
        transactions_per_job: (after - before) / jobs as f64,
        longest_job_ms: stats
            .tasks
            .iter()
            .map(|t| t.ends_after_ms)
            .max()
            .unwrap_or(0),
    }
}

async fn store_mode(jobs: usize) {
    println!(
        "`kling batch --store`: {jobs} jobs, one PostgreSQL database, simulator limit 20 per 10 s, default lifecycle"
    );
    println!(
        "{:<8} {:>8} {:>8} {:>8} {:>6} {:>8} {:>13} {:>10}",
        "workers", "wall s", "floor s", "ended", "429s", "paid 2x", "busiest 10 s", "db tx/job"
    );
    let mut pass = true;
    for workers in [1, 4] {
        let row = fleet(workers, jobs).await;
        // The sliding-window floor: 20 at once, then 20 more every 10 s; the
        // last of them still has to run.
        let windows = jobs.div_ceil(20).saturating_sub(1) as f64;
        let floor = windows * 10.0 + row.longest_job_ms as f64 / 1000.0;
        println!(
            "{:<8} {:>8.1} {:>8.1} {:>8} {:>6} {:>8} {:>13} {:>10.1}",
            row.workers,
            row.wall.as_secs_f64(),
            floor,
            format!("{}/{jobs}", row.ended),
            row.refused,
            row.duplicates,
            row.busiest_window,
            row.transactions_per_job
        );
        pass &= row.ended == jobs
            && row.created as usize == jobs
            && row.refused == 0
            && row.duplicates == 0
            && row.busiest_window <= 20;
    }
    println!("{}", if pass { "PASS" } else { "FAIL" });
    if !pass {
        std::process::exit(1);
    }
}

#[tokio::main]
async fn main() {
    let mut processes = 30;
    let mut jobs = 200;
    let mut store = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--processes" => {
                processes = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--processes N")
            }
            "--jobs" => jobs = args.next().and_then(|n| n.parse().ok()).expect("--jobs N"),
            "--store" => store = true,
            other => panic!("unknown argument {other}"),
        }
    }
    if store {
        return store_mode(jobs).await;
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
