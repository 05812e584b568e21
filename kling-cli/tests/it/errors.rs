//! Exit codes, error shapes, and bad input that never reaches the service.

use serde_json::json;

use crate::support::{asset, data, json, kling, sim, stderr};

#[test]
fn bad_input_exits_2_and_sends_nothing() {
    let sim = sim(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let long_prompt = "é".repeat(5001);
    let missing = dir.path().join("missing.png").display().to_string();
    let nowhere = dir.path().join("no/such/dir/a.mp4").display().to_string();
    let (face, hello, gif, video) = (
        asset("face.png"),
        asset("hello.wav"),
        data("face.gif"),
        data("video.mp4"),
    );
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["--image", &gif, "--audio", &hello],
            "content is image/gif",
        ),
        (
            vec!["--image", &face, "--audio", &video],
            "content is video/mp4",
        ),
        (
            vec![
                "--image",
                &face,
                "--audio",
                &hello,
                "--prompt",
                &long_prompt,
            ],
            "5001 characters",
        ),
        (vec!["--image", &missing, "--audio", &hello], "no such file"),
        // The URL parser reads `a.png` as this URL's host: it has none.
        (
            vec!["--image", "https:///a.png", "--audio", &hello],
            "invalid image `https:///a.png`: the URL has no host",
        ),
        (
            vec!["--image", &face, "--audio", "http://:8080/v.mp3"],
            "invalid audio `http://:8080/v.mp3`: not a valid URL (empty host)",
        ),
        (
            vec![
                "--image",
                &face,
                "--audio",
                &hello,
                "--callback-url",
                "https:///hook",
            ],
            "no host",
        ),
        (
            vec!["--image", "ftp://example.com/a.png", "--audio", &hello],
            "only http and https",
        ),
        (
            vec![
                "--image",
                &face,
                "--audio",
                &hello,
                "--callback-url",
                "/relative",
            ],
            "callback URL",
        ),
        (
            // Any id is sent (a 422 costs nothing), but not one that cannot be an id.
            vec!["--image", &face, "--audio", &hello, "--model", "kling v9"],
            "whitespace",
        ),
        (
            vec![
                "--image",
                &face,
                "--audio",
                &hello,
                "--prompt",
                "a",
                "--prompt-file",
                "p.txt",
            ],
            "cannot be used with",
        ),
        (vec!["--image", &face], "--audio"),
        (
            vec!["--image", &face, "--audio", &hello, "--out", &nowhere],
            "does not exist",
        ),
        (
            vec!["--image", &face, "--audio", &hello, "--timeout", "soon"],
            "examples: 90s",
        ),
    ];
    for (args, expected) in cases {
        let output = sim.kling().arg("generate").args(&args).output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(expected),
            "{args:?}: expected {expected:?} in {}",
            stderr(&output)
        );
    }
    let stats = sim.sim.stats();
    assert_eq!(
        stats.requests.values().sum::<u64>(),
        0,
        "something was sent: {:?}",
        stats.requests
    );
}

#[test]
fn a_media_host_that_does_not_resolve_is_named_before_anything_is_paid() {
    let sim = sim(|_| {});
    let output = sim
        .kling()
        .args(["generate", "--image", "https://no-such-host.invalid/a.png"])
        .args(["--audio", &asset("hello.wav")])
        .output()
        .unwrap();
    let said = stderr(&output);
    assert_eq!(output.status.code(), Some(3), "{said}");
    assert!(
        said.contains(
            "image URL `https://no-such-host.invalid/a.png` (host `no-such-host.invalid`)"
        ),
        "{said}"
    );
    assert_eq!(sim.sim.stats().requests_to("createTask"), 0);
    assert_eq!(sim.sim.stats().requests_to("uploadStream"), 0);
}

