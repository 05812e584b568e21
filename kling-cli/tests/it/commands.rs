//! Every command, in JSON and text form.

use serde_json::json;

use crate::support::{asset, data, json, kling, sim, stderr};

#[test]
fn generate_on_the_embedded_simulator_leaves_a_valid_mp4() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("avatar.mp4");
    let output = kling()
        .args([
            "--sim",
            "--json",
            "generate",
            "--image",
            &asset("face.png"),
            "--audio",
            &asset("hello.wav"),
        ])
        .args(["--prompt", "A friendly presenter", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let said = stderr(&output);
    assert!(said.contains("SIMULATED"), "{said}");
    // The try-it run says what comes next: a real key, a simulator that
    // outlives a command, the SDK guide.
    for next in [
        "kling login",
        "`kling sim` in another terminal",
        "kling-api-ext/README.md",
    ] {
        assert!(said.contains(next), "{next:?} missing from: {said}");
    }
    let doc = json(&output);
    let mut keys: Vec<&str> = doc
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "bytes",
            "costTime",
            "output",
            "recovered",
            "resultUrls",
            "sha256",
            "state",
            "taskId"
        ]
    );
    assert_eq!(doc["state"], json!("success"));
    assert_eq!(doc["output"], json!(out.display().to_string()));
    assert_eq!(doc["bytes"], json!(kling_sim::RESULT_VIDEO.len()));
    assert_eq!(std::fs::read(&out).unwrap(), kling_sim::RESULT_VIDEO);
    assert_eq!(doc["sha256"].as_str().unwrap().len(), 64);
}

