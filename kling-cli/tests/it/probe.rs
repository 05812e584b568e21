//! Built only by `.ci/probe`, against a copy of the spec whose createTask
//! input has an extra optional integer `probe_seed`: `--set` takes it, typed.

use crate::support::{asset, sim, stderr};

#[test]
fn set_takes_a_field_the_document_gains_typed_by_its_schema() {
    let sim = sim(|_| {});
    let submit = |set: &str| {
        sim.kling()
            .args([
                "submit",
                "--image",
                &asset("face.png"),
                "--audio",
                &asset("hello.wav"),
                "-y",
            ])
            .args(["--set", set])
            .output()
            .unwrap()
    };
    let output = submit("probe_seed=42");
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!stderr(&output).contains("warning"), "{}", stderr(&output));
    let output = submit("probe_seed=forty-two");
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("probe_seed"),
        "{}",
        stderr(&output)
    );
    let output = submit("probe_sed=1");
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("it has probe_seed"),
        "{}",
        stderr(&output)
    );
    assert_eq!(sim.sim.stats().tasks_created, 1);
}