#[test]
fn errors_are_one_sentence_on_stderr_and_a_document_with_json() {
    let output = kling()
        .args([
            "--json",
            "--sim",
            "generate",
            "--image",
            &data("face.gif"),
            "--audio",
            &asset("hello.wav"),
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let doc = json(&output);
    assert_eq!(doc["error"]["kind"], json!("invalid_input"));
    assert_eq!(doc["error"]["exitCode"], json!(2));
    assert!(
        doc["error"]["message"]
            .as_str()
            .unwrap()
            .contains("image/gif")
    );
    let text = stderr(&output);
    let line = text
        .lines()
        .find(|l| l.starts_with("kling: invalid"))
        .unwrap();
    assert!(
        line.contains("allowed: image/jpeg, image/png, image/webp"),
        "{line}"
    );
}

#[test]
fn no_key_is_a_usage_error_that_suggests_sim() {
    let output = kling().args(["credits"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("set APIKLEY_API_KEY"),
        "{}",
        stderr(&output)
    );
    assert!(stderr(&output).contains("--sim"));
}

#[test]
fn a_wrong_key_exits_3() {
    let sim = sim(|_| {});
    let output = kling()
        .args([
            "--base-url",
            sim.sim.base_url(),
            "--api-key",
            "wrong-key",
            "--json",
            "credits",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    assert_eq!(json(&output)["error"]["kind"], json!("unauthorized"));
    assert!(
        !stderr(&output).contains("wrong-key"),
        "the key was echoed: {}",
        stderr(&output)
    );
}

#[test]
fn an_unreachable_service_exits_3() {
    // A port nothing listens on: connection refused, retried, then given up.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = kling()
        .args([
            "--base-url",
            &format!("http://127.0.0.1:{port}"),
            "--api-key",
            "some-key",
            "--json",
            "credits",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let error = &json(&output)["error"];
    assert_eq!(error["kind"], json!("transport"), "{error}");
    assert_eq!(error["exitCode"], json!(3));
}

#[test]
fn the_key_can_come_from_a_file_and_loose_permissions_warn() {
    let sim = sim(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, format!("{}\n", sim.sim.api_key())).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let output = kling()
        .args(["--base-url", sim.sim.base_url(), "--api-key-file"])
        .arg(&key_file)
        .args(["--json", "credits"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("can be read by others (mode 644)"),
        "{}",
        stderr(&output)
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let output = kling()
            .args(["--base-url", sim.sim.base_url(), "--api-key-file"])
            .arg(&key_file)
            .args(["--json", "credits"])
            .output()
            .unwrap();
        assert!(!stderr(&output).contains("can be read by others"));
    }
}

#[test]
fn a_failed_task_exits_4_with_its_id() {
    let sim = sim(|c| c.lifecycle.fail_fraction = 1.0);
    let dir = tempfile::tempdir().unwrap();
    let output = sim
        .kling()
        .args([
            "--json",
            "generate",
            "--image",
            &asset("face.png"),
            "--audio",
            &asset("hello.wav"),
            "--out",
        ])
        .arg(dir.path().join("x.mp4"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    let doc = json(&output);
    assert_eq!(doc["error"]["kind"], json!("generation_failed"));
    assert_eq!(
        doc["error"]["taskId"],
        json!(sim.sim.stats().tasks[0].task_id)
    );
    assert!(!dir.path().join("x.mp4").exists());
}

#[test]
fn a_timeout_exits_5_and_says_how_to_resume() {
    let sim = sim(|c| c.lifecycle.generating_ms = [60_000, 60_000]);
    let output = sim
        .kling()
        .args([
            "--json",
            "generate",
            "--image",
            &asset("face.png"),
            "--audio",
            &asset("hello.wav"),
            "--timeout",
            "2s",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(5), "{}", stderr(&output));
    let id = sim.sim.stats().tasks[0].task_id.clone();
    assert!(
        stderr(&output).contains(&format!("resume with: kling wait {id}")),
        "{}",
        stderr(&output)
    );
    assert_eq!(json(&output)["error"]["taskId"], json!(id));
}

#[test]
fn wait_exits_5_at_its_timeout_then_0_or_4_when_the_task_ends() {
    // `kling wait` is the resume path exit 5 points to: it must itself end
    // with 5 while the task runs, and with the task's outcome once it ends.
    let sim = sim(|c| {
        c.lifecycle.generating_ms = [4_000, 4_000];
        c.lifecycle.fail_fraction = 0.5;
    });
    let submit = |prompt: &str| {
        let output = sim
            .kling()
            .args(["--json", "submit", "--image", &asset("face.png")])
            .args(["--audio", &asset("hello.wav"), "--prompt", prompt])
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
        json(&output)["taskId"].as_str().unwrap().to_owned()
    };
    let ids: Vec<String> = (0..4).map(|i| submit(&format!("job {i}"))).collect();
    let output = sim
        .kling()
        .args(["--json", "wait", &ids[0], "--timeout", "1s"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(5), "{}", stderr(&output));
    assert_eq!(json(&output)["error"]["taskId"], json!(ids[0]));
    assert!(stderr(&output).contains(&format!("kling wait {}", ids[0])));
    // Seeded at half failing: each ends with its own outcome's code.
    let mut codes = Vec::new();
    for id in &ids {
        let output = sim
            .kling()
            .args(["--json", "wait", id, "--timeout", "60s"])
            .output()
            .unwrap();
        let code = output.status.code();
        match code {
            Some(0) => assert_eq!(json(&output)["state"], json!("success")),
            Some(4) => assert_eq!(json(&output)["error"]["kind"], json!("generation_failed")),
            other => panic!("{other:?}: {}", stderr(&output)),
        }
        codes.push(code.unwrap());
    }
    assert!(
        codes.contains(&0) && codes.contains(&4),
        "expected both outcomes among {codes:?}"
    );
}

#[test]
fn an_unknown_submit_outcome_exits_6_and_is_not_retried() {
    let sim = sim(|c| c.faults.create_task.reset_after = 1.0);
    let output = sim
        .kling()
        .args([
            "--json",
            "submit",
            "--image",
            &asset("face.png"),
            "--audio",
            &asset("hello.wav"),
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(6), "{}", stderr(&output));
    assert_eq!(
        json(&output)["error"]["kind"],
        json!("submit_outcome_unknown")
    );
    assert!(
        stderr(&output).contains("the task may exist"),
        "{}",
        stderr(&output)
    );
    // Said once (no log line repeating it), with where to look next.
    assert_eq!(
        stderr(&output).matches("outcome unknown").count(),
        1,
        "{}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("`kling history`"),
        "{}",
        stderr(&output)
    );
    let stats = sim.sim.stats();
    assert_eq!(
        (stats.requests_to("createTask"), stats.tasks_created),
        (1, 1)
    );
}

#[test]
fn waiting_for_an_id_the_service_does_not_know_fails_at_once() {
    let sim = sim(|_| {});
    // A default --timeout of 30 minutes: only an answer ends it.
    let output = sim
        .kling()
        .args(["--json", "wait", "no-such-task"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(!text.contains(" exists"), "{text}");
    assert!(text.contains("not found"), "{text}");
    assert!(
        text.contains("the service knows no task no-such-task"),
        "{text}"
    );
    assert_eq!(json(&output)["error"]["kind"], json!("not_found"));
    // One look, not a grace of looks.
    assert_eq!(sim.sim.stats().requests_to("recordInfo"), 1);
}

#[test]
fn an_id_this_machine_created_moments_ago_gets_a_grace_to_appear() {
    // Tasks invisible for their first 1.5 s, as right after creation.
    let sim = sim(|c| {
        c.faults.null_record = 1.0;
        c.faults.null_record_ms = 1500;
    });
    let dir = tempfile::tempdir().unwrap();
    let submitted = sim
        .kling()
        .env("KLING_STATE_DIR", dir.path())
        .args(["--json", "submit", "--yes", "--image"])
        .arg(asset("face.png"))
        .arg("--audio")
        .arg(asset("hello.wav"))
        .output()
        .unwrap();
    assert!(submitted.status.success(), "{}", stderr(&submitted));
    let id = sim.sim.stats().tasks[0].task_id.clone();
    let waited = sim
        .kling()
        .env("KLING_STATE_DIR", dir.path())
        .args(["--json", "wait", &id])
        .output()
        .unwrap();
    assert!(waited.status.success(), "{}", stderr(&waited));
    // Another machine's history does not know it: no grace, at once.
    let elsewhere = tempfile::tempdir().unwrap();
    let sim2 = crate::support::sim(|c| {
        c.faults.null_record = 1.0;
        c.faults.null_record_ms = 60_000;
    });
    let submitted = sim2
        .kling()
        .env("KLING_STATE_DIR", dir.path())
        .args(["--json", "submit", "--yes", "--image"])
        .arg(asset("face.png"))
        .arg("--audio")
        .arg(asset("hello.wav"))
        .output()
        .unwrap();
    assert!(submitted.status.success(), "{}", stderr(&submitted));
    let id = sim2.sim.stats().tasks[0].task_id.clone();
    let other = sim2
        .kling()
        .env("KLING_STATE_DIR", elsewhere.path())
        .args(["--json", "wait", &id])
        .output()
        .unwrap();
    assert_eq!(other.status.code(), Some(3), "{}", stderr(&other));
}

#[test]
fn a_key_the_service_refuses_stops_before_any_upload() {
    let sim = sim(|_| {});
    let output = sim
        .kling()
        .env("APIKLEY_API_KEY", "not-the-key")
        .args(["--json", "submit", "--yes", "--image"])
        .arg(asset("face.png"))
        .arg("--audio")
        .arg(asset("hello.wav"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert_eq!(json(&output)["error"]["kind"], json!("unauthorized"));
    let stats = sim.sim.stats();
    assert_eq!(
        (
            stats.requests_to("uploadStream"),
            stats.requests_to("createTask")
        ),
        (0, 0)
    );
}

#[cfg(unix)]
#[test]
fn ctrl_c_during_a_wait_stops_polling_and_prints_the_resume_command() {
    let sim = sim(|c| c.lifecycle.generating_ms = [60_000, 60_000]);
    let child = crate::support::kling_std()
        .args([
            "--base-url",
            sim.sim.base_url(),
            "--upload-base-url",
            &sim.sim.upload_base_url(),
            "--json",
        ])
        .args([
            "generate",
            "--image",
            &asset("face.png"),
            "--audio",
            &asset("hello.wav"),
        ])
        .env("APIKLEY_API_KEY", sim.sim.api_key())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the task exists and is being polled.
    for _ in 0..300 {
        if sim.sim.stats().requests_to("recordInfo") > 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", stderr(&output));
    let id = sim.sim.stats().tasks[0].task_id.clone();
    assert!(
        stderr(&output).contains(&format!("resume with: kling wait {id}")),
        "{}",
        stderr(&output)
    );
    let polls = sim.sim.stats().requests_to("recordInfo");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    assert_eq!(
        sim.sim.stats().requests_to("recordInfo"),
        polls,
        "polling went on"
    );
}

#[test]
fn a_closed_pipe_is_not_an_error() {
    let sim = sim(|_| {});
    let mut child = crate::support::kling_std()
        .args(["--base-url", sim.sim.base_url(), "completions", "bash"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn bad_input_to_any_command_exits_2_and_sends_nothing() {
    let sim = sim(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.mp4");
    let out = out.to_str().unwrap();
    let missing = dir.path().join("missing.png");
    let missing = missing.to_str().unwrap();
    let cases: Vec<Vec<&str>> = vec![
        vec!["upload", missing],
        vec!["upload", dir.path().to_str().unwrap()],
        vec!["status", ""],
        vec!["wait", "", "--timeout", "5s"],
        vec!["download", "", "--out", out],
        vec!["batch", missing, "--out-dir", dir.path().to_str().unwrap()],
        vec!["--rate-limit", "lots", "credits"],
        vec!["--request-timeout", "soon", "credits"],
        vec!["--api-key-file", missing, "credits"],
        vec![
            "wait",
            "0123456789abcdef0123456789abcdef",
            "--timeout",
            "never",
        ],
    ];
    for args in cases {
        let output = sim.kling().arg("--json").args(&args).output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(!stderr(&output).trim().is_empty(), "{args:?} said nothing");
    }
    let stats = sim.sim.stats();
    assert_eq!(
        stats.requests.values().sum::<u64>(),
        0,
        "something was sent: {:?}",
        stats.requests
    );
}

#[test]
fn the_service_urls_can_come_from_the_environment_and_quiet_means_quiet() {
    let sim = sim(|c| c.credits = 77.0);
    let output = kling()
        .env("APIKLEY_BASE_URL", sim.sim.base_url())
        .env("APIKLEY_UPLOAD_BASE_URL", sim.sim.upload_base_url())
        .env("APIKLEY_API_KEY", sim.sim.api_key())
        .args(["--json", "credits"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(json(&output), json!({"credits": 77.0}));
    assert_eq!(sim.sim.stats().requests_to("credit"), 1);
    // -q: the result on stdout, nothing but errors on stderr.
    let output = sim
        .kling()
        .args(["-q", "--no-json", "upload", &asset("face.png")])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!String::from_utf8_lossy(&output.stdout).trim().is_empty());
    assert_eq!(stderr(&output), "");
}

#[test]
fn sim_refuses_a_config_it_cannot_honour() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("sim.json");
    std::fs::write(&config, r#"{"faults": {"recordInfo": {"truncate": 0.5}}}"#).unwrap();
    let output = kling()
        .args(["--json", "sim", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("faults.recordInfo.truncate"),
        "{}",
        stderr(&output)
    );
}
