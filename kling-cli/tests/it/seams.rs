//! The seams between batch modes: a journal run then a fleet run on one
//! directory (and back), a renamed manifest, two projects whose manifests
//! share a file name, and a store URL's password. The simulator's create
//! counter is the proof that nothing was paid twice.

use std::path::{Path, PathBuf};
use std::process::Output;

use kling_testkit::TestPg;
use serde_json::{Value, json};

use crate::batch::{manifest, results};
use crate::support::{Sim, sim, stderr};

/// `kling --json batch MANIFEST --out-dir OUT --yes EXTRA`, with `KLING_STORE`
/// set to `store` when given (as a shell profile would).
fn batch(sim: &Sim, manifest: &Path, out: &Path, store: Option<&str>, extra: &[&str]) -> Output {
    let mut cmd = sim.kling();
    if let Some(url) = store {
        cmd.env("KLING_STORE", url);
    }
    cmd.args(["--json", "batch"])
        .arg(manifest)
        .arg("--out-dir")
        .arg(out)
        .arg("--yes")
        .args(extra)
        .output()
        .unwrap()
}

/// `resume`, a printed `kling …` command, run through `sh` as a person would
/// paste it, with `KLING_STORE` set to `store` (against `sim`).
fn run_as_printed(sim: &Sim, resume: &str, store: &str) -> Output {
    let mut shell = std::process::Command::new("sh");
    crate::support::isolated(&mut shell);
    shell
        .arg("-c")
        .arg(format!(
            "exec \"$KLING\" --base-url \"$BASE\" --upload-base-url \"$UPLOAD\" --json {} --yes",
            resume.trim_start_matches("kling ")
        ))
        .env("KLING", assert_cmd::cargo::cargo_bin("kling"))
        .env("BASE", sim.sim.base_url())
        .env("UPLOAD", sim.sim.upload_base_url())
        .env("APIKLEY_API_KEY", sim.sim.api_key())
        .env("KLING_STORE", store)
        .output()
        .unwrap()
}

fn all_text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned() + &stderr(output)
}

fn created(sim: &Sim) -> u64 {
    sim.sim.stats().tasks_created
}

