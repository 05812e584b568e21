//! The security pass, as tests: the key never appears in any output at any
//! verbosity; hostile names from the service cannot put files outside the
//! target directory; the simulator only ever listens on loopback.

use std::path::Path;

use httpmock::{Method, MockServer};
use serde_json::json;

use crate::support::{asset, kling, sim, stderr};

const KEY: &str = "sk-sec-5e1f2a9c77b3-SECRET";

fn assert_clean(what: &str, bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    assert!(!text.contains(KEY), "the key leaked in {what}:\n{text}");
    assert!(
        !text.contains("5e1f2a9c77b3"),
        "part of the key leaked in {what}"
    );
}

fn assert_dir_clean(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            assert_dir_clean(&path);
        } else {
            assert_clean(&path.display().to_string(), &std::fs::read(&path).unwrap());
        }
    }
}

#[test]
fn the_key_never_appears_at_any_verbosity() {
    let sim = sim(|c| {
        c.api_keys = vec![KEY.into()];
        // Error paths too: refused creations, proxy pages, retries.
        c.faults.create_task.envelope455 = 0.3;
        c.faults.record_info.html502 = 0.3;
        c.faults.record_info.message_alias = 0.5;
        c.faults.download.truncate = 0.3;
    });
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(asset("face.png"), dir.path().join("face.png")).unwrap();
    std::fs::copy(asset("hello.wav"), dir.path().join("hello.wav")).unwrap();
    let manifest = dir.path().join("jobs.jsonl");
    std::fs::write(
        &manifest,
        (0..3)
            .map(|i| {
                json!({"id": format!("j{i}"), "image": "face.png", "audio": "hello.wav"})
                    .to_string()
            })
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, KEY).unwrap();
    for (verbosity, rust_log) in [
        (None, None),
        (Some("-v"), None),
        (Some("-vv"), None),
        (Some("-vvv"), None),
        (None, Some("trace")),
        (Some("-vvv"), Some("trace")),
    ] {
        let run = |args: &[&str]| {
            let mut cmd = kling();
            cmd.args([
                "--base-url",
                sim.sim.base_url(),
                "--upload-base-url",
                &sim.sim.upload_base_url(),
                "--api-key-file",
            ])
            .arg(&key_file);
            if let Some(v) = verbosity {
                cmd.arg(v);
            }
            if let Some(filter) = rust_log {
                cmd.env("RUST_LOG", filter);
            }
            cmd.args(args).output().unwrap()
        };
        let out = dir.path().join("v.mp4");
        for args in [
            vec![
                "generate",
                "--image",
                &asset("face.png"),
                "--audio",
                &asset("hello.wav"),
                "--out",
                out.to_str().unwrap(),
                // The same file each round: replacing it is asked for.
                "--force",
            ],
            vec!["credits"],
            vec!["status", "0123456789abcdef0123456789abcdef"],
            vec![
                "batch",
                manifest.to_str().unwrap(),
                "--out-dir",
                dir.path().join("out").to_str().unwrap(),
            ],
        ] {
            let output = run(&args);
            assert_clean(
                &format!("stdout of {args:?} {verbosity:?} {rust_log:?}"),
                &output.stdout,
            );
            assert_clean(
                &format!("stderr of {args:?} {verbosity:?} {rust_log:?}"),
                &output.stderr,
            );
            if rust_log == Some("trace") || verbosity == Some("-vvv") {
                // The check means something only if the logs were there to leak.
                let text = String::from_utf8_lossy(&output.stderr);
                assert!(
                    text.contains("TRACE") || text.contains("DEBUG"),
                    "no debug logs from {args:?} {verbosity:?} {rust_log:?}:\n{text}"
                );
            }
        }
    }
    // Every run reached the service: the key was in use, not just unread.
    let stats = sim.sim.stats();
    assert!(stats.requests_to("createTask") >= 6, "{:?}", stats.requests);
    assert!(stats.requests_to("recordInfo") >= 6, "{:?}", stats.requests);
    assert_dir_clean(dir.path().join("out").as_path());
}

