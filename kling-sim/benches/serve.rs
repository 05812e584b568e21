//! How fast the simulator answers recordInfo, and its memory with 1,000 live
//! tasks.
//!
//! ```text
//! cargo bench -p kling-sim --bench serve
//! ```
//!
//! The simulator runs as its own process (the `kling-sim` binary, built in
//! release) so its memory is its own; this process is the load generator: 1,000
//! tasks are created (none ends during the run), then recordInfo is asked for
//! them round-robin over keep-alive connections for a few seconds. Both share
//! the machine's cores, so the figure is a floor for the server alone.

use std::io::{BufRead, BufReader, Write as _};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

const TASKS: usize = 1000;
const CONNECTIONS: usize = 32;
const SECONDS: u64 = 5;

fn rss_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn main() {
    // Cargo builds the bench profile's binaries next to this one.
    let exe = std::env::current_exe().unwrap();
    let sim_bin = exe.parent().unwrap().parent().unwrap().join("kling-sim");
    assert!(
        sim_bin.exists(),
        "build it first: cargo build --release -p kling-sim ({})",
        sim_bin.display()
    );
    let dir = std::env::temp_dir().join(format!("kling-sim-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("sim.json");
    std::fs::write(
        &config,
        r#"{"apiKeys":["bench"],"credits":1e12,"rateLimit":{"max":0},
            "lifecycle":{"waitingMs":[3600000,3600000],"queuingMs":[0,0],"generatingMs":[0,0]}}"#,
    )
    .unwrap();
    let mut child = Command::new(&sim_bin)
        .arg("--config")
        .arg(&config)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines.next().unwrap().unwrap();
        if let Some(url) = line.strip_prefix("APIKLEY_BASE_URL=") {
            break url.to_owned();
        }
    };
    let idle_kb = rss_kb(pid, "VmRSS:");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (ids, rps, p99_ms) = runtime.block_on(async {
        // ring on purpose (no C toolchain, a faster build); rustls 0.23.48
        // deprecates it only for lacking post-quantum key exchange.
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder().user_agent("bench/1").pool_max_idle_per_host(CONNECTIONS).build().unwrap();
        let mut ids = Vec::with_capacity(TASKS);
        for i in 0..TASKS {
            let body = serde_json::json!({"model": "kling/ai-avatar-v1-pro", "input": {
                "image_url": "https://cdn.example.com/f.png", "audio_url": "https://cdn.example.com/a.mp3",
                "prompt": format!("bench task {i}")}});
            let answer: serde_json::Value = http
                .post(format!("{base}/api/v1/jobs/createTask"))
                .bearer_auth("bench")
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            ids.push(answer["data"]["taskId"].as_str().unwrap().to_owned());
        }
        let ids = Arc::new(ids);
        let done = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs(SECONDS);
        let workers: Vec<_> = (0..CONNECTIONS)
            .map(|w| {
                let (http, ids, done, base) = (http.clone(), ids.clone(), done.clone(), base.clone());
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    let mut i = w;
                    while Instant::now() < deadline {
                        let started = Instant::now();
                        let response = http
                            .get(format!("{base}/api/v1/jobs/recordInfo"))
                            .query(&[("taskId", ids[i % ids.len()].as_str())])
                            .bearer_auth("bench")
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(response.status(), 200);
                        let _ = response.bytes().await.unwrap();
                        latencies.push(started.elapsed());
                        done.fetch_add(1, Ordering::Relaxed);
                        i += CONNECTIONS;
                    }
                    latencies
                })
            })
            .collect();
        let started = Instant::now();
        let mut latencies = Vec::new();
        for w in workers {
            latencies.extend(w.await.unwrap());
        }
        let elapsed = started.elapsed().as_secs_f64();
        latencies.sort();
        let p99 = latencies[latencies.len() * 99 / 100].as_secs_f64() * 1000.0;
        (ids.len(), done.load(Ordering::Relaxed) as f64 / elapsed, p99)
    });
    let live_kb = rss_kb(pid, "VmRSS:");
    let peak_kb = rss_kb(pid, "VmHWM:");
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "simulator (release binary, separate process), {CONNECTIONS} keep-alive connections, {SECONDS} s:"
    );
    println!(
        "  recordInfo: {rps:.0} requests/s, p99 latency {p99_ms:.2} ms (load generator on the same 2 cores)"
    );
    println!(
        "  memory: {:.1} MB idle, {:.1} MB with {ids} live tasks, peak {:.1} MB",
        idle_kb as f64 / 1024.0,
        live_kb as f64 / 1024.0,
        peak_kb as f64 / 1024.0
    );
    std::io::stdout().flush().unwrap();
}
