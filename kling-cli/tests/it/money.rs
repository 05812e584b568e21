//! Money safety at the edges of `kling batch` and `generate`: two processes on
//! one directory, Ctrl-C with createTask requests on the wire, a maintenance
//! window, a damaged journal, an edited manifest, expired result links, and
//! every error after a submit naming its task.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::batch::{manifest, results};
use crate::support::{Sim, asset, json, sim, stderr};

/// `kling ARGS batch MANIFEST --out-dir OUT` as a child process (so a test can
/// signal it or run two at once).
fn spawn_batch(sim: &Sim, manifest: &Path, out: &Path, extra: &[&str]) -> Child {
    crate::support::kling_std()
        .args([
            "--base-url",
            sim.sim.base_url(),
            "--upload-base-url",
            &sim.sim.upload_base_url(),
            "--json",
            "batch",
        ])
        .args(extra)
        .arg(manifest)
        .arg("--out-dir")
        .arg(out)
        .env("APIKLEY_API_KEY", sim.sim.api_key())
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn batch(sim: &Sim, manifest: &Path, out: &Path, extra: &[&str]) -> std::process::Output {
    sim.kling()
        .args(["--json", "batch"])
        .args(extra)
        .arg(manifest)
        .arg("--out-dir")
        .arg(out)
        .output()
        .unwrap()
}

/// Every job's video is there and each input was paid for once.
fn assert_all_done_once(sim: &Sim, out: &Path, jobs: usize) {
    let stats = sim.sim.stats();
    assert_eq!(stats.tasks_created, jobs as u64, "paid tasks");
    assert!(
        stats.duplicate_inputs().is_empty(),
        "{:?}",
        stats.duplicate_inputs()
    );
    let results = results(out);
    assert_eq!(results.len(), jobs, "{results:?}");
    for r in &results {
        assert_eq!(r["status"], json!("done"), "{r}");
        let id = r["id"].as_str().unwrap();
        assert_eq!(
            std::fs::read(out.join(format!("{id}.mp4"))).unwrap(),
            kling_sim::RESULT_VIDEO
        );
    }
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..1500 {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out waiting for {what}");
}

#[cfg(unix)]
fn interrupt(child: &Child) {
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
}

#[test]
fn two_batches_on_one_directory_create_each_task_once() {
    let sim = sim(|c| c.lifecycle.generating_ms = [300, 600]);
    let dir = tempfile::tempdir().unwrap();
    let jobs = 12;
    let manifest = manifest(dir.path(), jobs, &[]);
    let out = dir.path().join("out");
    // Started together, as a cron overlap or a second terminal would.
    let first = spawn_batch(&sim, &manifest, &out, &[]);
    let second = spawn_batch(&sim, &manifest, &out, &[]);
    let outputs = [
        first.wait_with_output().unwrap(),
        second.wait_with_output().unwrap(),
    ];
    let mut codes: Vec<Option<i32>> = outputs.iter().map(|o| o.status.code()).collect();
    codes.sort();
    assert_eq!(codes, [Some(0), Some(2)], "one ran, one was refused");
    let refused = outputs.iter().find(|o| o.status.code() == Some(2)).unwrap();
    let text = stderr(refused);
    assert!(text.contains("another kling batch (pid "), "{text}");
    assert!(text.contains(&out.display().to_string()), "{text}");
    assert!(text.contains("nothing was sent"), "{text}");
    assert_all_done_once(&sim, &out, jobs);
}

#[cfg(unix)]
#[test]
fn ctrl_c_with_creates_in_flight_journals_them_and_a_rerun_finishes_every_job() {
    // Every createTask is answered 1.5 s after the task is made: a Ctrl-C
    // lands while all of them are on the wire.
    let sim = sim(|c| {
        c.faults.create_task.slow_after = 1.0;
        c.faults.slow_ms = 1500;
        c.lifecycle.generating_ms = [300, 600];
    });
    let dir = tempfile::tempdir().unwrap();
    let jobs = 10;
    let manifest = manifest(dir.path(), jobs, &[]);
    let out = dir.path().join("out");
    let child = spawn_batch(&sim, &manifest, &out, &["--concurrency", "10"]);
    wait_for("every createTask on the wire", || {
        sim.sim.stats().requests_to("createTask") == jobs as u64
    });
    interrupt(&child);
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("waiting for the answers to"),
        "{}",
        stderr(&output)
    );
    let journal = std::fs::read_to_string(out.join("journal.jsonl")).unwrap();
    assert_eq!(
        journal.matches("\"event\":\"submitted\"").count(),
        jobs,
        "every task id that was paid for is journaled:\n{journal}"
    );
    let summary = json(&output);
    assert_eq!(summary["interrupted"], json!(true));
    assert!(
        summary["resume"]
            .as_str()
            .unwrap()
            .starts_with("kling batch ")
    );

    // A plain rerun: every video, no task created twice, none orphaned.
    let again = batch(&sim, &manifest, &out, &[]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_all_done_once(&sim, &out, jobs);
    let stats = sim.sim.stats();
    assert!(
        stats.tasks.iter().all(|t| t.polls > 0),
        "a paid task nobody looked at: {:?}",
        stats.tasks
    );
}

#[test]
fn a_run_during_maintenance_then_a_plain_rerun_submits_and_finishes_every_job() {
    let sim = sim(|c| c.faults.create_task.envelope455 = 1.0);
    let dir = tempfile::tempdir().unwrap();
    let jobs = 4;
    let manifest = manifest(dir.path(), jobs, &[]);
    let out = dir.path().join("out");
    let during = batch(&sim, &manifest, &out, &[]);
    assert_eq!(during.status.code(), Some(3), "{}", stderr(&during));
    let summary = json(&during);
    assert_eq!(summary["notTaken"], json!(jobs), "{summary}");
    assert_eq!(summary["ambiguous"], json!(0), "{summary}");
    assert_eq!(sim.sim.stats().tasks_created, 0);
    assert!(
        stderr(&during).contains("no task was created; it is submitted on the next run"),
        "{}",
        stderr(&during)
    );
    // The window ends; the same command, no flags.
    sim.sim.set_faults(Default::default()).unwrap();
    let after = batch(&sim, &manifest, &out, &[]);
    assert!(after.status.success(), "{}", stderr(&after));
    assert_eq!(json(&after)["done"], json!(jobs));
    assert_all_done_once(&sim, &out, jobs);
}

#[test]
fn a_torn_or_non_utf8_journal_tail_resumes() {
    let sim = sim(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let manifest_path = manifest(dir.path(), 3, &[]);
    let out = dir.path().join("out");
    assert!(batch(&sim, &manifest_path, &out, &[]).status.success());
    // A crash (or a full disk) mid-write: half an event, not UTF-8, no newline.
    {
        use std::io::Write as _;
        let mut journal = std::fs::OpenOptions::new()
            .append(true)
            .open(out.join("journal.jsonl"))
            .unwrap();
        journal
            .write_all(b"{\"event\":\"intent\",\"id\":\"job-\xff\xfe")
            .unwrap();
    }
    // And one more job to do.
    let mut text = std::fs::read_to_string(&manifest_path).unwrap();
    text.push_str(&format!(
        "\n{}",
        json!({"id": "job-3", "image": "face.png", "audio": "hello.wav"})
    ));
    std::fs::write(&manifest_path, text).unwrap();
    let again = batch(&sim, &manifest_path, &out, &[]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("damaged line(s)"),
        "{}",
        stderr(&again)
    );
    assert_all_done_once(&sim, &out, 4);
    // What was written after the tear is whole: a third run has nothing to do.
    let third = batch(&sim, &manifest_path, &out, &[]);
    assert!(third.status.success(), "{}", stderr(&third));
    assert_eq!(sim.sim.stats().tasks_created, 4);
}

#[cfg(unix)]
#[test]
fn an_intent_written_after_a_torn_tail_is_not_lost() {
    let sim = sim(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let manifest_path = manifest(dir.path(), 1, &[]);
    let out = dir.path().join("out");
    assert!(batch(&sim, &manifest_path, &out, &[]).status.success());
    {
        use std::io::Write as _;
        let mut journal = std::fs::OpenOptions::new()
            .append(true)
            .open(out.join("journal.jsonl"))
            .unwrap();
        journal
            .write_all(b"{\"event\":\"submitted\",\"id\":\"job-0\",\"ta")
            .unwrap();
    }
    let mut text = std::fs::read_to_string(&manifest_path).unwrap();
    text.push_str(&format!(
        "\n{}",
        json!({"id": "job-1", "image": "face.png", "audio": "hello.wav"})
    ));
    std::fs::write(&manifest_path, text).unwrap();
    // job-1's intent is the first event after the tear; the process is killed
    // while its createTask is on the wire (the task is made, the answer lost).
    let mut faults = kling_sim::SimConfig::default().faults;
    faults.create_task.slow_after = 1.0;
    faults.slow_ms = 5000;
    sim.sim.set_faults(faults).unwrap();
    let mut child = spawn_batch(&sim, &manifest_path, &out, &[]);
    wait_for("job-1's createTask", || {
        sim.sim.stats().requests_to("createTask") == 2
    });
    child.kill().unwrap();
    child.wait().unwrap();
    sim.sim.set_faults(Default::default()).unwrap();
    // Had the intent been glued to the torn line and lost, job-1 would look
    // new and be paid for again.
    let again = batch(&sim, &manifest_path, &out, &[]);
    assert_eq!(again.status.code(), Some(6), "{}", stderr(&again));
    assert_eq!(json(&again)["leftAlone"], json!(["job-1"]));
    let stats = sim.sim.stats();
    assert_eq!(stats.tasks_created, 2);
    assert!(stats.duplicate_inputs().is_empty());
}

#[test]
fn an_edited_manifest_line_is_reported_not_reused() {
    let sim = sim(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let manifest_path = manifest(dir.path(), 2, &[]);
    let out = dir.path().join("out");
    assert!(batch(&sim, &manifest_path, &out, &[]).status.success());
    let text = std::fs::read_to_string(&manifest_path)
        .unwrap()
        .replace("take 1", "a better take");
    std::fs::write(&manifest_path, text).unwrap();
    let edited = batch(&sim, &manifest_path, &out, &[]);
    assert_eq!(edited.status.code(), Some(2), "{}", stderr(&edited));
    assert_eq!(json(&edited)["changed"], json!(1));
    let text = stderr(&edited);
    assert!(
        text.contains("job job-1 (line 2): the line changed"),
        "{text}"
    );
    assert!(text.contains("--rerun-changed"), "{text}");
    assert_eq!(sim.sim.stats().tasks_created, 2, "nothing submitted");
    // Asked to: the new version is a new task.
    let rerun = batch(&sim, &manifest_path, &out, &["--rerun-changed"]);
    assert!(rerun.status.success(), "{}", stderr(&rerun));
    assert_eq!(sim.sim.stats().tasks_created, 3);
    let job1: Vec<Value> = results(&out)
        .into_iter()
        .filter(|r| r["id"] == json!("job-1"))
        .collect();
    assert_eq!(job1.len(), 1);
    assert_eq!(job1[0]["taskId"], json!(sim.sim.stats().tasks[2].task_id));
    // And that version is now the recorded one: a plain rerun is quiet.
    assert!(batch(&sim, &manifest_path, &out, &[]).status.success());
}

#[test]
fn expired_result_links_are_refreshed_by_batch_and_wait() {
    let sim = sim(|c| c.lifecycle.result_url_ttl_ms = Some(0));
    let dir = tempfile::tempdir().unwrap();
    let manifest_path = manifest(dir.path(), 2, &[]);
    let out = dir.path().join("out");
    let output = batch(&sim, &manifest_path, &out, &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_all_done_once(&sim, &out, 2);
    assert_eq!(sim.sim.stats().requests_to("downloadUrl"), 2);
    // `kling wait ID --out` (the resume path) too.
    let id = sim.sim.stats().tasks[0].task_id.clone();
    let target = dir.path().join("again.mp4");
    let waited = sim
        .kling()
        .args(["--json", "wait", &id, "--out"])
        .arg(&target)
        .output()
        .unwrap();
    assert!(waited.status.success(), "{}", stderr(&waited));
    assert_eq!(std::fs::read(&target).unwrap(), kling_sim::RESULT_VIDEO);
}

#[test]
fn a_download_failure_after_generate_names_the_task_and_the_resume_command() {
    let sim = sim(|c| c.faults.download.html502 = 1.0);
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("out.mp4");
    let output = sim
        .kling()
        .args([
            "-q",
            "--json",
            "generate",
            "--image",
            &asset("face.png"),
            "--audio",
            &asset("hello.wav"),
            "--out",
        ])
        .arg(&target)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let id = sim.sim.stats().tasks[0].task_id.clone();
    let doc = json(&output);
    assert_eq!(doc["error"]["taskId"], json!(id), "{doc}");
    let resume = format!("kling wait {id} --out {}", target.display());
    assert_eq!(doc["error"]["resume"], json!(resume), "{doc}");
    assert!(
        stderr(&output).contains(&format!("task {id} exists; resume with: {resume}")),
        "{}",
        stderr(&output)
    );
    // The printed command works once the files serve again.
    sim.sim.set_faults(Default::default()).unwrap();
    let resumed = sim
        .kling()
        .args(["--json", "wait", &id, "--out"])
        .arg(&target)
        .output()
        .unwrap();
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert_eq!(std::fs::read(&target).unwrap(), kling_sim::RESULT_VIDEO);
}

#[test]
fn an_api_key_on_the_command_line_is_warned_about() {
    let sim = sim(|_| {});
    let typed = sim
        .kling()
        .env_remove("APIKLEY_API_KEY")
        .args(["--api-key", sim.sim.api_key(), "credits"])
        .output()
        .unwrap();
    assert!(typed.status.success(), "{}", stderr(&typed));
    assert!(
        stderr(&typed).contains("--api-key on the command line can be seen by other users"),
        "{}",
        stderr(&typed)
    );
    assert!(!stderr(&typed).contains(sim.sim.api_key()));
    let from_env = sim.kling().args(["credits"]).output().unwrap();
    assert!(from_env.status.success());
    assert!(!stderr(&from_env).contains("--api-key on the command line"));
}

#[cfg(unix)]
#[test]
fn commands_with_nothing_paid_at_stake_stop_at_the_first_ctrl_c() {
    // A service that takes the connection and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let child = crate::support::kling_std()
        .args([
            "--base-url",
            &url,
            "--upload-base-url",
            &url,
            "status",
            "task-1",
        ])
        .env("APIKLEY_API_KEY", "k")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let started = std::time::Instant::now();
    interrupt(&child);
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", stderr(&output));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "not held for the request timeout"
    );
    drop(listener);
}

#[cfg(unix)]
#[test]
fn the_resume_command_printed_at_ctrl_c_writes_the_file_when_run() {
    let sim = sim(|c| c.lifecycle.generating_ms = [2500, 2500]);
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("my video.mp4");
    let child = crate::support::kling_std()
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
            "--out",
        ])
        .arg(&target)
        .env("APIKLEY_API_KEY", sim.sim.api_key())
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the wait to start", || {
        sim.sim.stats().requests_to("recordInfo") > 0
    });
    interrupt(&child);
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", stderr(&output));
    let resume = json(&output)["error"]["resume"]
        .as_str()
        .unwrap()
        .to_owned();
    let id = sim.sim.stats().tasks[0].task_id.clone();
    // Quoted for the shell: the path has a space.
    assert_eq!(
        resume,
        format!("kling wait {id} --out '{}'", target.display())
    );
    assert!(!target.exists());
    // Run it as printed, through a shell.
    let bin = assert_cmd::cargo::cargo_bin("kling");
    let line = resume.replacen("kling", &format!("'{}'", bin.display()), 1);
    let resumed = crate::support::isolated(&mut Command::new("sh"))
        .args(["-c", &line])
        .env("APIKLEY_API_KEY", sim.sim.api_key())
        .env("APIKLEY_BASE_URL", sim.sim.base_url())
        .env("APIKLEY_UPLOAD_BASE_URL", sim.sim.upload_base_url())
        .env_remove("RUST_LOG")
        .output()
        .unwrap();
    assert!(resumed.status.success(), "{}", stderr(&resumed));
    assert_eq!(std::fs::read(&target).unwrap(), kling_sim::RESULT_VIDEO);
}

#[test]
fn quiet_never_hides_a_task_id_the_journal_could_not_keep() {
    // A full disk right after the intent: the task exists, is paid for, and
    // its id is in no file. `-q` silences chatter, never that id.
    let sim = sim(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let manifest = manifest(dir.path(), 1, &[]);
    // The intent line's exact length, from a run with room to spare.
    let roomy = dir.path().join("roomy");
    let first = batch(&sim, &manifest, &roomy, &[]);
    assert!(first.status.success(), "{}", stderr(&first));
    let journal = std::fs::read_to_string(roomy.join("journal.jsonl")).unwrap();
    let intent = journal.lines().next().unwrap();
    assert!(intent.contains("\"intent\""), "{intent}");
    // Room for the intent, not for the task id after it (EFBIG past the
    // limit, with SIGXFSZ ignored as a full disk would leave the process).
    let limit = intent.len() + 1 + 20;
    let out = dir.path().join("full");
    std::fs::create_dir_all(&out).unwrap();
    let mut cmd = std::process::Command::new("sh");
    cmd.arg("-c")
        .arg(format!(
            "trap '' XFSZ; exec prlimit --fsize={limit}:{limit} \"$0\" \"$@\""
        ))
        .arg(assert_cmd::cargo::cargo_bin("kling"));
    crate::support::isolated(&mut cmd);
    let output = cmd
        .args([
            "--base-url",
            sim.sim.base_url(),
            "--upload-base-url",
            &sim.sim.upload_base_url(),
            "-q",
            "--no-json",
            "batch",
        ])
        .arg(&manifest)
        .arg("--out-dir")
        .arg(&out)
        .env("APIKLEY_API_KEY", sim.sim.api_key())
        .output()
        .unwrap();
    let stats = sim.sim.stats();
    assert_eq!(stats.tasks_created, 2, "{}", stderr(&output));
    let id = &stats.tasks[1].task_id;
    let said = stderr(&output);
    assert!(
        said.contains(&format!("task {id} is NOT in the journal; keep this id")),
        "{said}"
    );
    assert!(
        said.contains(&format!(
            "created but not journaled (the disk refused): job-0 = task {id}"
        )),
        "{said}"
    );
    // The journal holds the intent only: a rerun sees "outcome unknown".
    let kept = std::fs::read_to_string(out.join("journal.jsonl")).unwrap();
    assert_eq!(kept.lines().count(), 1, "{kept}");
    assert!(!kept.contains(id.as_str()), "{kept}");
}
