//! Everything local is checked before anything is sent, and the simulator
//! takes media of the sizes the service takes.

use std::io::Write as _;

use crate::support::{asset, json, kling, sim, stderr};

/// A PCM WAV of `bytes` bytes at 44.1 kHz, 16-bit stereo (a tone, not silence).
fn wav(bytes: usize) -> Vec<u8> {
    let data = bytes - 44;
    let mut out = Vec::with_capacity(bytes);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&((36 + data) as u32).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&44_100u32.to_le_bytes());
    out.extend_from_slice(&(44_100u32 * 4).to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(data as u32).to_le_bytes());
    out.extend((0..data).map(|i| ((i / 4) % 200) as u8));
    out
}

/// A baseline JPEG header (1024x1024) padded to `bytes` bytes.
fn jpeg(bytes: usize) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8];
    out.extend_from_slice(&[
        0xFF, 0xE0, 0, 16, b'J', b'F', b'I', b'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0,
    ]);
    out.extend_from_slice(&[
        0xFF, 0xC0, 0, 17, 8, 0x04, 0x00, 0x04, 0x00, 3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1,
    ]);
    while out.len() < bytes - 2 {
        out.push((out.len() % 200) as u8 + 1);
    }
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

#[test]
fn sim_generate_takes_a_9_5_mb_wav_and_a_9_mb_jpeg() {
    let dir = tempfile::tempdir().unwrap();
    let audio = dir.path().join("voice.wav");
    let image = dir.path().join("face.jpg");
    std::fs::write(&audio, wav(9_500_000)).unwrap();
    std::fs::write(&image, jpeg(9_000_000)).unwrap();
    let target = dir.path().join("avatar.mp4");
    let output = kling()
        .args(["--sim", "--json", "generate", "--image"])
        .arg(&image)
        .arg("--audio")
        .arg(&audio)
        .arg("--out")
        .arg(&target)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let video = std::fs::read(&target).unwrap();
    assert_eq!(&video[4..8], b"ftyp", "a valid MP4");
    assert_eq!(json(&output)["bytes"], serde_json::json!(video.len()));
}

/// `generate` with the example inputs and `extra` arguments, against `sim`.
fn generate(sim: &crate::support::Sim, extra: &[&str]) -> std::process::Output {
    sim.kling()
        .args([
            "--json",
            "generate",
            "--image",
            &asset("face.png"),
            "--audio",
            &asset("hello.wav"),
        ])
        .args(extra)
        .output()
        .unwrap()
}

