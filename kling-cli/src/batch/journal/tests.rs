//! The journal's replay, damage handling and the results file.

use super::*;
use serde_json::{Value, json};

#[test]
fn replay_rebuilds_each_jobs_state_and_skips_a_torn_line() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (journal, states, _) = Journal::open(dir.path()).unwrap();
        assert!(states.is_empty());
        for event in [
            Event::Intent {
                id: "a".into(),
                input: "ia".into(),
                nonce: None,
                service: None,
                at: 1,
            },
            Event::Submitted {
                id: "a".into(),
                task_id: "t-a".into(),
                at: 2,
            },
            Event::Intent {
                id: "b".into(),
                input: "ib".into(),
                nonce: None,
                service: None,
                at: 3,
            },
            Event::Intent {
                id: "c".into(),
                input: "ic".into(),
                nonce: None,
                service: None,
                at: 4,
            },
            Event::Unknown {
                id: "c".into(),
                error: "reset".into(),
                at: 5,
            },
            Event::Rejected {
                id: "d".into(),
                kind: "rejected".into(),
                message: "bad".into(),
                input: None,
                at: 6,
            },
            Event::Intent {
                id: "e".into(),
                input: "ie".into(),
                nonce: None,
                service: None,
                at: 7,
            },
            Event::Submitted {
                id: "e".into(),
                task_id: "t-e".into(),
                at: 8,
            },
            Event::Finished {
                id: "e".into(),
                result: json!({"id": "e", "status": "done"}),
                at: 9,
            },
        ] {
            journal.record(&event).unwrap();
        }
    }
    // A crash mid-write.
    let mut file = OpenOptions::new()
        .append(true)
        .open(dir.path().join(JOURNAL))
        .unwrap();
    file.write_all(b"{\"event\":\"submitted\",\"id\":\"b\",\"tas")
        .unwrap();
    let (_, states, damage) = Journal::open(dir.path()).unwrap();
    assert_eq!(damage.torn, 1);
    assert_eq!(
        states["a"].state,
        JobState::Submitted {
            task_id: "t-a".into()
        }
    );
    assert_eq!(states["a"].task_ids, ["t-a"]);
    assert_eq!(states["a"].input.as_deref(), Some("ia"));
    assert_eq!(
        states["b"].state,
        JobState::Interrupted { input: "ib".into() }
    );
    assert_eq!(
        states["c"].state,
        JobState::Unknown {
            error: "reset".into()
        }
    );
    assert!(matches!(states["d"].state, JobState::Rejected { .. }));
    assert!(matches!(states["e"].state, JobState::Finished { .. }));
}

#[test]
fn results_are_rebuilt_with_one_line_per_ended_job() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _, _) = Journal::open(dir.path()).unwrap();
    for event in [
        Event::Rejected {
            id: "a".into(),
            kind: "insufficient_credits".into(),
            message: "no".into(),
            input: None,
            at: 1,
        },
        Event::Intent {
            id: "b".into(),
            input: "ib".into(),
            nonce: None,
            service: None,
            at: 2,
        },
        Event::Submitted {
            id: "b".into(),
            task_id: "t".into(),
            at: 3,
        },
        Event::Finished {
            id: "b".into(),
            result: json!({"id": "b", "status": "done"}),
            at: 4,
        },
        Event::Intent {
            id: "c".into(),
            input: "ic".into(),
            nonce: None,
            service: None,
            at: 5,
        },
        // Retried after the rejection: the later outcome wins.
        Event::Intent {
            id: "a".into(),
            input: "ia".into(),
            nonce: None,
            service: None,
            at: 6,
        },
        Event::Submitted {
            id: "a".into(),
            task_id: "t2".into(),
            at: 7,
        },
        Event::Finished {
            id: "a".into(),
            result: json!({"id": "a", "status": "done"}),
            at: 8,
        },
    ] {
        journal.record(&event).unwrap();
    }
    let results = Results::open(dir.path()).unwrap();
    results
        .append(&json!({"id": "a", "status": "rejected"}))
        .unwrap();
    results
        .append(&json!({"id": "a", "status": "done"}))
        .unwrap();
    assert_eq!(rewrite_results(dir.path()).unwrap(), 2);
    let text = std::fs::read_to_string(dir.path().join(RESULTS)).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            json!({"id": "a", "status": "done"}),
            json!({"id": "b", "status": "done"})
        ]
    );
}

fn intent(id: &str, at: u64) -> Event {
    Event::Intent {
        id: id.into(),
        input: format!("i{id}"),
        nonce: None,
        service: None,
        at,
    }
}

#[test]
fn not_taken_returns_a_job_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _, _) = Journal::open(dir.path()).unwrap();
    journal.record(&intent("a", 1)).unwrap();
    journal
        .record(&Event::NotTaken {
            id: "a".into(),
            kind: "maintenance".into(),
            message: "455".into(),
            retrying: false,
            at: 2,
        })
        .unwrap();
    let (_, states, _) = Journal::open(dir.path()).unwrap();
    assert_eq!(states["a"].state, JobState::New);
    assert!(states["a"].task_ids.is_empty());
}

