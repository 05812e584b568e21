//! The ledger's unit tests.

use super::*;

fn ledger() -> (tempfile::TempDir, Ledger) {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Ledger::in_dir(dir.path());
    (dir, ledger)
}

#[test]
fn parallel_reservations_never_pass_the_budget() {
    let (_dir, ledger) = ledger();
    // 16 threads, each trying 3 reservations of 10 credits against 100.
    let granted: usize = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|_| {
                let ledger = ledger.clone();
                s.spawn(move || {
                    (0..3)
                        .filter(|_| ledger.reserve("svc", 10.0, Some(100.0), None, "t").is_ok())
                        .count()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(granted, 10);
    assert_eq!(ledger.spent_today("svc").unwrap(), 100.0);
    assert!(matches!(
        ledger.reserve("svc", 0.5, Some(100.0), None, "t"),
        Err(LedgerError::OverBudget { .. })
    ));
    // Another service has its own budget.
    assert!(
        ledger
            .reserve("other", 10.0, Some(100.0), None, "t")
            .is_ok()
    );
}

#[test]
fn a_settlement_replaces_the_estimate() {
    let (_dir, ledger) = ledger();
    let a = ledger.reserve("svc", 40.0, Some(100.0), None, "t").unwrap();
    let b = ledger.reserve("svc", 40.0, Some(100.0), None, "t").unwrap();
    // Not taken: counts nothing.
    ledger.settle(&a, 0.0, "notTaken").unwrap();
    ledger.task(&b, "task-b").unwrap();
    // The service reported less than estimated.
    ledger.settle_task("task-b", true, Some(25.0)).unwrap();
    assert_eq!(ledger.spent_today("svc").unwrap(), 25.0);
    // A second settlement of the same task changes nothing.
    ledger.settle_task("task-b", true, Some(99.0)).unwrap();
    assert_eq!(ledger.spent_today("svc").unwrap(), 25.0);
    // A failure without a figure costs nothing.
    let c = ledger.reserve("svc", 30.0, Some(100.0), None, "t").unwrap();
    ledger.task(&c, "task-c").unwrap();
    ledger.settle_task("task-c", false, None).unwrap();
    assert_eq!(ledger.spent_today("svc").unwrap(), 25.0);
    let entries = ledger.entries().unwrap();
    assert_eq!(entries[1].settled.as_deref(), Some("creditsConsumed"));
    assert_eq!(entries[2].settled.as_deref(), Some("failed"));
}

#[test]
fn a_torn_line_is_skipped_and_the_next_starts_a_line() {
    let (dir, ledger) = ledger();
    ledger.reserve("svc", 5.0, None, Some("k1"), "t").unwrap();
    let mut file = OpenOptions::new()
        .append(true)
        .open(dir.path().join(FILE))
        .unwrap();
    file.write_all(br#"{"event":"reserve","id":"torn","at":1"#)
        .unwrap();
    drop(file);
    ledger.reserve("svc", 7.0, None, Some("k2"), "t").unwrap();
    let entries = ledger.entries().unwrap();
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(ledger.spent_today("svc").unwrap(), 12.0);
}

#[test]
fn keys_are_found_within_their_time_and_not_when_not_taken() {
    let (_dir, ledger) = ledger();
    let id = ledger.reserve("svc", 5.0, None, Some("key"), "t").unwrap();
    ledger.task(&id, "task-1").unwrap();
    let found = ledger
        .find_key("svc", "key", Duration::from_secs(60))
        .unwrap()
        .unwrap();
    assert_eq!(found.task_id.as_deref(), Some("task-1"));
    assert!(
        ledger
            .find_key("svc", "key", Duration::ZERO)
            .unwrap()
            .is_none()
    );
    assert!(
        ledger
            .find_key("svc", "other", Duration::from_secs(60))
            .unwrap()
            .is_none()
    );
    let again = ledger.reserve("svc", 5.0, None, Some("k2"), "t").unwrap();
    ledger.settle(&again, 0.0, "notTaken").unwrap();
    assert!(
        ledger
            .find_key("svc", "k2", Duration::from_secs(60))
            .unwrap()
            .is_none()
    );
}

#[test]
fn spending_counts_only_today() {
    let entry = |at, credits| Entry {
        id: "x".into(),
        at,
        service: "svc".into(),
        credits,
        key: None,
        by: "t".into(),
        task_id: None,
        settled: None,
    };
    let now = 20_000 * DAY_MS + 1_000;
    let entries = [
        entry(now - 10, 3.0),
        entry(now - DAY_MS, 50.0),
        entry(now, 4.0),
    ];
    assert_eq!(spent_on(&entries, "svc", now), 7.0);
}

#[cfg(unix)]
#[test]
fn the_file_is_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let (dir, ledger) = ledger();
    ledger.reserve("svc", 1.0, None, None, "t").unwrap();
    let mode = std::fs::metadata(dir.path().join(FILE))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn a_keyed_call_reserves_once_per_service() {
    let (_dir, ledger) = ledger();
    let minute = Duration::from_secs(60);
    let first = match ledger
        .reserve_once("svc", 5.0, None, "k", minute, "t")
        .unwrap()
    {
        Reserve::New(id) => id,
        other => panic!("{other:?}"),
    };
    match ledger
        .reserve_once("svc", 5.0, None, "k", minute, "t")
        .unwrap()
    {
        Reserve::Existing(entry) => assert_eq!(entry.id, first),
        other => panic!("{other:?}"),
    }
    // Another service (the simulator's, say) does not share its keys.
    assert!(matches!(
        ledger
            .reserve_once("sim", 5.0, None, "k", minute, "t")
            .unwrap(),
        Reserve::New(_)
    ));
    assert!(ledger.find_key("other", "k", minute).unwrap().is_none());
    // Two processes at once: one reservation.
    let (_dir, ledger) = self::ledger();
    let made: usize = std::thread::scope(|s| {
        (0..8)
            .map(|_| {
                let ledger = ledger.clone();
                s.spawn(move || {
                    matches!(
                        ledger
                            .reserve_once("svc", 5.0, None, "same", minute, "t")
                            .unwrap(),
                        Reserve::New(_)
                    )
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap() as usize)
            .sum()
    });
    assert_eq!(made, 1);
}
