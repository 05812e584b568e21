//! The config file's profiles: what they set, what beats them, and the
//! errors a broken file gives (exit 2, nothing sent).

use std::path::Path;

use serde_json::json;

use crate::support::{Sim, asset, json, kling, sim, stderr};

/// A URL nothing listens on: a request sent there fails at once.
fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

/// A config file with a `staging` profile pointing at `sim` (its key in a
/// file next to the config) and a `default` profile pointing at `default_url`.
fn config(dir: &Path, sim: &Sim, default_url: &str) -> std::path::PathBuf {
    std::fs::write(dir.join("staging-key"), format!("{}\n", sim.sim.api_key())).unwrap();
    let file = dir.join("config.toml");
    std::fs::write(
        &file,
        format!(
            r#"
[profiles.default]
base_url = "{default_url}"
upload_base_url = "{default_url}"

[profiles.staging]
base_url = "{base}"
upload_base_url = "{upload}"
api_key_file = "staging-key"
model = "kling/ai-avatar-standard"
"#,
            base = sim.sim.base_url(),
            upload = sim.sim.upload_base_url(),
        ),
    )
    .unwrap();
    file
}

fn submit(config: &Path, state: &Path) -> assert_cmd::Command {
    let mut cmd = kling();
    cmd.env("KLING_CONFIG", config)
        .env("KLING_STATE_DIR", state)
        .args([
            "--json",
            "submit",
            "--image",
            &asset("face.png"),
            "--audio",
            &asset("hello.wav"),
        ]);
    cmd
}

#[test]
fn a_chosen_profile_sets_urls_key_file_and_model_and_beats_the_environment() {
    let sim = sim(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let file = config(dir.path(), &sim, &dead_url());
    // The environment names another host and key: the chosen profile wins,
    // so its key goes with its host.
    let output = submit(&file, dir.path())
        .arg("--profile")
        .arg("staging")
        .env("APIKLEY_BASE_URL", dead_url())
        .env("APIKLEY_API_KEY", "another-accounts-key")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(sim.sim.stats().requests_to("createTask"), 1);
    let history = kling()
        .env("KLING_STATE_DIR", dir.path())
        .args(["--json", "history"])
        .output()
        .unwrap();
    let doc = json(&history);
    assert_eq!(doc[0]["model"], json!("kling/ai-avatar-standard"), "{doc}");

    // KLING_PROFILE chooses it as well; --model on the command line wins.
    let output = submit(&file, dir.path())
        .env("KLING_PROFILE", "staging")
        .args(["--model", "kling/ai-avatar-v1-pro"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let doc = json(
        &kling()
            .env("KLING_STATE_DIR", dir.path())
            .args(["--json", "history"])
            .output()
            .unwrap(),
    );
    assert_eq!(doc[0]["model"], json!("kling/ai-avatar-v1-pro"), "{doc}");
}

#[test]
fn the_default_profile_yields_to_the_environment_and_flags_beat_any_profile() {
    let sim = sim(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let file = config(dir.path(), &sim, &dead_url());
    // No profile chosen: `default` (a dead host) is below APIKLEY_*.
    let output = submit(&file, dir.path())
        .env("APIKLEY_BASE_URL", sim.sim.base_url())
        .env("APIKLEY_UPLOAD_BASE_URL", sim.sim.upload_base_url())
        .env("APIKLEY_API_KEY", sim.sim.api_key())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    // A chosen profile is below flags: the balance is asked of the dead host.
    let credit_before = sim.sim.stats().requests_to("credit");
    let dead = dead_url();
    let output = submit(&file, dir.path())
        .args(["--profile", "staging", "--base-url", &dead, "--dry-run"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("cannot read the balance"),
        "{}",
        stderr(&output)
    );
    assert_eq!(sim.sim.stats().requests_to("credit"), credit_before);
    assert_eq!(sim.sim.stats().requests_to("createTask"), 1);
}

#[test]
fn a_broken_config_or_an_unknown_profile_stops_before_anything_is_sent() {
    let sim = sim(|_| {});
    let dir = tempfile::tempdir().unwrap();
    let file = config(dir.path(), &sim, sim.sim.base_url());

    let output = submit(&file, dir.path())
        .args(["--profile", "prod"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(text.contains("--profile prod"), "{text}");
    assert!(text.contains("default, staging"), "{text}");

    let broken = dir.path().join("broken.toml");
    std::fs::write(&broken, "[profiles.staging]\nbase_ulr = \"http://x\"\n").unwrap();
    let output = submit(&broken, dir.path()).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(text.contains("broken.toml"), "{text}");
    assert!(text.contains("base_ulr"), "{text}");

    std::fs::write(
        &broken,
        "[profiles.default]\nmodel = \"kling v9\"\napi_key_file = \"k\"\n",
    )
    .unwrap();
    let output = submit(&broken, dir.path()).output().unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(stderr(&output).contains("model"), "{}", stderr(&output));

    // KLING_CONFIG naming a file that is not there is a mistake to report.
    let output = submit(&dir.path().join("missing.toml"), dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("missing.toml"),
        "{}",
        stderr(&output)
    );

    assert_eq!(sim.sim.stats().requests_to("uploadStream"), 0);
    assert_eq!(sim.sim.stats().requests_to("createTask"), 0);

    // The simulator needs no settings: a broken file does not stop --sim.
    let output = kling()
        .env("KLING_CONFIG", &broken)
        .args(["--sim", "--json", "credits"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn login_with_a_profile_stores_the_key_in_its_key_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.toml");
    std::fs::write(
        &file,
        "[profiles.staging]\napi_key_file = \"keys/staging\"\n",
    )
    .unwrap();
    let output = kling()
        .env("KLING_CONFIG", &file)
        .args(["--profile", "staging", "login"])
        .write_stdin("staging-secret\n")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let stored = dir.path().join("keys/staging");
    assert_eq!(
        std::fs::read_to_string(&stored).unwrap().trim(),
        "staging-secret"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&stored).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