#[test]
fn a_service_echoing_the_key_is_scrubbed() {
    let server = MockServer::start();
    server.mock(|when, then| {
        when.method(Method::GET).path("/api/v1/chat/credit");
        then.status(200)
            .body(json!({"code": 401, "msg": format!("Invalid key {KEY}")}).to_string());
    });
    server.mock(|when, then| {
        when.method(Method::GET).path("/api/v1/jobs/recordInfo");
        then.status(502)
            .body(format!("<html>upstream rejected Bearer {KEY}</html>"));
    });
    for args in [vec!["credits"], vec!["status", "abc"]] {
        let output = kling()
            .args([
                "--base-url",
                &server.base_url(),
                "--api-key",
                KEY,
                "--json",
                "-vvv",
            ])
            .args(&args)
            .env("RUST_LOG", "trace")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
        assert_clean("stdout", &output.stdout);
        assert_clean("stderr", &output.stderr);
        assert!(
            stderr(&output).contains("[redacted]"),
            "{}",
            stderr(&output)
        );
    }
}

#[test]
fn hostile_names_from_the_service_cannot_escape_the_directory() {
    let server = MockServer::start();
    let evil = "../../kling-evil-7b1e";
    let video = kling_sim::RESULT_VIDEO.to_vec();
    server.mock(|when, then| {
        when.method(Method::POST).path("/api/file-stream-upload");
        then.status(200).body(
            json!({"success": true, "code": 200, "msg": "ok", "data": {"downloadUrl": server.url("/files/../../etc/passwd")}}).to_string(),
        );
    });
    server.mock(|when, then| {
        when.method(Method::POST).path("/api/v1/jobs/createTask");
        then.status(200)
            .body(json!({"code": 200, "msg": "success", "data": {"taskId": evil}}).to_string());
    });
    let record = json!({"code": 200, "msg": "success", "data": {
        "taskId": evil, "state": "success", "resultJson": json!({"resultUrls": [server.url("/results/..%2F..%2Fevil.mp4")]}).to_string()}});
    server.mock(|when, then| {
        when.method(Method::GET).path("/api/v1/jobs/recordInfo");
        then.status(200).body(record.to_string());
    });
    server.mock(|when, then| {
        when.method(Method::GET).path_includes("/results/");
        then.status(200)
            .header("content-type", "video/mp4")
            .body(video.clone());
    });
    let root = tempfile::tempdir().unwrap();
    let cwd = root.path().join("a/b");
    std::fs::create_dir_all(&cwd).unwrap();
    let output = kling()
        .current_dir(&cwd)
        .args([
            "--base-url",
            &server.base_url(),
            "--upload-base-url",
            &server.base_url(),
            "--api-key",
            "k",
            "--json",
        ])
        .args([
            "generate",
            "--no-preflight",
            "--image",
            &asset("face.png"),
            "--audio",
            &asset("hello.wav"),
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    // The video landed in the working directory under a sanitised name...
    let inside: Vec<String> = std::fs::read_dir(&cwd)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(inside, ["______kling-evil-7b1e.mp4"]);
    // ...and nowhere above it.
    assert!(!root.path().join("kling-evil-7b1e.mp4").exists());
    assert_eq!(
        std::fs::read_dir(root.path()).unwrap().count(),
        1,
        "only a/ in the root"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn the_simulator_listens_on_loopback_only() {
    use std::io::{BufRead, BufReader};
    let mut child = crate::support::kling_std()
        .args(["--json", "sim"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut text = String::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while let Some(Ok(line)) = lines.next() {
        text.push_str(&line);
        if line.trim() == "}" {
            break;
        }
    }
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    let base = doc["baseUrl"].as_str().unwrap();
    let port: u16 = base.rsplit(':').next().unwrap().parse().unwrap();
    // Every listening socket on that port, from the kernel's own table.
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap()
        + &std::fs::read_to_string("/proc/net/tcp6").unwrap_or_default();
    let listening: Vec<String> = table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            let (addr, state) = (cols.get(1)?, cols.get(3)?);
            let (ip, p) = addr.split_once(':')?;
            (*state == "0A" && u16::from_str_radix(p, 16).ok()? == port).then(|| ip.to_owned())
        })
        .collect();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        listening,
        ["0100007F"],
        "listening on {listening:?} (0100007F is 127.0.0.1)"
    );
}
