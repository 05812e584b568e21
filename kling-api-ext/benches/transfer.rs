//! Upload and download throughput and peak memory at 10 MB and 100 MB, against
//! local servers on 127.0.0.1 (one discards what it receives, the other streams
//! zeros).
//!
//! ```text
//! cargo bench -p kling-api-ext --bench transfer
//! ```
//!
//! Each size runs in its own child process so that its peak resident memory
//! (`VmHWM` from /proc/self/status, Linux) is its own. The upload's file is
//! sparse: the figures are the client's cost, not the disk's.

use std::io::Write as _;
use std::time::Instant;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

const SIZES_MB: &[u64] = &[10, 100];

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--bench"))
        .collect();
    match args.as_slice() {
        [mode, mb] if mode == "upload-child" => upload_child(mb.parse().expect("size in MB")),
        [mode, mb] if mode == "download-child" => download_child(mb.parse().expect("size in MB")),
        _ => parent(),
    }
}

fn parent() {
    let exe = std::env::current_exe().expect("own path");
    for (mode, title) in [
        (
            "upload-child",
            "upload (multipart stream, Client::upload_file)",
        ),
        (
            "download-child",
            "download (Client::download: temp file, SHA-256, rename)",
        ),
    ] {
        println!("{title}, one process per size:");
        println!(
            "{:>8} {:>10} {:>10} {:>14}",
            "size", "seconds", "MB/s", "peak RSS (MB)"
        );
        let mut peaks = Vec::new();
        for &mb in SIZES_MB {
            let out = std::process::Command::new(&exe)
                .arg(mode)
                .arg(mb.to_string())
                .output()
                .expect("child runs");
            assert!(
                out.status.success(),
                "child failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            let line = String::from_utf8(out.stdout).unwrap();
            let fields: Vec<f64> = line
                .split_whitespace()
                .map(|f| f.parse().unwrap())
                .collect();
            let (secs, peak_kb) = (fields[0], fields[1]);
            println!(
                "{:>6}MB {:>10.3} {:>10.1} {:>14.1}",
                mb,
                secs,
                mb as f64 / secs,
                peak_kb / 1024.0
            );
            peaks.push(peak_kb);
        }
        println!(
            "peak memory 100 MB / 10 MB: {:.2}x (target: < 3x)\n",
            peaks[1] / peaks[0]
        );
    }
    std::io::stdout().flush().unwrap();
}

/// Serves `bytes` zero bytes per request, in 64 KiB writes, never buffering
/// the whole body.
async fn source_server(listener: tokio::net::TcpListener, bytes: u64) {
    loop {
        let Ok((mut socket, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            let mut head = vec![0u8; 8192];
            let _ = socket.read(&mut head).await;
            let header = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: video/mp4\r\ncontent-length: {bytes}\r\n\r\n"
            );
            if socket.write_all(header.as_bytes()).await.is_err() {
                return;
            }
            let chunk = vec![0u8; 64 * 1024];
            let mut left = bytes;
            while left > 0 {
                let n = left.min(chunk.len() as u64) as usize;
                if socket.write_all(&chunk[..n]).await.is_err() {
                    return;
                }
                left -= n as u64;
            }
        });
    }
}

fn download_child(mb: u64) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/video.mp4", listener.local_addr().unwrap());
        tokio::spawn(source_server(listener, mb * 1_000_000));
        let dir = tempfile::tempdir().unwrap();
        let client = kling_api_ext::Client::builder()
            .api_key("bench-key")
            .base_url(&url)
            .build()
            .unwrap();
        let started = Instant::now();
        let url: url::Url = url.parse().unwrap();
        let saved = client
            .download(&url, dir.path().join("out.mp4"))
            .await
            .unwrap();
        let secs = started.elapsed().as_secs_f64();
        assert_eq!(saved.bytes, mb * 1_000_000);
        println!("{secs} {}", peak_rss_kb());
    });
}

fn peak_rss_kb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("Linux /proc");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// Reads one HTTP/1.1 request (Content-Length or chunked), discarding the
/// body, and answers with the upload envelope.
async fn sink_server(listener: tokio::net::TcpListener) {
    loop {
        let Ok((socket, _)) = listener.accept().await else {
            return;
        };
        tokio::spawn(async move {
            let (read, mut write) = socket.into_split();
            let mut reader = BufReader::with_capacity(64 * 1024, read);
            loop {
                let mut length = None;
                let mut chunked = false;
                let mut line = String::new();
                loop {
                    line.clear();
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        length = v.trim().parse::<u64>().ok();
                    }
                    if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
                        chunked = true;
                    }
                    if line == "\r\n" {
                        break;
                    }
                }
                let mut buf = vec![0u8; 64 * 1024];
                let cap = buf.len() as u64;
                if chunked {
                    loop {
                        line.clear();
                        reader.read_line(&mut line).await.unwrap();
                        let size = u64::from_str_radix(line.trim().split(';').next().unwrap(), 16)
                            .unwrap();
                        let mut left = size + 2;
                        while left > 0 {
                            let n = reader
                                .read(&mut buf[..left.min(cap) as usize])
                                .await
                                .unwrap();
                            left -= n as u64;
                        }
                        if size == 0 {
                            break;
                        }
                    }
                } else {
                    let mut left = length.unwrap_or(0);
                    while left > 0 {
                        let n = reader
                            .read(&mut buf[..left.min(cap) as usize])
                            .await
                            .unwrap();
                        if n == 0 {
                            return;
                        }
                        left -= n as u64;
                    }
                }
                let body = r#"{"success":true,"code":200,"msg":"File uploaded successfully","data":{"downloadUrl":"http://127.0.0.1/x.bin"}}"#;
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
                    body.len()
                );
                if write.write_all(head.as_bytes()).await.is_err()
                    || write.write_all(body.as_bytes()).await.is_err()
                {
                    return;
                }
            }
        });
    }
}

fn upload_child(mb: u64) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(sink_server(listener));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.wav");
        let file = std::fs::File::create(&path).unwrap();
        file.set_len(mb * 1_000_000).unwrap();
        drop(file);
        let client = kling_api_ext::Client::builder()
            .api_key("bench-key")
            .base_url(&url)
            .upload_base_url(&url)
            .build()
            .unwrap();
        let started = Instant::now();
        let uploaded = client.upload_file(&path).await.unwrap();
        let secs = started.elapsed().as_secs_f64();
        assert_eq!(uploaded.url.as_str(), "http://127.0.0.1/x.bin");
        println!("{secs} {}", peak_rss_kb());
    });
}