#[test]
fn a_line_that_is_not_utf8_is_skipped_and_the_rest_replays() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _, _) = Journal::open(dir.path()).unwrap();
    journal.record(&intent("a", 1)).unwrap();
    drop(journal);
    let mut file = OpenOptions::new()
        .append(true)
        .open(dir.path().join(JOURNAL))
        .unwrap();
    file.write_all(b"{\"event\":\"intent\",\"id\":\"\xff\xfe\"}\n")
        .unwrap();
    file.write_all(b"{\"event\":\"submitted\",\"id\":\"a\",\"taskId\":\"t-a\",\"at\":3}\n")
        .unwrap();
    let (_, states, damage) = Journal::open(dir.path()).unwrap();
    assert_eq!(
        (damage.not_utf8, damage.torn, damage.lines.clone()),
        (1, 0, vec![2])
    );
    assert_eq!(
        states["a"].state,
        JobState::Submitted {
            task_id: "t-a".into()
        }
    );
    assert_eq!(rewrite_results(dir.path()).unwrap(), 0, "rewrite copes too");
}

#[test]
fn an_event_after_a_torn_tail_starts_its_own_line() {
    let dir = tempfile::tempdir().unwrap();
    let (journal, _, _) = Journal::open(dir.path()).unwrap();
    journal.record(&intent("a", 1)).unwrap();
    drop(journal);
    let mut file = OpenOptions::new()
        .append(true)
        .open(dir.path().join(JOURNAL))
        .unwrap();
    file.write_all(b"{\"event\":\"submitted\",\"id\":\"a\",\"ta")
        .unwrap();
    let (journal, _, damage) = Journal::open(dir.path()).unwrap();
    assert_eq!(damage.torn, 1);
    journal
        .record(&Event::Submitted {
            id: "a".into(),
            task_id: "t-a".into(),
            at: 2,
        })
        .unwrap();
    let (_, states, damage) = Journal::open(dir.path()).unwrap();
    assert_eq!(damage.torn, 1, "still only the torn fragment");
    assert_eq!(
        states["a"].state,
        JobState::Submitted {
            task_id: "t-a".into()
        },
        "the event written after the tear is whole"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_is_an_error_not_a_panic() {
    let file = OpenOptions::new().append(true).open("/dev/full").unwrap();
    let journal = Journal::with_file("/dev/full".into(), file);
    let error = journal.record(&intent("a", 1)).unwrap_err();
    assert_eq!(error.raw_os_error(), Some(28), "ENOSPC: {error}");
    assert!(journal.record(&intent("a", 2)).is_err());
}

#[test]
fn an_intents_nonce_stays_open_until_its_outcome_is_known() {
    let with_nonce = |nonce: &str, at| Event::Intent {
        id: "j".into(),
        input: "i".into(),
        nonce: Some(nonce.into()),
        service: None,
        at,
    };
    let events = [
        with_nonce("nonce-a", 1),
        Event::Unknown {
            id: "j".into(),
            error: "reset".into(),
            at: 2,
        },
        // Refused by a check before any intent: says nothing of nonce-a.
        Event::Rejected {
            id: "j".into(),
            kind: "invalid_input".into(),
            message: "x".into(),
            input: None,
            at: 3,
        },
        with_nonce("nonce-b", 4),
        Event::Submitted {
            id: "j".into(),
            task_id: "t-b".into(),
            at: 5,
        },
    ];
    let bytes = lines(&events);
    let (states, _, _) = replay(&bytes);
    assert_eq!(states["j"].open_nonces, ["nonce-a"]);
    let found = Event::Found {
        id: "j".into(),
        task_id: "t-a".into(),
        nonce: "nonce-a".into(),
        at: 6,
    };
    let mut more = bytes.clone();
    more.extend(serde_json::to_vec(&found).unwrap());
    let (states, _, _) = replay(&more);
    let record = &states["j"];
    assert!(record.open_nonces.is_empty());
    assert_eq!(record.task_ids, ["t-b", "t-a"]);
    // Found changes no state: the job's own task is still t-b.
    assert_eq!(
        record.state,
        JobState::Submitted {
            task_id: "t-b".into()
        }
    );
}

#[test]
fn a_recovered_intent_closes_its_nonce() {
    let events = [
        Event::Intent {
            id: "j".into(),
            input: "i".into(),
            nonce: Some("nonce-r".into()),
            service: None,
            at: 1,
        },
        Event::Unknown {
            id: "j".into(),
            error: "reset".into(),
            at: 2,
        },
        Event::Recovered {
            id: "j".into(),
            task_id: "t-r".into(),
            at: 3,
        },
    ];
    let bytes = lines(&events);
    let (states, _, _) = replay(&bytes);
    // Not "an earlier submit" to listen for on a rerun: it is this job's task.
    assert!(states["j"].open_nonces.is_empty(), "{:?}", states["j"]);
    assert_eq!(states["j"].task_ids, ["t-r"]);
}

/// `events` as journal lines.
fn lines(events: &[Event]) -> Vec<u8> {
    events
        .iter()
        .flat_map(|e| {
            let mut line = serde_json::to_vec(e).unwrap();
            line.push(b'\n');
            line
        })
        .collect()
}
