//! `kling --sim mcp`, driven by a real MCP client: the Python SDK's stdio
//! client (`mcp`, pinned in `.ci/run`), running `tests/mcp/client.py`. The
//! script checks each step against the embedded simulator's counters; this
//! test gives it a work directory and reads its verdict.

use std::path::PathBuf;
use std::process::Command;

use crate::support::{asset, isolated};

/// The Python that has the `mcp` package: `KLING_TEST_MCP_PYTHON`, else
/// `python3`. `None` (the test is skipped, said on stderr) when it lacks
/// the package, except under CI, where that fails the test.
fn python() -> Option<String> {
    let python = std::env::var("KLING_TEST_MCP_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_mcp = Command::new(&python)
        .args(["-c", "import mcp.client.stdio"])
        .output()
        .is_ok_and(|o| o.status.success());
    if has_mcp {
        return Some(python);
    }
    let why = format!(
        "{python} has no `mcp` package: pip install mcp==2.3.0, or point KLING_TEST_MCP_PYTHON at a Python that has it"
    );
    assert!(std::env::var_os("CI").is_none(), "{why}");
    eprintln!("skipped: {why}");
    None
}

#[test]
fn an_agent_generates_through_kling_sim_mcp_under_the_spend_guard() {
    let Some(python) = python() else {
        return;
    };
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(work.path().join("out")).unwrap();
    std::fs::copy(asset("face.png"), root.join("face.png")).unwrap();
    std::fs::copy(asset("hello.wav"), root.join("hello.wav")).unwrap();
    let outside = work.path().join("outside.png");
    std::fs::copy(asset("face.png"), &outside).unwrap();
    // A link inside a root that leads outside it.
    std::os::unix::fs::symlink(&outside, root.join("link.png")).unwrap();
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/mcp/client.py");
    let mut command = Command::new(python);
    isolated(&mut command);
    let output = command
        .arg(script)
        .arg(assert_cmd::cargo::cargo_bin("kling"))
        .arg(work.path())
        .output()
        .unwrap();
    let said = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{said}");
    assert!(said.contains("all MCP checks passed"), "{said}");
}
