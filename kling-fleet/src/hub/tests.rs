//! The hub's unit tests.

use url::Url;

use super::state::MAX_PER_NONCE;
use super::*;

fn notice(task: &str, nonce: Option<&str>) -> CallbackNotice {
    CallbackNotice::new(TaskId::new(task).unwrap(), nonce.map(str::to_owned))
}

#[test]
fn nonces_are_long_random_and_fit_a_path() {
    let (a, b) = (new_nonce(), new_nonce());
    assert_ne!(a, b);
    assert_eq!(a.len(), 32);
    assert_eq!(nonce_in_path(&format!("/{a}")), Some(a.clone()));
    let public: Url = "https://hooks.example.com/kling/".parse().unwrap();
    let url = callback_url(&public, &a);
    assert_eq!(url.as_str(), format!("https://hooks.example.com/kling/{a}"));
    assert_eq!(nonce_in_path(url.path()), Some(a));
}

#[test]
fn a_path_without_a_nonce_has_none() {
    assert_eq!(nonce_in_path("/"), None);
    assert_eq!(nonce_in_path(""), None);
    assert_eq!(nonce_in_path("/short"), None);
    assert_eq!(nonce_in_path("/has.dots.in.it"), None);
}

#[test]
fn a_nonce_keeps_every_task_its_callbacks_named_first_first() {
    let hub = CallbackHub::new();
    hub.expect_nonce("nonce-0001");
    assert!(hub.deliver(&notice("task-a", Some("nonce-0001"))));
    assert!(hub.deliver(&notice("task-b", Some("nonce-0001"))));
    assert!(!hub.deliver(&notice("task-b", Some("nonce-0001"))));
    assert_eq!(hub.task_for_nonce("nonce-0001").unwrap().as_str(), "task-a");
    let named: Vec<String> = hub
        .tasks_for_nonce("nonce-0001")
        .iter()
        .map(|t| t.to_string())
        .collect();
    assert_eq!(named, ["task-a", "task-b"]);
    for i in 0..40 {
        hub.deliver(&notice(&format!("flood-{i}"), Some("nonce-0001")));
    }
    assert_eq!(hub.tasks_for_nonce("nonce-0001").len(), MAX_PER_NONCE);
    assert!(
        !hub.deliver(&notice("task-a", None)),
        "not the first for task-a"
    );
    assert_eq!(hub.callbacks_for(&TaskId::new("task-a").unwrap()), 2);
}

#[test]
fn forged_callbacks_neither_grow_the_hub_nor_push_out_a_real_nonce() {
    let hub = CallbackHub::new();
    let real = hub.issue_nonce();
    hub.deliver(&notice("task-real", Some(&real)));
    // Far more than the hub would ever keep: nonces nobody issued,
    // tasks nobody waits for, and replays on the real nonce's URL.
    for i in 0..(MAX_ENTRIES + 50_000) {
        hub.deliver(&notice(&format!("f{i}"), Some(&format!("forged-{i:08}"))));
        if i % 1000 == 0 {
            hub.deliver(&notice(&format!("g{i}"), None));
        }
    }
    let (tasks, nonces, strays) = hub.held();
    assert!(tasks <= 2, "{tasks} tasks held");
    assert!(nonces <= 2, "{nonces} nonces held");
    assert!(strays <= MAX_STRAYS, "{strays} strays held");
    assert_eq!(hub.task_for_nonce(&real).unwrap().as_str(), "task-real");
    assert_eq!(hub.task_for_nonce("forged-00000001"), None);
    // Forgotten once its job ends: later callbacks on it go unheld.
    hub.forget_nonce(&real);
    hub.deliver(&notice("task-late", Some(&real)));
    assert_eq!(hub.task_for_nonce(&real), None);
}

#[test]
fn a_callback_just_before_its_wait_starts_is_not_lost() {
    let hub = CallbackHub::new();
    hub.deliver(&notice("task-early", Some("nonce-early-1")));
    hub.expect_nonce("nonce-early-1");
    assert_eq!(
        hub.task_for_nonce("nonce-early-1").unwrap().as_str(),
        "task-early"
    );
    hub.deliver(&notice("task-quick", None));
    hub.expect_task(&TaskId::new("task-quick").unwrap());
    assert_eq!(hub.callbacks_for(&TaskId::new("task-quick").unwrap()), 1);
}

#[tokio::test]
async fn a_waiter_wakes_on_the_callback_it_waits_for() {
    let hub = CallbackHub::new();
    let task = TaskId::new("task-w").unwrap();
    let waiter = tokio::spawn({
        let (hub, task) = (hub.clone(), task.clone());
        async move { hub.callback_after(&task, 0).await }
    });
    let by_nonce = tokio::spawn({
        let hub = hub.clone();
        async move { hub.nonce_resolved("nonce-wait").await }
    });
    tokio::task::yield_now().await;
    hub.deliver(&notice("other-task", None));
    hub.deliver(&notice("task-w", Some("nonce-wait")));
    assert_eq!(waiter.await.unwrap(), 1);
    assert_eq!(by_nonce.await.unwrap(), task);
}

#[test]
fn a_task_whose_wait_ended_is_forgotten_with_its_nonce() {
    let hub = CallbackHub::new();
    let nonce = hub.issue_nonce();
    hub.deliver(&notice("task-done", Some(&nonce)));
    let task = TaskId::new("task-done").unwrap();
    hub.forget_task(&task);
    assert_eq!(hub.held(), (0, 0, 0));
    // A late duplicate is answered and kept only among the strays.
    hub.deliver(&notice("task-done", Some(&nonce)));
    assert_eq!(hub.task_for_nonce(&nonce), None);
    assert_eq!(hub.held(), (0, 0, 1));
}
