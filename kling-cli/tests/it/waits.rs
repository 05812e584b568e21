//! Nothing is silent: what the CLI waits for is said (off a terminal, as
//! lines on stderr).

use std::process::Stdio;
use std::time::Duration;

use crate::support::{asset, data, sim};

#[test]
fn an_upload_retry_says_what_failed_and_how_long_it_waits() {
    let sim = sim(|_| {});
    let mut faults = kling_sim::SimConfig::default().faults;
    faults.upload.html502 = 1.0;
    sim.sim.set_faults(faults).unwrap();
    let child = sim
        .kling_std()
        .args(["--json", "submit", "--yes", "--image"])
        .arg(asset("face.png"))
        .arg("--audio")
        .arg(data("hello.mp3"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first backoff is under a second (not said); the second is over
    // one. Uploads serve again once it has begun.
    // Counted when the fault is injected, not when the request arrives: a
    // second request that has arrived may not have drawn its fault yet.
    for _ in 0..3000 {
        let injected = sim.sim.stats().faults.get("uploadStream.html502").copied();
        if injected.unwrap_or(0) >= 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    sim.sim.set_faults(Default::default()).unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{stderr}\nstdout: {}\nfaults: {:?}",
        String::from_utf8_lossy(&output.stdout),
        sim.sim.stats().faults
    );
    assert!(
        stderr.contains(
            "  wait  upload (stream) failed: HTTP 502 instead of the envelope; attempt 3 of 5 next, in "
        ),
        "{stderr}"
    );
    // A short line: the proxy's HTML page is not on it.
    assert!(!stderr.contains("DOCTYPE"), "{stderr}");
    assert_eq!(sim.sim.stats().tasks_created, 1);
}

#[test]
fn a_dependencys_warning_is_not_shown_unless_asked_for() {
    let sim = sim(|_| {});
    // hello.mp3 is ffmpeg's: lofty warns of "junk data" before its ID3 tag.
    let run = |extra: &[&str]| {
        sim.kling()
            .args(extra)
            .args(["--json", "submit", "--yes", "--image"])
            .arg(asset("face.png"))
            .arg("--audio")
            .arg(data("hello.mp3"))
            .output()
            .unwrap()
    };
    let quiet = run(&[]);
    assert!(quiet.status.success(), "{}", crate::support::stderr(&quiet));
    assert!(
        !crate::support::stderr(&quiet).contains("ID3v2"),
        "{}",
        crate::support::stderr(&quiet)
    );
    let verbose = run(&["-v"]);
    assert!(
        crate::support::stderr(&verbose).contains("ID3v2"),
        "{}",
        crate::support::stderr(&verbose)
    );
}