#[test]
fn a_journal_directory_is_never_paid_again_by_a_fleet_run() {
    let Some(pg) = TestPg::start("a_journal_directory_is_never_paid_again_by_a_fleet_run") else {
        return;
    };
    let sim = sim(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let jobs = manifest(dir.path(), 3, &[]);
    let out = dir.path().join("out1");
    let first = batch(&sim, &jobs, &out, None, &[]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(created(&sim), 3);
    // The same command, with KLING_STORE exported by a shell profile.
    let second = batch(&sim, &jobs, &out, Some(pg.url()), &[]);
    assert_eq!(second.status.code(), Some(2), "{}", all_text(&second));
    assert_eq!(created(&sim), 3, "paid again: {}", all_text(&second));
    let said = stderr(&second);
    assert!(said.contains("holds a journal batch"), "{said}");
    assert!(said.contains("env -u KLING_STORE kling batch"), "{said}");
    // The printed way on works, and pays for nothing.
    let plain = batch(&sim, &jobs, &out, None, &[]);
    assert!(plain.status.success(), "{}", stderr(&plain));
    assert_eq!(created(&sim), 3);
    assert_eq!(results(&out).len(), 3);
}

#[test]
fn a_fleet_directory_is_never_paid_again_by_a_journal_run() {
    let Some(pg) = TestPg::start("a_fleet_directory_is_never_paid_again_by_a_journal_run") else {
        return;
    };
    let sim = sim(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let jobs = manifest(dir.path(), 3, &[]);
    let out = dir.path().join("out2");
    let first = batch(&sim, &jobs, &out, None, &["--store", pg.url()]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(created(&sim), 3);
    let said = stderr(&first);
    assert!(said.contains("fleet batch"), "the mode is said: {said}");
    // The same command without the store.
    let second = batch(&sim, &jobs, &out, None, &[]);
    assert_eq!(second.status.code(), Some(2), "{}", all_text(&second));
    assert_eq!(created(&sim), 3, "paid again: {}", all_text(&second));
    let said = stderr(&second);
    assert!(said.contains("holds a fleet batch"), "{said}");
    assert!(
        !out.join("journal.jsonl").exists(),
        "no journal was started"
    );
    // With the store again: nothing to do, nothing paid.
    let again = batch(&sim, &jobs, &out, None, &["--store", pg.url()]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(created(&sim), 3);
}

#[test]
fn a_renamed_manifest_is_the_same_batch() {
    let Some(pg) = TestPg::start("a_renamed_manifest_is_the_same_batch") else {
        return;
    };
    let sim = sim(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let jobs = manifest(dir.path(), 3, &[]);
    let out = dir.path().join("out3");
    let first = batch(&sim, &jobs, &out, Some(pg.url()), &[]);
    assert!(first.status.success(), "{}", stderr(&first));
    assert_eq!(created(&sim), 3);
    let renamed = dir.path().join("jobs-v2.jsonl");
    std::fs::rename(&jobs, &renamed).unwrap();
    // The same directory.
    let second = batch(&sim, &renamed, &out, Some(pg.url()), &[]);
    assert!(second.status.success(), "{}", all_text(&second));
    assert_eq!(created(&sim), 3, "paid again: {}", all_text(&second));
    // Another worker's fresh directory (another host): the jobs find their batch.
    let elsewhere = dir.path().join("out3-other");
    let third = batch(&sim, &renamed, &elsewhere, Some(pg.url()), &[]);
    assert!(third.status.success(), "{}", all_text(&third));
    assert_eq!(created(&sim), 3, "paid again: {}", all_text(&third));
    assert_eq!(results(&elsewhere).len(), 3);
}

/// A project's manifest `jobs.jsonl` in its own directory, with its own files.
fn project(root: &Path, name: &str, ids: &[&str]) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(kling_testkit::asset("face.png"), dir.join("face.png")).unwrap();
    std::fs::copy(kling_testkit::asset("hello.wav"), dir.join("hello.wav")).unwrap();
    let lines: Vec<String> = ids
        .iter()
        .map(|id| json!({"id": id, "image": "face.png", "audio": "hello.wav", "prompt": format!("{name} {id}")}).to_string())
        .collect();
    let path = dir.join("jobs.jsonl");
    std::fs::write(&path, lines.join("\n")).unwrap();
    path
}

#[test]
fn two_projects_whose_manifests_share_a_name_are_two_batches() {
    let Some(pg) = TestPg::start("two_projects_whose_manifests_share_a_name_are_two_batches")
    else {
        return;
    };
    let sim = sim(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let one = project(dir.path(), "one", &["a", "b", "c"]);
    let two = project(dir.path(), "two", &["a", "d"]);
    let (out_one, out_two) = (dir.path().join("one/out"), dir.path().join("two/out"));
    let first = batch(&sim, &one, &out_one, Some(pg.url()), &[]);
    assert!(first.status.success(), "{}", stderr(&first));
    let second = batch(&sim, &two, &out_two, Some(pg.url()), &[]);
    assert!(second.status.success(), "{}", all_text(&second));
    assert_eq!(created(&sim), 5);
    let ids = |out: &Path| -> Vec<String> {
        results(out)
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&out_one), ["a", "b", "c"]);
    assert_eq!(ids(&out_two), ["a", "d"]);
    for (out, id) in [
        (&out_one, "a"),
        (&out_one, "c"),
        (&out_two, "a"),
        (&out_two, "d"),
    ] {
        assert!(
            out.join(format!("{id}.mp4")).exists(),
            "{}/{id}.mp4",
            out.display()
        );
    }
    assert!(!out_two.join("b.mp4").exists());
}

#[test]
fn a_store_password_is_never_shown_in_either_url_form() {
    let Some(pg) = TestPg::start("a_store_password_is_never_shown_in_either_url_form") else {
        return;
    };
    const SECRET: &str = "pw-Hunter2-secret";
    let sim = sim(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let jobs = manifest(dir.path(), 1, &[]);
    // The throwaway cluster trusts local connections: the password is
    // carried, never needed.
    let in_userinfo = pg
        .url()
        .replacen("postgres@", &format!("postgres:{SECRET}@"), 1);
    let in_query = format!("{}&password={SECRET}", pg.url());
    for (n, url) in [in_userinfo, in_query].iter().enumerate() {
        let out = dir.path().join(format!("out-{n}"));
        for extra in [&["-vv"][..], &["--no-json"][..], &["--status"][..]] {
            let mut cmd = sim.kling();
            if extra != ["--status"] {
                cmd.arg("--json");
            }
            let output = cmd
                .args(extra.iter().filter(|a| **a != "--status"))
                .args(["batch"])
                .arg(&jobs)
                .arg("--out-dir")
                .arg(&out)
                .args(["--yes", "--store", url.as_str()])
                .args(extra.iter().filter(|a| **a == "--status"))
                .output()
                .unwrap();
            let text = all_text(&output);
            assert!(output.status.success(), "{url} {extra:?}: {text}");
            assert!(!text.contains(SECRET), "{extra:?}: {text}");
        }
        // A dry run says nothing secret either.
        let mut cmd = sim.kling();
        let listed = cmd
            .args(["--json", "batch"])
            .arg(&jobs)
            .arg("--out-dir")
            .arg(&out)
            .args(["--yes", "--dry-run", "--store", url.as_str()])
            .output()
            .unwrap();
        assert!(!all_text(&listed).contains(SECRET), "{}", all_text(&listed));
    }
    // A value clap rejects is not echoed either.
    let rejected = sim
        .kling()
        .env("KLING_STORE", format!("mysql://u:{SECRET}@h/db"))
        .args(["batch"])
        .arg(&jobs)
        .args(["--out-dir", "x"])
        .output()
        .unwrap();
    assert_eq!(rejected.status.code(), Some(2));
    assert!(
        !all_text(&rejected).contains(SECRET),
        "{}",
        all_text(&rejected)
    );
}

#[test]
fn the_resume_command_of_a_store_with_a_password_refers_to_kling_store() {
    let Some(pg) =
        TestPg::start("the_resume_command_of_a_store_with_a_password_refers_to_kling_store")
    else {
        return;
    };
    const SECRET: &str = "pw-Resume-secret";
    // Every task fails to download: jobs are left to do, and the summary
    // prints the command that resumes them.
    let sim = sim(|c| c.faults.download.html502 = 1.0);
    let dir = tempfile::tempdir().unwrap();
    let jobs = manifest(dir.path(), 1, &[]);
    let out = dir.path().join("out");
    let url = format!("{}&password={SECRET}", pg.url());
    let output = batch(&sim, &jobs, &out, Some(&url), &[]);
    let text = all_text(&output);
    assert!(!text.contains(SECRET), "{text}");
    let doc: Value = serde_json::from_slice(&output.stdout).unwrap();
    let resume = doc["resume"].as_str().unwrap_or_else(|| panic!("{doc}"));
    assert!(resume.contains("--store \"$KLING_STORE\""), "{resume}");
    // Run as printed (through a shell, KLING_STORE still set): nothing paid again.
    sim.sim.set_faults(Default::default()).unwrap();
    let resumed = run_as_printed(&sim, resume, &url);
    assert!(resumed.status.success(), "{}", all_text(&resumed));
    assert_eq!(created(&sim), 1);
    assert!(out.join("job-0.mp4").exists());
}

#[test]
fn a_directory_of_simulated_tasks_is_not_run_against_a_real_service() {
    let sim = sim(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let jobs = manifest(dir.path(), 2, &[]);
    let out = dir.path().join("out");
    let simulated = crate::support::kling()
        .args(["--sim", "--json", "batch"])
        .arg(&jobs)
        .arg("--out-dir")
        .arg(&out)
        .arg("--yes")
        .output()
        .unwrap();
    assert!(simulated.status.success(), "{}", all_text(&simulated));
    // The same directory against a service (here the test's simulator):
    // its tasks exist on none, its "ended" jobs hold simulated videos.
    let real = batch(&sim, &jobs, &out, None, &[]);
    assert_eq!(real.status.code(), Some(2), "{}", all_text(&real));
    assert_eq!(created(&sim), 0);
    assert!(
        stderr(&real).contains("created on kling --sim"),
        "{}",
        stderr(&real)
    );
    // And --sim never joins a shared store (nothing is contacted).
    let fleet = crate::support::kling()
        .args(["--sim", "batch"])
        .arg(&jobs)
        .args(["--out-dir", "elsewhere", "--yes", "--store"])
        .arg("postgres://kling@127.0.0.1:9/kling")
        .output()
        .unwrap();
    assert_eq!(fleet.status.code(), Some(2), "{}", all_text(&fleet));
    assert!(
        stderr(&fleet).contains("--sim keeps its tasks"),
        "{}",
        stderr(&fleet)
    );
}

#[test]
fn a_broken_config_file_never_echoes_its_key() {
    const SECRET: &str = "sk-config-echo-71c2-SECRET";
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    // A misspelt setting beside the key: the parser quotes the line it
    // stops at, which must not be the key's.
    for text in [
        format!("[profiles.default]\napi_key = \"{SECRET}\"\n"),
        format!("[profiles.default]\nbase_url = \"https://x.example\"\napi_key = \"{SECRET}\n"),
    ] {
        std::fs::write(&config, &text).unwrap();
        let output = crate::support::kling()
            .env("KLING_CONFIG", &config)
            .args(["--json", "credits"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{}", all_text(&output));
        let said = all_text(&output);
        assert!(!said.contains(SECRET), "{said}");
        assert!(!said.contains("71c2"), "{said}");
        assert!(said.contains("config.toml"), "{said}");
    }
}

#[test]
fn a_worker_whose_lines_all_differ_is_not_a_new_batch_by_itself() {
    let Some(pg) = TestPg::start("a_worker_whose_lines_all_differ_is_not_a_new_batch_by_itself")
    else {
        return;
    };
    let sim = sim(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let jobs = manifest(dir.path(), 3, &[]);
    let first = batch(&sim, &jobs, &dir.path().join("a"), Some(pg.url()), &[]);
    assert!(first.status.success(), "{}", stderr(&first));
    // Another host's worker, started with another default model: every
    // line differs from the store's, every id is the same.
    let other = batch(
        &sim,
        &jobs,
        &dir.path().join("b"),
        Some(pg.url()),
        &["--model", "kling/ai-avatar-standard"],
    );
    assert_eq!(other.status.code(), Some(2), "{}", all_text(&other));
    assert_eq!(created(&sim), 3, "paid again: {}", all_text(&other));
    assert!(
        stderr(&other).contains("--batch-name"),
        "{}",
        stderr(&other)
    );
}

#[test]
fn a_fleet_directory_from_before_the_mark_is_not_run_from_a_journal() {
    let Some(pg) =
        TestPg::start("a_fleet_directory_from_before_the_mark_is_not_run_from_a_journal")
    else {
        return;
    };
    let sim = sim(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let jobs = manifest(dir.path(), 2, &[]);
    let out = dir.path().join("out");
    let first = batch(&sim, &jobs, &out, Some(pg.url()), &[]);
    assert!(first.status.success(), "{}", stderr(&first));
    // As an earlier version's fleet left it: videos and results, no mark.
    std::fs::remove_file(out.join("store.json")).unwrap();
    let plain = batch(&sim, &jobs, &out, None, &[]);
    assert_eq!(plain.status.code(), Some(2), "{}", all_text(&plain));
    assert_eq!(created(&sim), 2, "paid again: {}", all_text(&plain));
    assert!(
        stderr(&plain).contains("but no journal"),
        "{}",
        stderr(&plain)
    );
}

#[test]
fn a_typed_store_url_with_a_password_gives_a_resume_command_that_runs_as_printed() {
    let Some(pg) = TestPg::start("a_typed_store_url_with_a_password_gives_a_resume_command") else {
        return;
    };
    const SECRET: &str = "pw-Typed-secret";
    let sim = sim(|c| c.faults.download.html502 = 1.0);
    let dir = tempfile::tempdir().unwrap();
    let jobs = manifest(dir.path(), 1, &[]);
    let out = dir.path().join("out");
    let url = format!("{}&password={SECRET}", pg.url());
    // Typed on the command line, not exported.
    let output = batch(&sim, &jobs, &out, None, &["--store", &url]);
    let text = all_text(&output);
    assert!(!text.contains(SECRET), "{text}");
    assert!(
        stderr(&output).contains("refer to \"$KLING_STORE\""),
        "{text}"
    );
    let doc: Value = serde_json::from_slice(&output.stdout).unwrap();
    let resume = doc["resume"].as_str().unwrap_or_else(|| panic!("{doc}"));
    assert!(resume.ends_with("--store \"$KLING_STORE\""), "{resume}");
    sim.sim.set_faults(Default::default()).unwrap();
    let resumed = run_as_printed(&sim, resume, &url);
    assert!(resumed.status.success(), "{}", all_text(&resumed));
    assert_eq!(created(&sim), 1);
}

#[test]
fn a_fleet_worker_pointed_at_another_service_is_refused() {
    let Some(pg) = TestPg::start("a_fleet_worker_pointed_at_another_service_is_refused") else {
        return;
    };
    let production = sim(|_| {});
    let staging = sim(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let jobs = manifest(dir.path(), 2, &[]);
    let first = batch(
        &production,
        &jobs,
        &dir.path().join("a"),
        Some(pg.url()),
        &[],
    );
    assert!(first.status.success(), "{}", stderr(&first));
    // Another host's worker, on another service (a profile, a --base-url).
    let other = batch(&staging, &jobs, &dir.path().join("b"), Some(pg.url()), &[]);
    assert_eq!(other.status.code(), Some(2), "{}", all_text(&other));
    assert_eq!(created(&staging), 0);
    assert_eq!(staging.sim.stats().requests_to("recordInfo"), 0);
    assert!(
        stderr(&other).contains("creates its tasks on"),
        "{}",
        stderr(&other)
    );
}