#[test]
fn an_output_that_cannot_be_written_is_refused_before_anything_is_sent() {
    let sim = sim(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no/such/dir/a.mp4");
    let existing = dir.path().join("taken.mp4");
    std::fs::write(&existing, b"an earlier video").unwrap();
    for (out, says) in [
        (missing.display().to_string(), "does not exist"),
        // Not writable even by root.
        (
            "/proc/avatar.mp4".to_owned(),
            "a file cannot be written in /proc",
        ),
        (existing.display().to_string(), "pass --force to replace it"),
    ] {
        let output = generate(&sim, &["--out", &out]);
        assert_eq!(output.status.code(), Some(2), "{out}: {}", stderr(&output));
        assert!(stderr(&output).contains(says), "{out}: {}", stderr(&output));
        let stats = sim.sim.stats();
        assert_eq!(stats.requests_to("uploadStream"), 0, "{out}: uploaded");
        assert_eq!(stats.requests_to("createTask"), 0, "{out}: created");
    }
    assert_eq!(std::fs::read(&existing).unwrap(), b"an earlier video");
    // With --force the file is replaced (whole).
    let output = generate(&sim, &["--out", &existing.display().to_string(), "--force"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(std::fs::read(&existing).unwrap(), kling_sim::RESULT_VIDEO);
    // wait and download check the same way.
    let id = sim.sim.stats().tasks[0].task_id.clone();
    for command in ["wait", "download"] {
        let output = sim
            .kling()
            .args([command, &id, "--out", &existing.display().to_string()])
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(2),
            "{command}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn a_zero_timeout_is_refused_before_anything_is_sent() {
    let sim = sim(|_| {});
    let output = generate(&sim, &["--timeout", "0s"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("more than zero"),
        "{}",
        stderr(&output)
    );
    assert_eq!(sim.sim.stats().requests.values().sum::<u64>(), 0);
}

#[test]
fn the_prompt_can_come_from_stdin_and_its_trailing_newline_does_not_count() {
    let sim = sim(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("a.mp4");
    // Exactly the limit, plus the newline an editor or `echo` adds.
    let prompt = format!("{}\n", "a".repeat(5000));
    let mut child = crate::support::kling_std()
        .args([
            "--base-url",
            sim.sim.base_url(),
            "--upload-base-url",
            &sim.sim.upload_base_url(),
            "--json",
            "generate",
            "--image",
            &asset("face.png"),
            "--audio",
            &asset("hello.wav"),
            "--prompt-file",
            "-",
            "--out",
        ])
        .arg(&target)
        .env("APIKLEY_API_KEY", sim.sim.api_key())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(prompt.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let inputs: Vec<String> = sim.sim.stats().tasks_per_input.keys().cloned().collect();
    assert_eq!(inputs.len(), 1);
    assert!(inputs[0].contains(&"a".repeat(5000)), "{}", inputs[0]);
    assert!(
        !inputs[0].contains("aaaa\\n"),
        "the newline was sent: {}",
        inputs[0]
    );
}

#[test]
fn kling_sim_says_plainly_that_its_port_is_taken_and_logs_requests_at_v() {
    use std::io::{BufRead as _, BufReader, Read as _};
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let output = kling().args(["sim", "--port", &port]).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(&format!("port {port} is already in use")),
        "{}",
        stderr(&output)
    );
    drop(taken);

    let mut child = crate::support::kling_std()
        .args(["-v", "--no-json", "sim", "--port", "0"])
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines.next().unwrap().unwrap();
        if let Some(url) = line.strip_prefix("export APIKLEY_BASE_URL=") {
            break url.to_owned();
        }
    };
    {
        use std::io::Write as _;
        let mut socket = std::net::TcpStream::connect(base.trim_start_matches("http://")).unwrap();
        socket
            .write_all(b"GET /api/v1/chat/credit HTTP/1.1\r\nhost: x\r\nuser-agent: t\r\nconnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        socket.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let mut logs = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    assert!(logs.contains("path=\"/api/v1/chat/credit\""), "{logs}");
    assert!(logs.contains("status=200"), "{logs}");
}

#[test]
fn words_a_user_understands() {
    let sim = sim(|c| c.lifecycle.generating_ms = [60_000, 60_000]);
    // An id the service does not know.
    let output = sim
        .kling()
        .args(["status", "0123456789abcdef0123456789abcdef"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("the service knows no task 0123456789abcdef0123456789abcdef"),
        "{}",
        stderr(&output)
    );
    // Downloading a task that is still running.
    let submitted = sim
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
    assert!(submitted.status.success(), "{}", stderr(&submitted));
    let id = json(&submitted)["taskId"].as_str().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("v.mp4");
    let output = sim
        .kling()
        .args(["download", &id, "--out"])
        .arg(&target)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(text.contains("has not finished yet (state "), "{text}");
    assert!(
        text.contains(&format!(
            "resume with: kling wait {id} --out {}",
            target.display()
        )),
        "{text}"
    );
    // --no-preflight never claims a check.
    let output = sim
        .kling()
        .args([
            "--no-json",
            "submit",
            "--no-preflight",
            "--image",
            "https://cdn.example.com/face.png",
            "--audio",
            "https://cdn.example.com/voice.mp3",
        ])
        .output()
        .unwrap();
    let text = stderr(&output);
    assert!(text.contains("(not checked: --no-preflight)"), "{text}");
    assert!(!text.contains("(checked"), "{text}");
}

#[test]
fn sim_mode_says_its_tasks_live_only_in_this_process() {
    let output = kling()
        .args([
            "--sim",
            "--no-json",
            "submit",
            "--image",
            &asset("face.png"),
            "--audio",
            &asset("hello.wav"),
        ])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(text.contains("lives only in this process"), "{text}");
    assert!(!text.contains("follow with: kling wait"), "{text}");
    let first = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    // Ids differ from one --sim run to the next, as the service's do.
    let again = kling()
        .args([
            "--sim",
            "--no-json",
            "submit",
            "--image",
            &asset("face.png"),
            "--audio",
            &asset("hello.wav"),
        ])
        .output()
        .unwrap();
    let second = String::from_utf8_lossy(&again.stdout).trim().to_owned();
    assert_eq!(first.len(), 32, "{first}");
    assert_ne!(first, second);
}

#[test]
fn login_stores_a_private_key_that_later_commands_use() {
    let sim = sim(|_| {});
    let config = tempfile::tempdir().unwrap();
    let run = |args: &[&str], stdin: Option<&str>| {
        let mut cmd = kling();
        cmd.env("KLING_CONFIG_DIR", config.path())
            .args(["--base-url", sim.sim.base_url()])
            .args(args);
        if let Some(input) = stdin {
            cmd.write_stdin(input.to_owned());
        }
        cmd.output().unwrap()
    };
    // Before: no key anywhere.
    assert_eq!(run(&["credits"], None).status.code(), Some(2));
    let login = run(
        &["--no-json", "login"],
        Some(&format!("{}\n", sim.sim.api_key())),
    );
    assert!(login.status.success(), "{}", stderr(&login));
    let file = config.path().join("api-key");
    assert!(
        stderr(&login).contains(&file.display().to_string()),
        "says where: {}",
        stderr(&login)
    );
    assert!(!stderr(&login).contains(sim.sim.api_key()));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let credits = run(&["--json", "credits"], None);
    assert!(credits.status.success(), "{}", stderr(&credits));
    // An empty key is refused and stores nothing new.
    let empty = run(&["login"], Some("\n"));
    assert_eq!(empty.status.code(), Some(2));
    assert_eq!(
        std::fs::read_to_string(&file).unwrap().trim(),
        sim.sim.api_key()
    );
}

#[test]
fn generate_no_wait_submits_and_prints_the_command_that_finishes_it() {
    let sim = sim(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("later.mp4");
    let output = sim
        .kling()
        .args([
            "--json",
            "generate",
            "--no-wait",
            "--image",
            &asset("face.png"),
            "--audio",
            &asset("hello.wav"),
            "--out",
        ])
        .arg(&target)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let doc = json(&output);
    let id = doc["taskId"].as_str().unwrap();
    assert_eq!(
        doc["resume"],
        serde_json::json!(format!("kling wait {id} --out {}", target.display()))
    );
    assert_eq!(
        sim.sim.stats().requests_to("recordInfo"),
        0,
        "it did not wait"
    );
    let finished = sim
        .kling()
        .args(["--json", "wait", id, "--out"])
        .arg(&target)
        .output()
        .unwrap();
    assert!(finished.status.success(), "{}", stderr(&finished));
    assert_eq!(std::fs::read(&target).unwrap(), kling_sim::RESULT_VIDEO);
}

#[cfg(target_os = "linux")]
#[test]
fn open_hands_the_saved_video_to_the_systems_opener() {
    use std::os::unix::fs::PermissionsExt as _;
    let sim = sim(|_| {});
    let bin = tempfile::tempdir().unwrap();
    let seen = bin.path().join("opened.txt");
    let opener = bin.path().join("xdg-open");
    std::fs::write(
        &opener,
        // Written aside then renamed: the file appears whole, never empty
        // between the shell's `>` and printf's write (seen under load).
        format!(
            "#!/bin/sh\nprintf '%s' \"$1\" > '{0}.part' && mv '{0}.part' '{0}'\n",
            seen.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&opener, std::fs::Permissions::from_mode(0o755)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("a.mp4");
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = sim
        .kling()
        .env("PATH", path)
        .args([
            "--json",
            "generate",
            "--open",
            "--image",
            &asset("face.png"),
            "--audio",
            &asset("hello.wav"),
            "--out",
        ])
        .arg(&target)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    // The opener runs detached: give it a moment.
    for _ in 0..200 {
        if seen.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(
        std::fs::read_to_string(&seen).unwrap(),
        target.display().to_string()
    );
}
