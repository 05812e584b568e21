use std::process::Output;

use assert_cmd::Command;
use kling_sim::{SimConfig, Simulator};
use serde_json::Value;

/// A simulator served by its own runtime while the test runs the CLI.
pub struct Sim {
    pub sim: Simulator,
    _runtime: tokio::runtime::Runtime,
}

pub fn sim(change: impl FnOnce(&mut SimConfig)) -> Sim {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sim = runtime
        .block_on(
            Simulator::builder()
                .api_key("cli-test-key")
                .with(|c| {
                    kling_testkit::quick(c);
                    change(c);
                })
                .start(),
        )
        .unwrap();
    Sim {
        sim,
        _runtime: runtime,
    }
}

pub fn asset(name: &str) -> String {
    kling_testkit::asset(name).display().to_string()
}

pub fn data(name: &str) -> String {
    kling_testkit::data(name).display().to_string()
}

/// `kling` with a clean environment (no APIKLEY_* from the machine).
pub fn kling() -> Command {
    let mut cmd = Command::from_std(kling_std());
    cmd.timeout(std::time::Duration::from_secs(60));
    cmd
}

/// [`kling`] as a plain `std` command, for tests that spawn it and act while
/// it runs.
pub fn kling_std() -> std::process::Command {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("kling"));
    isolated(&mut cmd);
    cmd
}

/// The environment every `kling` a test starts runs in (also for one started
/// through a shell): no APIKLEY_* or KLING_* from the machine, and its state
/// and config in temporary directories, never the user's home (history,
/// rate-limit window, learned speeds, a stored key).
pub fn isolated(cmd: &mut std::process::Command) -> &mut std::process::Command {
    cmd.env_remove("APIKLEY_API_KEY")
        .env_remove("APIKLEY_BASE_URL")
        .env_remove("APIKLEY_UPLOAD_BASE_URL")
        .env_remove("APIKLEY_WEBHOOK_KEY")
        .env_remove("RUST_LOG")
        .env_remove("KLING_PROFILE")
        .env_remove("KLING_CONFIG")
        .env_remove("KLING_STORE")
        .env_remove("KLING_RATE_LIMIT_STORE")
        // What the CLI keeps between runs stays out of the user's home.
        .env(
            "KLING_STATE_DIR",
            std::env::temp_dir().join(format!("kling-cli-tests-{}", std::process::id())),
        )
        // No key stored by `kling login` on this machine is ever found.
        .env(
            "KLING_CONFIG_DIR",
            std::env::temp_dir().join(format!("kling-cli-tests-config-{}", std::process::id())),
        )
}

impl Sim {
    /// `kling` pointed at this simulator.
    pub fn kling(&self) -> Command {
        let mut cmd = Command::from_std(self.kling_std());
        cmd.timeout(std::time::Duration::from_secs(60));
        cmd
    }

    /// [`Sim::kling`] as a plain `std` command.
    pub fn kling_std(&self) -> std::process::Command {
        let mut cmd = kling_std();
        cmd.args([
            "--base-url",
            self.sim.base_url(),
            "--upload-base-url",
            &self.sim.upload_base_url(),
        ])
        .env("APIKLEY_API_KEY", self.sim.api_key());
        cmd
    }
}

pub fn json(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    })
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
