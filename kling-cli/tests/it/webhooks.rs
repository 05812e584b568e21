//! Webhook mode (`--listen`): the callback ends the wait after one status
//! request, a lost createTask answer is recovered from the task's callback,
//! a bad signature does not count, and the flags are checked before anything
//! is sent.

use crate::support::{asset, json, sim, stderr};

fn generate(sim: &crate::support::Sim, dir: &std::path::Path) -> assert_cmd::Command {
    let mut cmd = generate_without_listen(sim, dir);
    cmd.args(["--listen", "127.0.0.1:0"]);
    cmd
}

fn generate_without_listen(
    sim: &crate::support::Sim,
    dir: &std::path::Path,
) -> assert_cmd::Command {
    let mut cmd = sim.kling();
    cmd.env("KLING_STATE_DIR", dir.join("state"))
        .args(["--json", "generate", "--yes", "--image"])
        .arg(asset("face.png"))
        .arg("--audio")
        .arg(asset("hello.wav"))
        .arg("--out")
        .arg(dir.join("avatar.mp4"));
    cmd
}

fn polls_of(sim: &crate::support::Sim, task_id: &str) -> u32 {
    let stats = sim.sim.stats();
    stats
        .tasks
        .iter()
        .find(|t| t.task_id == task_id)
        .unwrap_or_else(|| panic!("no task {task_id}: {stats:?}"))
        .polls
}