#[test]
fn generate_against_a_simulator_uploads_submits_waits_and_downloads() {
    let sim = sim(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("a.mp4");
    let output = sim
        .kling()
        .args([
            "--no-json",
            "generate",
            "--image",
            &asset("face.png"),
            "--audio",
            &asset("hello.wav"),
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    // Text mode: the path on stdout, the story on stderr.
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        out.display().to_string()
    );
    let story = stderr(&output);
    assert!(story.contains("image/png, 480x600"), "{story}");
    assert!(story.contains("audio/wav, 2.9 s"), "{story}");
    assert!(story.contains("cost  about 48 credits"), "{story}");
    assert!(story.contains("resume with: kling wait"), "{story}");
    assert!(!story.contains("SIMULATED"), "not --sim: {story}");
    let stats = sim.sim.stats();
    assert_eq!(
        (stats.requests_to("uploadStream"), stats.tasks_created),
        (2, 1)
    );
}

#[test]
fn the_prompt_can_come_from_a_file() {
    let sim = sim(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let prompt = dir.path().join("prompt.txt");
    std::fs::write(&prompt, "From a file, with ünïcödé").unwrap();
    let output = sim
        .kling()
        .args([
            "--json",
            "submit",
            "--image",
            &asset("face.png"),
            "--audio",
            &asset("hello.wav"),
            "--prompt-file",
        ])
        .arg(&prompt)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let id = json(&output)["taskId"].as_str().unwrap().to_owned();
    let input = &sim.sim.stats().tasks_per_input;
    assert!(
        input
            .keys()
            .any(|k| k.contains("From a file, with ünïcödé")),
        "{input:?}"
    );
    assert!(!id.is_empty());
}

#[test]
fn submit_status_wait_and_download_one_step_at_a_time() {
    let sim = sim(|_| {});
    let dir = tempfile::tempdir().unwrap();
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
    assert!(output.status.success(), "{}", stderr(&output));
    let doc = json(&output);
    let id = doc["taskId"].as_str().unwrap().to_owned();
    assert_eq!(doc["estimatedCredits"], json!(48.0));

    let status = sim
        .kling()
        .args(["--json", "status", &id])
        .output()
        .unwrap();
    assert!(status.status.success());
    assert_eq!(json(&status)["taskId"], json!(id));

    let waited = sim.kling().args(["--json", "wait", &id]).output().unwrap();
    assert!(waited.status.success(), "{}", stderr(&waited));
    let doc = json(&waited);
    assert_eq!(doc["state"], json!("success"));
    assert!(doc["output"].is_null());

    let out = dir.path().join("d.mp4");
    let downloaded = sim
        .kling()
        .args(["--json", "download", &id, "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(downloaded.status.success(), "{}", stderr(&downloaded));
    assert_eq!(std::fs::read(&out).unwrap(), kling_sim::RESULT_VIDEO);

    let text = sim
        .kling()
        .args(["--no-json", "status", &id])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&text.stdout).starts_with(&format!("{id} success")));
    // One task for all of that.
    assert_eq!(sim.sim.stats().tasks_created, 1);
}

#[test]
fn wait_can_download_too() {
    let sim = sim(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let id = {
        let output = sim
            .kling()
            .args([
                "--no-json",
                "submit",
                "--image",
                &asset("face.png"),
                "--audio",
                &asset("hello.wav"),
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    let out = dir.path().join("w.mp4");
    let output = sim
        .kling()
        .args(["--json", "wait", &id, "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(json(&output)["bytes"], json!(kling_sim::RESULT_VIDEO.len()));
    assert!(out.exists());
}

#[test]
fn upload_prints_the_url_and_credits_the_balance() {
    let sim = sim(|c| c.credits = 1234.5);
    let output = sim
        .kling()
        .args(["--no-json", "upload", &data("hello.mp3")])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let url = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    assert!(
        url.starts_with(&format!("{}/file-upload/files/", sim.sim.base_url())),
        "{url}"
    );
    assert!(url.ends_with(".mp3"));

    let output = sim.kling().args(["--json", "credits"]).output().unwrap();
    assert_eq!(json(&output), json!({"credits": 1234.5}));
    let output = sim.kling().args(["--no-json", "credits"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "1234.5");
}

#[test]
fn json_is_the_default_when_stdout_is_not_a_terminal() {
    let sim = sim(|_| {});
    let output = sim.kling().arg("credits").output().unwrap();
    assert_eq!(json(&output)["credits"], json!(10000.0));
}

#[test]
fn completions_and_version() {
    let output = kling().args(["completions", "bash"]).output().unwrap();
    assert!(output.status.success());
    let script = String::from_utf8_lossy(&output.stdout);
    assert!(
        script.contains("_kling()") && script.contains("generate"),
        "{script}"
    );
    let output = kling().args(["--json", "version"]).output().unwrap();
    let doc = json(&output);
    assert_eq!(doc["kling"], json!(env!("CARGO_PKG_VERSION")));
    assert_eq!(doc["models"][0], json!("kling/ai-avatar-v1-pro"));
}

#[test]
fn help_documents_the_commands_and_exit_codes() {
    let output = kling().arg("--help").output().unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    expectorate::assert_contents("tests/data/help.txt", &help);
    for command in [
        "generate",
        "submit",
        "status",
        "wait",
        "download",
        "upload",
        "credits",
        "batch",
        "sim",
        "mcp",
        "completions",
    ] {
        assert!(help.contains(&format!("  {command}")), "{command} missing");
    }
    let output = kling().args(["batch", "--help"]).output().unwrap();
    expectorate::assert_contents(
        "tests/data/help-batch.txt",
        &String::from_utf8(output.stdout).unwrap(),
    );
}

#[test]
fn the_sim_command_prints_where_it_listens() {
    use std::io::{BufRead, BufReader};
    let mut child = crate::support::kling_std()
        .args(["--no-json", "sim", "--port", "0"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    for _ in 0..4 {
        printed.push(lines.next().unwrap().unwrap());
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(printed[0].starts_with("SIMULATED"), "{printed:?}");
    assert!(
        printed[1].starts_with("export APIKLEY_BASE_URL=http://127.0.0.1:"),
        "{printed:?}"
    );
    assert_eq!(printed[3], "export APIKLEY_API_KEY=sim-key");
}

#[test]
fn generation_speed_is_kept_between_runs_per_service_but_not_for_sim() {
    // Generating takes 3 s here so that a poll sees the task generating and
    // the run learns how long it took.
    let sim = sim(|c| c.lifecycle.generating_ms = [3000, 3000]);
    let state = tempfile::tempdir().unwrap();
    let file = state.path().join("generation-speed.json");
    let base = format!("{}/", sim.sim.base_url());
    std::fs::write(
        &file,
        json!({"services": {
            base.clone(): {"samples": [40.0, 41.0, 42.0], "updated_ms": 1},
            "https://elsewhere.example/": {"samples": [9.0], "updated_ms": 1}
        }})
        .to_string(),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let output = sim
        .kling()
        .env("KLING_STATE_DIR", state.path())
        .args(["-vv", "--json", "generate", "--image", &asset("face.png")])
        .args(["--audio", &asset("hello.wav"), "--out"])
        .arg(dir.path().join("a.mp4"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("generation speed from earlier runs samples=3"),
        "{}",
        stderr(&output)
    );
    let stored: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    // This run's own sample was added after the three earlier ones; the other
    // service is untouched.
    let samples = stored["services"][&base]["samples"].as_array().unwrap();
    assert_eq!(samples.len(), 4, "{stored}");
    assert_eq!(samples[..3], [json!(40.0), json!(41.0), json!(42.0)]);
    assert!(samples[3].as_f64().unwrap() > 0.0);
    assert_eq!(
        stored["services"]["https://elsewhere.example/"]["samples"],
        json!([9.0])
    );

    // A damaged file is ignored, and --sim keeps nothing.
    std::fs::write(&file, "{not json").unwrap();
    let output = kling()
        .env("KLING_STATE_DIR", state.path())
        .args(["--sim", "--json", "generate", "--image", &asset("face.png")])
        .args(["--audio", &asset("hello.wav"), "--out"])
        .arg(dir.path().join("b.mp4"))
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "{not json");
}

fn submit_with(sim: &crate::support::Sim, extra: &[&str]) -> std::process::Output {
    sim.kling()
        .args([
            "submit",
            "--image",
            &asset("face.png"),
            "--audio",
            &asset("hello.wav"),
            "-y",
        ])
        .args(extra)
        .output()
        .unwrap()
}

/// `--model` takes the four known ids and any other; the simulator serves
/// the four by default and whatever its config adds; an id it does not
/// serve is the service's 422, explained.
#[test]
fn any_model_id_is_sent_and_an_unserved_one_is_explained() {
    let sim = sim(|config| {
        config.models.insert("acme/avatar-9".into(), 4.0);
    });
    let output = submit_with(&sim, &["--model", "kling/v1-avatar-standard"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        !stderr(&output).contains("warning: model"),
        "{}",
        stderr(&output)
    );
    let output = submit_with(&sim, &["--model", "acme/avatar-9"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("warning: model acme/avatar-9 is not one this SDK knows"),
        "{}",
        stderr(&output)
    );
    let output = submit_with(&sim, &["--model", "acme/avatar-10"]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let story = stderr(&output);
    assert!(story.contains("code 422"), "{story}");
    assert!(
        story.contains("no task was created and nothing was charged"),
        "{story}"
    );
    assert!(story.contains("kling/v1-avatar-standard"), "{story}");
    assert_eq!(json(&output)["error"]["kind"], json!("rejected"));
    // A blank or spaced id never leaves the machine.
    let output = submit_with(&sim, &["--model", "acme avatar"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("whitespace"),
        "{}",
        stderr(&output)
    );
    let stats = sim.sim.stats();
    assert_eq!(stats.tasks_created, 2, "{stats:?}");
}

/// `--set` takes only fields the API document defines, typed by its schema;
/// the document of this build has none besides the three with flags.
#[test]
fn set_refuses_fields_the_document_does_not_define() {
    let sim = sim(|_| {});
    let output = submit_with(&sim, &["--set", "seed=42"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("the API document has no input field \"seed\""),
        "{}",
        stderr(&output)
    );
    for (arg, flag) in [
        ("prompt=hi", "--prompt"),
        ("image_url=https://x.test/a.png", "--image"),
    ] {
        let output = submit_with(&sim, &["--set", arg]);
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        assert!(stderr(&output).contains(flag), "{}", stderr(&output));
    }
    let output = submit_with(&sim, &["--set", "seed"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        sim.sim.stats().requests.values().all(|n| *n == 0),
        "{:?}",
        sim.sim.stats().requests
    );
}
