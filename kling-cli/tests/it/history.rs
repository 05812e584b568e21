//! `kling history`: every paid request, with its task id or why there is none.

use serde_json::json;

use crate::support::{asset, json, sim, stderr};

#[test]
fn history_lists_the_task_just_submitted_and_an_ambiguous_one() {
    let sim = sim(|_| {});
    let state = tempfile::tempdir().unwrap();
    let kling = || {
        let mut cmd = sim.kling();
        cmd.env("KLING_STATE_DIR", state.path());
        cmd
    };
    let submit = || {
        kling()
            .args([
                "--json",
                "submit",
                "--image",
                &asset("face.png"),
                "--audio",
                &asset("hello.wav"),
            ])
            .output()
            .unwrap()
    };
    let first = submit();
    assert!(first.status.success(), "{}", stderr(&first));
    let id = json(&first)["taskId"].as_str().unwrap().to_owned();
    // The answer is lost after the task is made: outcome unknown.
    let mut faults = kling_sim::SimConfig::default().faults;
    faults.create_task.reset_after = 1.0;
    sim.sim.set_faults(faults).unwrap();
    let second = submit();
    assert_eq!(second.status.code(), Some(6), "{}", stderr(&second));
    sim.sim.set_faults(Default::default()).unwrap();

    let listed = kling().args(["--json", "history"]).output().unwrap();
    assert!(listed.status.success(), "{}", stderr(&listed));
    let records = json(&listed);
    let records = records.as_array().unwrap();
    assert_eq!(records.len(), 2, "{records:?}");
    // Newest first: the ambiguous one, with what is needed to find it.
    assert_eq!(records[0]["state"], json!("outcome unknown"), "{records:?}");
    assert_eq!(records[0]["taskId"], json!(null));
    assert!(records[0]["at"].as_str().unwrap().ends_with('Z'));
    assert!(records[0]["image"].as_str().unwrap().ends_with("face.png"));
    assert!(
        records[0]["error"]
            .as_str()
            .unwrap()
            .contains("outcome unknown")
    );
    assert_eq!(
        records[0]["baseUrl"]
            .as_str()
            .unwrap()
            .trim_end_matches('/'),
        sim.sim.base_url()
    );
    assert_eq!(records[1]["state"], json!("submitted"));
    assert_eq!(records[1]["taskId"], json!(id));
    assert_eq!(records[1]["by"], json!("submit"));

    let filtered = kling()
        .args([
            "--json",
            "history",
            "--state",
            "outcome unknown",
            "--limit",
            "5",
        ])
        .output()
        .unwrap();
    assert_eq!(json(&filtered).as_array().unwrap().len(), 1);

    // --refresh reads the task's state from the service and keeps it.
    let refreshed = kling()
        .args(["--json", "history", "--refresh"])
        .output()
        .unwrap();
    assert!(refreshed.status.success(), "{}", stderr(&refreshed));
    let state_now = json(&refreshed)[1]["state"].as_str().unwrap().to_owned();
    assert!(
        ["waiting", "queuing", "generating", "success"].contains(&state_now.as_str()),
        "{state_now}"
    );
    // Never the key.
    let text = std::fs::read_to_string(state.path().join("history.jsonl")).unwrap();
    assert!(!text.contains(sim.sim.api_key()), "{text}");
}