#[test]
fn generate_with_listen_ends_on_the_callback_after_one_status_request() {
    let sim = sim(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let output = generate(&sim, dir.path())
        .args(["--safety-poll", "1m"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let doc = json(&output);
    let task_id = doc["taskId"].as_str().unwrap();
    assert_eq!(polls_of(&sim, task_id), 1, "one confirming recordInfo");
    assert_eq!(doc["recovered"], false);
    assert!(dir.path().join("avatar.mp4").exists());
    let err = stderr(&output);
    assert_eq!(
        err.matches("callbacks are accepted unsigned").count(),
        1,
        "said once: {err}"
    );
}

#[test]
fn a_lost_create_answer_is_recovered_from_the_tasks_callback() {
    let sim = sim(|c| c.faults.create_task.reset_after = 1.0);
    let dir = tempfile::tempdir().unwrap();
    let output = generate(&sim, dir.path()).output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let doc = json(&output);
    assert_eq!(doc["recovered"], true);
    let stats = sim.sim.stats();
    assert_eq!(stats.tasks_created, 1, "created once, never resent");
    assert_eq!(doc["taskId"], stats.tasks[0].task_id.as_str());
    assert!(dir.path().join("avatar.mp4").exists());
    let err = stderr(&output);
    assert!(err.contains("recovered"), "{err}");
    // The history keeps the nonce with the intent and the recovered task.
    let history = std::fs::read_to_string(dir.path().join("state").join("history.jsonl")).unwrap();
    assert!(history.contains("\"nonce\""), "{history}");
    assert!(history.contains("\"recovered\""), "{history}");
    let listed = crate::support::kling()
        .env("KLING_STATE_DIR", dir.path().join("state"))
        .args(["--json", "history"])
        .output()
        .unwrap();
    let records = json(&listed);
    assert_eq!(records[0]["state"], "recovered", "{records}");
    assert_eq!(records[0]["taskId"], stats.tasks[0].task_id.as_str());
}

#[test]
fn without_its_callback_a_lost_answer_stays_unknown_and_says_so() {
    let sim = sim(|c| {
        c.faults.create_task.reset_after = 1.0;
        c.faults.callback.lost = 1.0;
    });
    let dir = tempfile::tempdir().unwrap();
    let output = generate(&sim, dir.path())
        .args(["--timeout", "2s"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(6), "{}", stderr(&output));
    assert_eq!(sim.sim.stats().tasks_created, 1);
    assert!(stderr(&output).contains("listening for the task's callback"));
}

#[test]
fn a_callback_with_a_bad_signature_does_not_end_the_wait() {
    let sim = sim(|c| c.webhook_hmac_key = Some("the-accounts-key".into()));
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let output = generate(&sim, dir.path())
        .args(["--webhook-key", "another-key", "--safety-poll", "3s"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(started.elapsed() >= std::time::Duration::from_secs(3));
    let stats = sim.sim.stats();
    assert_eq!(stats.callbacks[0].status, Some(401));
    assert!(!stderr(&output).contains("unsigned"));
}

#[test]
fn a_signed_callback_with_the_right_key_is_taken() {
    let sim = sim(|c| c.webhook_hmac_key = Some("the-accounts-key".into()));
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("hook.key");
    std::fs::write(&key, "the-accounts-key\n").unwrap();
    let output = generate(&sim, dir.path())
        .arg("--webhook-key-file")
        .arg(&key)
        .args(["--safety-poll", "1m"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let doc = json(&output);
    assert_eq!(polls_of(&sim, doc["taskId"].as_str().unwrap()), 1);
    assert_eq!(sim.sim.stats().callbacks[0].status, Some(200));
}

/// APIKLEY_WEBHOOK_KEY is read with --listen and is no flag: exported in a
/// shell, it does not stop a run without --listen, and with --listen it is
/// the key callbacks must be signed with (the file comes first).
#[test]
fn the_webhook_key_from_the_environment_is_used_only_with_listen() {
    let sim = sim(|c| c.webhook_hmac_key = Some("the-accounts-key".into()));
    let dir = tempfile::tempdir().unwrap();
    let output = generate_without_listen(&sim, dir.path())
        .env("APIKLEY_WEBHOOK_KEY", "the-accounts-key")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    std::fs::remove_file(dir.path().join("avatar.mp4")).unwrap();

    let output = generate(&sim, dir.path())
        .env("APIKLEY_WEBHOOK_KEY", "another-key")
        .args(["--safety-poll", "2s"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let stats = sim.sim.stats();
    let refused = stats.callbacks.last().unwrap();
    assert_eq!(
        refused.status,
        Some(401),
        "signed with the account's key, checked with the environment's"
    );
    assert!(!stderr(&output).contains("unsigned"), "{}", stderr(&output));
    std::fs::remove_file(dir.path().join("avatar.mp4")).unwrap();

    let key = dir.path().join("hook.key");
    std::fs::write(&key, "the-accounts-key\n").unwrap();
    let output = generate(&sim, dir.path())
        .env("APIKLEY_WEBHOOK_KEY", "another-key")
        .arg("--webhook-key-file")
        .arg(&key)
        .args(["--safety-poll", "1m"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(sim.sim.stats().callbacks.last().unwrap().status, Some(200));
}

#[test]
fn webhook_flags_are_checked_before_anything_is_sent() {
    let sim = sim(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = taken.local_addr().unwrap().to_string();
    let local = ["--listen", "127.0.0.1:0"];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--listen", "0.0.0.0:0"], "--public-url"),
        (
            [&local[..], &["--callback-url", "https://example.com/cb"]].concat(),
            "not with --listen",
        ),
        ([&local[..], &["--webhook-key", " "]].concat(), "empty"),
        (
            [&local[..], &["--public-url", "ftp://example.com/x"]].concat(),
            "http or https",
        ),
        (vec!["--listen", &busy], "cannot listen"),
        (
            [&local[..], &["--public-url", "https://me:pw@example.com/x"]].concat(),
            "user name or password",
        ),
        (vec!["--public-url", "https://example.com/x"], "--listen"),
    ];
    for (args, says) in cases {
        let output = generate_without_listen(&sim, dir.path())
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(says),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    assert_eq!(sim.sim.stats().tasks_created, 0);
    assert_eq!(sim.sim.stats().requests_to("uploadStream"), 0);
}

fn batch(
    sim: &crate::support::Sim,
    dir: &std::path::Path,
    manifest: &std::path::Path,
) -> assert_cmd::Command {
    let mut cmd = sim.kling();
    cmd.env("KLING_STATE_DIR", dir.join("state"))
        .args(["--json", "batch", "--yes"])
        .arg(manifest)
        .arg("--out-dir")
        .arg(dir.join("out"));
    cmd
}

/// 8 jobs, about half of their create answers cut: every one recovered from
/// its callback, each task created once and read once. Returns the summary.
fn batch_recovers(dir: &std::path::Path, store: Option<&str>) -> serde_json::Value {
    let sim = sim(|c| {
        c.faults.seed = 5;
        c.faults.create_task.reset_after = 0.5;
    });
    let manifest = crate::batch::manifest(dir, 8, &[]);
    let store: Vec<&str> = store.map(|url| vec!["--store", url]).unwrap_or_default();
    let output = batch(&sim, dir, &manifest)
        .args(&store)
        .args(["--listen", "127.0.0.1:0", "--safety-poll", "1m"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let summary = json(&output);
    let stats = sim.sim.stats();
    let cut = stats
        .faults
        .get("createTask.resetAfter")
        .copied()
        .unwrap_or(0);
    assert!(cut >= 1, "the seed cuts some answers: {:?}", stats.faults);
    assert_eq!(summary["done"], 8, "{summary}");
    assert_eq!(summary["recovered"], cut, "{summary}");
    assert_eq!(summary["ambiguous"], 0, "{summary}");
    assert_eq!(stats.tasks_created, 8, "each job created once");
    assert!(stats.duplicate_inputs().is_empty());
    // One status request per task: the callback's confirmation, or the read
    // of the task a callback named.
    assert_eq!(stats.requests_to("recordInfo"), 8, "{:?}", stats.requests);
    summary
}

#[test]
fn a_batch_with_listen_recovers_lost_answers_and_makes_every_video() {
    let dir = tempfile::tempdir().unwrap();
    let summary = batch_recovers(dir.path(), None);
    let journal = std::fs::read_to_string(dir.path().join("out").join("journal.jsonl")).unwrap();
    assert_eq!(journal.matches("\"nonce\"").count(), 8, "{journal}");
    assert_eq!(
        journal.matches("\"recovered\"").count() as u64,
        summary["recovered"].as_u64().unwrap(),
        "{journal}"
    );
}

#[test]
fn a_fleet_worker_with_listen_recovers_lost_answers_in_the_store() {
    let Some(pg) = kling_testkit::TestPg::start("webhooks_fleet") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    batch_recovers(dir.path(), Some(pg.url()));
    let status = crate::support::kling()
        .env("KLING_STORE", pg.url())
        .args(["--json", "batch"])
        .arg(dir.path().join("jobs.jsonl"))
        .arg("--status")
        .output()
        .unwrap();
    let doc = json(&status);
    let finished = doc["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["state"] == "finished")
        .count();
    assert_eq!(finished, 8, "{doc}");
}

/// A free loopback address for --listen (the same across runs of a test).
fn free_listen() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    format!("127.0.0.1:{port}")
}

/// A simulator that cuts every createTask answer, its tasks generating for
/// `generating_ms`.
fn answers_cut(generating_ms: u64) -> crate::support::Sim {
    sim(|c| {
        c.lifecycle.generating_ms = [generating_ms, generating_ms];
        c.faults.create_task.reset_after = 1.0;
    })
}

/// A first run whose one job's answer is cut and which gives up listening
/// after 1 s, before its task is done: the job is left unknown.
fn left_unknown(
    sim: &crate::support::Sim,
    dir: &std::path::Path,
    manifest: &std::path::Path,
    store: &[&str],
    listen: &str,
) {
    let first = batch(sim, dir, manifest)
        .args(store)
        .args(["--listen", listen, "--timeout", "1s"])
        .output()
        .unwrap();
    assert_eq!(first.status.code(), Some(6), "{}", stderr(&first));
    assert_eq!(json(&first)["ambiguous"], 1);
}

/// A first run leaves a job unknown (its answer cut, its task not done when
/// it stops listening); a rerun with one more job hears its callback.
fn rerun_listens(store: Option<&str>) {
    let sim = answers_cut(3000);
    let dir = tempfile::tempdir().unwrap();
    let listen = free_listen();
    let manifest = crate::batch::manifest(dir.path(), 1, &[]);
    let store: Vec<&str> = store.map(|url| vec!["--store", url]).unwrap_or_default();
    left_unknown(&sim, dir.path(), &manifest, &store, &listen);
    // The rerun has another job, and listens for the first on the same URL.
    let mut faults = sim.sim.config().faults.clone();
    faults.create_task.reset_after = 0.0;
    sim.sim.set_faults(faults).unwrap();
    let manifest = crate::batch::manifest(
        dir.path(),
        1,
        &[r#"{"id": "job-new", "image": "face.png", "audio": "hello.wav", "prompt": "another"}"#],
    );
    let second = batch(&sim, dir.path(), &manifest)
        .args(&store)
        .args(["--listen", &listen, "--timeout", "20s"])
        .output()
        .unwrap();
    assert!(second.status.success(), "{}", stderr(&second));
    let summary = json(&second);
    assert_eq!(summary["done"], 2, "{summary}");
    assert_eq!(summary["recovered"], 1, "{summary}");
    assert_eq!(summary["leftAlone"], serde_json::json!([]), "{summary}");
    assert_eq!(sim.sim.stats().tasks_created, 2);
    assert!(
        stderr(&second).contains("recovered task"),
        "{}",
        stderr(&second)
    );
    assert!(dir.path().join("out").join("job-0.mp4").exists());
}

#[test]
fn a_rerun_listens_for_unknown_jobs_while_it_runs() {
    rerun_listens(None);
}

#[test]
fn a_fleet_rerun_listens_for_unknown_jobs_while_it_runs() {
    let Some(pg) = kling_testkit::TestPg::start("webhooks_fleet_rerun") else {
        return;
    };
    rerun_listens(Some(pg.url()));
}

/// A rerun whose only work is a job left unknown listens as long as its
/// task may still run (its intent plus --timeout), not zero seconds; past
/// that it says the callback has come and gone.
#[test]
fn a_rerun_with_only_unknown_jobs_listens_while_their_tasks_may_run() {
    let sim = answers_cut(6000);
    let dir = tempfile::tempdir().unwrap();
    let listen = free_listen();
    let manifest = crate::batch::manifest(dir.path(), 1, &[]);
    left_unknown(&sim, dir.path(), &manifest, &[], &listen);
    // Sent more than --timeout (1 s) ago: not listened for.
    let late = batch(&sim, dir.path(), &manifest)
        .args(["--listen", &listen, "--timeout", "1s"])
        .output()
        .unwrap();
    assert_eq!(late.status.code(), Some(6), "{}", stderr(&late));
    assert!(
        stderr(&late).contains("have come and gone"),
        "{}",
        stderr(&late)
    );
    let rerun = batch(&sim, dir.path(), &manifest)
        .args(["--listen", &listen, "--timeout", "60s"])
        .output()
        .unwrap();
    assert!(rerun.status.success(), "{}", stderr(&rerun));
    let summary = json(&rerun);
    assert_eq!(summary["recovered"], 1, "{summary}");
    assert_eq!(summary["done"], 1, "{summary}");
    assert!(stderr(&rerun).contains("up to"), "{}", stderr(&rerun));
    assert_eq!(sim.sim.stats().tasks_created, 1);
    assert!(dir.path().join("out").join("job-0.mp4").exists());
}

/// A task submitted without --listen has no callBackUrl: a rerun with
/// --listen polls it as usual (a look every 4.7 s at most) rather than
/// leaving it to the safety poll, whose next look after the first comes 30 s
/// into the wait (about 25 s after this task ends).
#[test]
fn a_task_submitted_without_listen_is_polled_on_a_rerun_with_it() {
    let sim = sim(|c| c.lifecycle.generating_ms = [6000, 6000]);
    let dir = tempfile::tempdir().unwrap();
    let manifest = crate::batch::manifest(dir.path(), 1, &[]);
    let first = batch(&sim, dir.path(), &manifest)
        .args(["--timeout", "1s"])
        .output()
        .unwrap();
    assert_eq!(first.status.code(), Some(5), "{}", stderr(&first));
    let rerun = batch(&sim, dir.path(), &manifest)
        .args(["--listen", "127.0.0.1:0", "--timeout", "60s"])
        .output()
        .unwrap();
    assert!(rerun.status.success(), "{}", stderr(&rerun));
    assert_eq!(json(&rerun)["done"], 1);
    let stats = sim.sim.stats();
    assert_eq!(stats.tasks_created, 1);
    let lag = stats.tasks[0].detection_lag_ms.unwrap();
    assert!(
        lag < 15_000,
        "found {lag} ms after it ended: left to the safety poll"
    );
}

#[test]
fn a_lost_callback_is_caught_by_the_safety_poll() {
    let sim = sim(|c| c.faults.callback.lost = 1.0);
    let dir = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    let output = generate(&sim, dir.path())
        .args(["--safety-poll", "2s"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(started.elapsed() >= std::time::Duration::from_secs(2));
    let doc = json(&output);
    // The task (under a second) had ended by the first safety look.
    assert_eq!(polls_of(&sim, doc["taskId"].as_str().unwrap()), 1);
    assert_eq!(sim.sim.stats().callbacks[0].fault.as_deref(), Some("lost"));
    assert!(dir.path().join("avatar.mp4").exists());
}

#[test]
fn a_line_with_its_own_callback_url_keeps_it_and_is_polled() {
    let sim = sim(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let manifest = crate::batch::manifest(
        dir.path(),
        1,
        &[
            r#"{"id": "own", "image": "face.png", "audio": "hello.wav", "callbackUrl": "http://127.0.0.1:9/elsewhere"}"#,
        ],
    );
    let output = batch(&sim, dir.path(), &manifest)
        .args(["--listen", "127.0.0.1:0", "--safety-poll", "10m"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(json(&output)["done"], 2);
    let stats = sim.sim.stats();
    let own = stats
        .callbacks
        .iter()
        .find(|c| c.url.ends_with("/elsewhere"))
        .expect("its own callBackUrl was sent");
    let polls = stats
        .tasks
        .iter()
        .find(|t| t.task_id == own.task_id)
        .unwrap()
        .polls;
    // Polled from the start (its callbacks go elsewhere), not left to a
    // safety poll ten minutes away.
    assert!(polls >= 2, "{polls}");
}

/// A first run leaves a job unknown (its answer cut); the rerun submits it
/// again (`--resubmit-ambiguous`) and still listens on the first intent's
/// nonce: the first task's callback names it, and it is recorded (journal
/// or store, history) and said, beside the new task.
fn resubmit_still_listens(store: Option<&str>) {
    let sim = answers_cut(3000);
    let dir = tempfile::tempdir().unwrap();
    let listen = free_listen();
    let manifest = crate::batch::manifest(dir.path(), 1, &[]);
    let store: Vec<&str> = store.map(|url| vec!["--store", url]).unwrap_or_default();
    left_unknown(&sim, dir.path(), &manifest, &store, &listen);
    let first_task = sim.sim.stats().tasks[0].task_id.clone();
    let mut faults = sim.sim.config().faults.clone();
    faults.create_task.reset_after = 0.0;
    sim.sim.set_faults(faults).unwrap();
    let second = batch(&sim, dir.path(), &manifest)
        .args(&store)
        .args([
            "--resubmit-ambiguous",
            "--listen",
            &listen,
            "--timeout",
            "20s",
        ])
        .output()
        .unwrap();
    assert!(second.status.success(), "{}", stderr(&second));
    let summary = json(&second);
    let stats = sim.sim.stats();
    assert_eq!(stats.tasks_created, 2, "resubmitted once, as asked");
    assert_eq!(summary["done"], 1, "{summary}");
    assert_eq!(
        summary["found"],
        serde_json::json!([{"id": "job-0", "taskId": first_task, "confirmed": true}]),
        "{summary}"
    );
    let said = stderr(&second);
    assert!(
        said.contains(&format!("earlier submit's task {first_task} exists")),
        "{said}"
    );
    let history = std::fs::read_to_string(dir.path().join("state").join("history.jsonl")).unwrap();
    assert!(
        history.contains(&format!("\"taskId\":\"{first_task}\"")),
        "{history}"
    );
    if store.is_empty() {
        let journal =
            std::fs::read_to_string(dir.path().join("out").join("journal.jsonl")).unwrap();
        assert!(journal.contains("\"found\""), "{journal}");
        assert!(journal.contains(&first_task), "{journal}");
    } else {
        let status = crate::support::kling()
            .args(["--json", "batch"])
            .arg(&manifest)
            .args(&store)
            .args(["--status", "--out-dir"])
            .arg(dir.path().join("out"))
            .output()
            .unwrap();
        let doc = json(&status);
        let tasks = &doc["jobs"][0]["tasks"];
        assert!(
            tasks
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t == first_task.as_str()),
            "{doc}"
        );
    }
}

#[test]
fn a_resubmitted_job_still_listens_on_its_earlier_nonce() {
    resubmit_still_listens(None);
}

#[test]
fn a_resubmitted_fleet_job_still_listens_on_its_earlier_nonce() {
    let Some(pg) = kling_testkit::TestPg::start("webhooks_fleet_resubmit") else {
        return;
    };
    resubmit_still_listens(Some(pg.url()));
}

/// The earlier task's callback comes, but no status request can read it
/// (an outage): it may be a paid task, so it is kept, marked unconfirmed.
#[test]
fn an_earlier_task_named_but_not_readable_is_kept_unconfirmed() {
    // Every task invisible for 10 minutes after its creation.
    let sim = sim(|c| {
        c.lifecycle.generating_ms = [3000, 3000];
        c.faults.create_task.reset_after = 1.0;
        c.faults.null_record = 1.0;
        c.faults.null_record_ms = 600_000;
    });
    let dir = tempfile::tempdir().unwrap();
    let listen = free_listen();
    let manifest = crate::batch::manifest(dir.path(), 1, &[]);
    left_unknown(&sim, dir.path(), &manifest, &[], &listen);
    let first_task = sim.sim.stats().tasks[0].task_id.clone();
    let mut faults = sim.sim.config().faults.clone();
    faults.create_task.reset_after = 0.0;
    sim.sim.set_faults(faults).unwrap();
    let second = batch(&sim, dir.path(), &manifest)
        .args([
            "--resubmit-ambiguous",
            "--listen",
            &listen,
            "--timeout",
            "6s",
        ])
        .output()
        .unwrap();
    let summary = json(&second);
    assert_eq!(
        summary["found"],
        serde_json::json!([{"id": "job-0", "taskId": first_task, "confirmed": false}]),
        "{summary}\n{}",
        stderr(&second)
    );
    let history = std::fs::read_to_string(dir.path().join("state").join("history.jsonl")).unwrap();
    assert!(history.contains("\"unconfirmed\""), "{history}");
    let listed = crate::support::kling()
        .env("KLING_STATE_DIR", dir.path().join("state"))
        .args(["--json", "history"])
        .output()
        .unwrap();
    let records = json(&listed);
    assert!(
        records
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["taskId"] == first_task.as_str() && r["state"] == "found, unconfirmed"),
        "{records}"
    );
}
