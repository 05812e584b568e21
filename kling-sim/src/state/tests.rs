use super::*;

fn task(outcome: Outcome) -> Task {
    Task {
        id: "abc".into(),
        owner: "k".into(),
        model: "kling/ai-avatar-v1-pro".into(),
        param: "{}".into(),
        callback_url: None,
        created: Instant::now(),
        created_ms: 1_000,
        waiting_end: Duration::from_secs(1),
        queuing_end: Duration::from_secs(2),
        end: Duration::from_secs(10),
        outcome,
        credits: 0.0,
        null_until: None,
        unknown_until: None,
        fail_code_int: false,
        times_on_fail: false,
        polls: 0,
        first_seen_ended: None,
    }
}

#[test]
fn states_follow_the_schedule() {
    let t = task(Outcome::Success { video_seconds: 5.0 });
    let at = |s: u64| t.created + Duration::from_secs(s);
    assert_eq!(t.state(at(0)), "waiting");
    assert_eq!(t.state(at(1)), "queuing");
    assert_eq!(t.state(at(5)), "generating");
    assert_eq!(t.state(at(10)), "success");
}

#[test]
fn records_are_null_until_the_end_then_filled() {
    let t = task(Outcome::Success { video_seconds: 5.0 });
    let running = t.record(t.created, "http://h", None);
    assert_eq!(running["resultJson"], json!(""));
    assert!(running["costTime"].is_null() && running["completeTime"].is_null());
    let done = t.record(t.created + Duration::from_secs(11), "http://h", None);
    assert_eq!(done["costTime"], json!(10));
    assert_eq!(done["completeTime"], json!(11_000));
    let result: Value = serde_json::from_str(done["resultJson"].as_str().unwrap()).unwrap();
    assert_eq!(result["resultUrls"][0], json!("http://h/results/abc.mp4"));

    let mut failing = task(Outcome::Fail {
        code: "500",
        msg: "boom",
    });
    let failed = failing.record(failing.created + Duration::from_secs(11), "http://h", None);
    assert_eq!(
        (failed["failCode"].clone(), failed["resultJson"].clone()),
        (json!("500"), json!(""))
    );
    assert!(
        failed["costTime"].is_null() && failed["completeTime"].is_null(),
        "{failed}"
    );
    failing.fail_code_int = true;
    failing.times_on_fail = true;
    let failed = failing.record(failing.created + Duration::from_secs(11), "http://h", None);
    assert_eq!(failed["failCode"], json!(500));
    assert_eq!(
        (failed["costTime"].clone(), failed["completeTime"].clone()),
        (json!(10), json!(11_000))
    );
}

#[test]
fn generation_can_scale_with_the_audio() {
    let lifecycle = LifecycleConfig {
        waiting_ms: [0, 0],
        queuing_ms: [0, 0],
        generating_ms_per_audio_second: Some([4000, 4000]),
        ..LifecycleConfig::default()
    };
    let mut state = SimState::new(&[], 0.0, 1);
    let (_, _, end, _) = state.schedule(&lifecycle, 10.0, Some(10.0));
    assert_eq!(end, Duration::from_secs(40));
    // Unknown audio: the plain range.
    let (_, _, end, _) = state.schedule(&lifecycle, 10.0, None);
    assert!(end >= Duration::from_secs(2) && end <= Duration::from_secs(5));
}

#[test]
fn the_window_slides() {
    let mut state = SimState::new(&["k".into()], 0.0, 1);
    let start = Instant::now();
    for _ in 0..3 {
        state.admit("k", 3, Duration::from_secs(10), start).unwrap();
    }
    let wait = state
        .admit(
            "k",
            3,
            Duration::from_secs(10),
            start + Duration::from_secs(4),
        )
        .unwrap_err();
    assert_eq!(wait, Duration::from_secs(6));
    assert!(
        state
            .admit(
                "k",
                3,
                Duration::from_secs(10),
                start + Duration::from_secs(10)
            )
            .is_ok()
    );
    // Other keys have their own window.
    assert!(
        state
            .admit("other", 3, Duration::from_secs(10), start)
            .is_ok()
    );
}

/// Lifecycles are seeded; task ids are not (as the service's, they differ
/// from run to run, so an id from an earlier run never names a new task).
#[test]
fn the_same_seed_gives_the_same_lifecycles_and_new_ids() {
    let lifecycle = LifecycleConfig {
        fail_fraction: 0.5,
        ..LifecycleConfig::default()
    };
    let mut a = SimState::new(&[], 0.0, 42);
    let mut b = SimState::new(&[], 0.0, 42);
    for _ in 0..20 {
        assert_eq!(
            a.schedule(&lifecycle, 5.0, None),
            b.schedule(&lifecycle, 5.0, None)
        );
        assert_ne!(a.new_id(), b.new_id());
    }
}
