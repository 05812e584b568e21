//! Waits that end on callbacks, against the simulator: one confirming look,
//! duplicates and replays ignored, lost callbacks caught by the safety poll,
//! bad signatures refused, and a lost createTask answer recovered by its nonce.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use kling_api_ext::wait::{SafetyPoll, WaitEvent};
use kling_api_ext::{AvatarRequest, Error, State, TaskId, WaitOptions};
use kling_fleet::receiver::{ReceiverConfig, hub_router};
use kling_fleet::{CallbackHub, callback_url, new_nonce};
use kling_sim::Simulator;
use kling_testkit::asset;
use url::Url;

use crate::support::{client, sim};

/// A receiver on a free loopback port feeding a hub; its public URL.
async fn receiver(config: ReceiverConfig) -> (CallbackHub, Url) {
    let hub = CallbackHub::new();
    let app = hub_router(config, hub.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (hub, url.parse().unwrap())
}

fn request(public: &Url, nonce: &str) -> AvatarRequest {
    AvatarRequest::builder()
        .image(asset("face.png"))
        .audio(asset("hello.wav"))
        .callback_url(callback_url(public, nonce).as_str())
        .build()
        .unwrap()
}

fn polls(sim: &Simulator, id: &TaskId) -> u32 {
    let stats = sim.stats();
    stats
        .tasks
        .iter()
        .find(|t| t.task_id == id.as_str())
        .unwrap()
        .polls
}

/// The events a wait reported.
fn recorder() -> (
    Arc<Mutex<Vec<WaitEvent>>>,
    impl Fn(&WaitEvent) + Send + Sync + 'static,
) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    (events, move |e: &WaitEvent| {
        sink.lock().unwrap().push(e.clone())
    })
}

/// A safety poll that would not look for a minute: only a callback ends the
/// wait sooner.
fn patient() -> SafetyPoll {
    SafetyPoll::default().cold_first(Duration::from_secs(60))
}

async fn until_callbacks(sim: &Simulator, n: usize) {
    for _ in 0..1000 {
        if sim.stats().callbacks.len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{n} callbacks were not recorded");
}

/// Submits with `nonce` to a simulator that cuts createTask's answer: the
/// task exists, its id unknown here.
async fn lost_answer(client: &kling_api_ext::Client, public: &Url, nonce: &str) {
    let outcome = client.submit(&request(public, nonce)).await;
    assert!(
        matches!(outcome, Err(Error::SubmitOutcomeUnknown { .. })),
        "{outcome:?}"
    );
}

/// Another intent's task, genuinely ended, its callback then replayed to
/// `nonce`'s URL (answered 200). Returns that task.
async fn replayed_to(
    client: &kling_api_ext::Client,
    hub: &CallbackHub,
    public: &Url,
    nonce: &str,
) -> TaskId {
    let other = client.submit(&request(public, &new_nonce())).await.unwrap();
    client
        .wait(&other, WaitOptions::new().callbacks(hub.clone()))
        .await
        .unwrap();
    let body = serde_json::json!({"code": 200, "msg": "ok", "data": {"taskId": other.as_str(), "state": "success"}});
    let answer = kling_api_ext::reqwest::Client::new()
        .post(callback_url(public, nonce))
        .header("x-webhook-timestamp", "1")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    other
}

/// A receiver, a simulator changed by `change`, a client, and a task
/// submitted with a fresh nonce in its callBackUrl.
struct Submitted {
    hub: CallbackHub,
    public: Url,
    nonce: String,
    sim: Simulator,
    client: kling_api_ext::Client,
    id: TaskId,
}

async fn submitted(
    config: ReceiverConfig,
    change: impl FnOnce(&mut kling_sim::SimConfig),
) -> Submitted {
    let (hub, public) = receiver(config).await;
    let sim = sim(change).await;
    let client = client(&sim);
    let nonce = hub.issue_nonce();
    let id = client.submit(&request(&public, &nonce)).await.unwrap();
    Submitted {
        hub,
        public,
        nonce,
        sim,
        client,
        id,
    }
}

#[tokio::test]
async fn a_callback_ends_a_wait_with_one_confirming_look() {
    let Submitted {
        hub,
        sim,
        client,
        id,
        ..
    } = submitted(ReceiverConfig::signed("hook-key").unwrap(), |c| {
        c.webhook_hmac_key = Some("hook-key".into())
    })
    .await;
    let (events, record) = recorder();
    let options = WaitOptions::new()
        .callbacks(hub.clone())
        .safety_poll(patient())
        .on_progress(record);
    let task = tokio::time::timeout(Duration::from_secs(20), client.wait(&id, options))
        .await
        .expect("the callback ended the wait long before the safety poll")
        .unwrap();
    assert_eq!(task.state, State::Success);
    assert_eq!(polls(&sim, &id), 1, "one recordInfo: the confirmation");
    let events = events.lock().unwrap();
    assert_eq!(events.len(), 1);
    assert!(events[0].via_callback);
}

#[tokio::test]
async fn a_duplicated_or_replayed_callback_does_nothing() {
    let Submitted {
        hub,
        public,
        nonce,
        sim,
        client,
        id,
    } = submitted(ReceiverConfig::signed("hook-key").unwrap(), |c| {
        c.webhook_hmac_key = Some("hook-key".into());
        c.faults.callback.duplicated = 1.0;
        c.faults.callback.duplicate_after_ms = 300;
    })
    .await;
    let options = WaitOptions::new()
        .callbacks(hub.clone())
        .safety_poll(patient());
    client.wait(&id, options).await.unwrap();
    until_callbacks(&sim, 2).await;
    // A replay: the same signed callback posted again by someone else.
    let body = serde_json::json!({"code": 200, "msg": "ok", "data": {"taskId": id.as_str(), "state": "success", "resultJson": "{\"resultUrls\":[\"https://x.example/v.mp4\"]}"}});
    let ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - 100; // another second than the simulator's, inside the replay window
    let replay = || {
        kling_api_ext::reqwest::Client::new()
            .post(callback_url(&public, &nonce))
            .header("x-webhook-timestamp", ts.to_string())
            .header(
                "x-webhook-signature",
                kling_testkit::sign_callback(b"hook-key", id.as_str(), ts),
            )
            .json(&body)
            .send()
    };
    assert_eq!(replay().await.unwrap().status(), 200);
    assert_eq!(
        replay().await.unwrap().status(),
        200,
        "answered, not handed over"
    );
    let stats = sim.stats();
    let task = stats
        .tasks
        .iter()
        .find(|t| t.task_id == id.as_str())
        .unwrap();
    assert_eq!(task.callbacks, 2, "the simulator sent it twice");
    // The duplicate was dropped by the receiver; the replay, signed for
    // another second, is handed over once.
    assert_eq!(hub.callbacks_for(&id), 2);
    // Later waits on the ended task, or nobody waiting: no extra look.
    assert_eq!(polls(&sim, &id), 1);
}

#[tokio::test]
async fn a_lost_callback_is_caught_by_the_safety_poll() {
    let Submitted {
        hub,
        sim,
        client,
        id,
        ..
    } = submitted(ReceiverConfig::unsigned(), |c| c.faults.callback.lost = 1.0).await;
    let (events, record) = recorder();
    let safety = SafetyPoll::default()
        .cold_first(Duration::from_millis(800))
        .then(Duration::from_millis(300));
    let options = WaitOptions::new()
        .callbacks(hub.clone())
        .safety_poll(safety)
        .on_progress(record);
    let task = client.wait(&id, options).await.unwrap();
    assert_eq!(task.state, State::Success);
    assert_eq!(hub.callbacks_for(&id), 0);
    assert_eq!(sim.stats().callbacks[0].fault.as_deref(), Some("lost"));
    let events = events.lock().unwrap();
    assert!(events.iter().all(|e| !e.via_callback));
    // The task lasts 160-320 ms: the first safety look at 800 ms sees it ended.
    assert_eq!(polls(&sim, &id), 1, "{events:?}");
}

#[tokio::test]
async fn a_bad_signature_is_refused_and_does_not_end_the_wait() {
    let Submitted {
        hub,
        sim,
        client,
        id,
        ..
    } = submitted(ReceiverConfig::signed("our-key").unwrap(), |c| {
        c.webhook_hmac_key = Some("someone-elses-key".into())
    })
    .await;
    let (events, record) = recorder();
    let safety = SafetyPoll::default().cold_first(Duration::from_secs(2));
    let options = WaitOptions::new()
        .callbacks(hub.clone())
        .safety_poll(safety)
        .on_progress(record);
    let started = std::time::Instant::now();
    let task = client.wait(&id, options).await.unwrap();
    assert_eq!(task.state, State::Success);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "ended by the safety poll"
    );
    assert_eq!(sim.stats().callbacks[0].status, Some(401));
    assert_eq!(hub.callbacks_for(&id), 0);
    assert!(events.lock().unwrap().iter().all(|e| !e.via_callback));
}

#[tokio::test]
async fn an_unsigned_callback_is_confirmed_before_it_counts() {
    let (hub, public) = receiver(ReceiverConfig::unsigned()).await;
    // Tasks of 1.5 s: a forged callback comes long before the end.
    let sim = sim(|c| c.lifecycle.generating_ms = [1500, 1500]).await;
    let client = client(&sim);
    let nonce = hub.issue_nonce();
    let id = client.submit(&request(&public, &nonce)).await.unwrap();
    let (events, record) = recorder();
    let options = WaitOptions::new()
        .callbacks(hub.clone())
        .safety_poll(patient())
        .on_progress(record);
    let wait = tokio::spawn({
        let (client, id) = (client.clone(), id.clone());
        async move { client.wait(&id, options).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let forged = serde_json::json!({"code": 200, "msg": "ok", "data": {"taskId": id.as_str(), "state": "success", "resultJson": "{\"resultUrls\":[\"https://evil.example/v.mp4\"]}"}});
    let answer = kling_api_ext::reqwest::Client::new()
        .post(callback_url(&public, &nonce))
        .json(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let task = wait.await.unwrap().unwrap();
    assert_eq!(task.state, State::Success);
    assert!(
        task.video_url()
            .unwrap()
            .as_str()
            .starts_with(sim.base_url()),
        "the video comes from the service, not the forged body: {:?}",
        task.video_url()
    );
    let events = events.lock().unwrap();
    let first = &events[0];
    assert!(first.via_callback);
    assert_ne!(
        first.state,
        Some(State::Success),
        "the forgery was not believed"
    );
    assert!(
        events.last().unwrap().via_callback,
        "the real callback ended it"
    );
}

#[tokio::test]
async fn a_lost_create_answer_is_recovered_by_its_nonce() {
    let (hub, public) = receiver(ReceiverConfig::signed("hook-key").unwrap()).await;
    let sim = sim(|c| {
        c.webhook_hmac_key = Some("hook-key".into());
        c.faults.create_task.reset_after = 1.0;
    })
    .await;
    let client = client(&sim);
    let nonce = hub.issue_nonce();
    lost_answer(&client, &public, &nonce).await;
    let options = WaitOptions::new().deadline(Some(Duration::from_secs(20)));
    let task = hub
        .recover(&client, &nonce, &options)
        .await
        .unwrap()
        .expect("the callback named the task");
    let stats = sim.stats();
    assert_eq!(stats.tasks_created, 1, "created once, never sent again");
    assert_eq!(task.task_id.as_str(), stats.tasks[0].task_id);
    assert!(task.callback_url.unwrap().ends_with(&nonce));
    let waited = client
        .wait(
            &task.task_id,
            WaitOptions::new().callbacks(hub).safety_poll(patient()),
        )
        .await
        .unwrap();
    assert_eq!(waited.state, State::Success);
}

#[tokio::test]
async fn recovery_passes_over_a_task_created_with_another_nonce() {
    let (hub, public) = receiver(ReceiverConfig::unsigned()).await;
    let sim = sim(|_| {}).await;
    let client = client(&sim);
    let nonce = hub.issue_nonce();
    replayed_to(&client, &hub, &public, &nonce).await;
    let options = WaitOptions::new().deadline(Some(Duration::from_millis(500)));
    let found = hub.recover(&client, &nonce, &options).await.unwrap();
    assert!(
        found.is_none(),
        "the replay did not adopt another task: {found:?}"
    );
}

#[tokio::test]
async fn a_resumed_wait_looks_at_once_for_a_callback_nobody_heard() {
    // The task was submitted and ended with no receiver up: its callback is gone.
    let sim = sim(|_| {}).await;
    let client = client(&sim);
    let public: Url = "http://127.0.0.1:9/hooks".parse().unwrap(); // nobody listens there
    let id = client
        .submit(&request(&public, &new_nonce()))
        .await
        .unwrap();
    for _ in 0..500 {
        if !sim.stats().callbacks.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let (hub, _) = receiver(ReceiverConfig::unsigned()).await;
    let options = WaitOptions::new()
        .callbacks(hub)
        .safety_poll(patient())
        .first_look_now();
    let task = tokio::time::timeout(Duration::from_secs(10), client.wait(&id, options))
        .await
        .expect("looked at once, not after the safety poll's minute")
        .unwrap();
    assert_eq!(task.state, State::Success);
    assert_eq!(polls(&sim, &id), 1);
}

/// A lost answer whose task cannot be read when its callback names it (here
/// `recordInfo is null` for its first 3 s): read again, never dropped.
#[tokio::test]
async fn a_task_named_but_not_readable_yet_is_read_again() {
    let (hub, public) = receiver(ReceiverConfig::unsigned()).await;
    let sim = sim(|c| {
        c.faults.create_task.reset_after = 1.0;
        c.faults.null_record = 1.0;
        c.faults.null_record_ms = 3000;
    })
    .await;
    let client = client(&sim);
    let nonce = hub.issue_nonce();
    lost_answer(&client, &public, &nonce).await;
    let options = WaitOptions::new().deadline(Some(Duration::from_secs(60)));
    let task = hub
        .recover(&client, &nonce, &options)
        .await
        .unwrap()
        .expect("read again once visible");
    let stats = sim.stats();
    assert_eq!(stats.tasks_created, 1);
    assert_eq!(task.task_id.as_str(), stats.tasks[0].task_id);
}

/// The same task never readable before the deadline: the error names it,
/// and the hub still has it, so its id reaches the user.
#[tokio::test]
async fn a_task_named_but_never_readable_is_given_back_in_the_error() {
    let (hub, public) = receiver(ReceiverConfig::unsigned()).await;
    let sim = sim(|c| {
        c.faults.create_task.reset_after = 1.0;
        c.faults.null_record = 1.0;
        c.faults.null_record_ms = 600_000;
    })
    .await;
    let client = client(&sim);
    let nonce = hub.issue_nonce();
    assert!(client.submit(&request(&public, &nonce)).await.is_err());
    until_callbacks(&sim, 1).await;
    let options = WaitOptions::new().deadline(Some(Duration::from_secs(3)));
    let error = hub
        .recover(&client, &nonce, &options)
        .await
        .expect_err("nothing confirmed: the read's error");
    let created = sim.stats().tasks[0].task_id.clone();
    assert_eq!(
        error.task_id().map(|t| t.to_string()),
        Some(created.clone()),
        "{error}"
    );
    assert_eq!(hub.tasks_for_nonce(&nonce)[0].as_str(), created);
}

/// Another task's callback replayed to the nonce's URL *before* the real one
/// comes: the real one is still heard and recovered.
#[tokio::test]
async fn a_replay_on_the_nonce_does_not_hide_the_real_callback() {
    let (hub, public) = receiver(ReceiverConfig::unsigned()).await;
    let sim = sim(|_| {}).await;
    let client = client(&sim);
    let nonce = hub.issue_nonce();
    let other = replayed_to(&client, &hub, &public, &nonce).await;
    assert_eq!(hub.task_for_nonce(&nonce).as_ref(), Some(&other));
    let mut faults = sim.config().faults.clone();
    faults.create_task.reset_after = 1.0;
    sim.set_faults(faults).unwrap();
    lost_answer(&client, &public, &nonce).await;
    let options = WaitOptions::new().deadline(Some(Duration::from_secs(30)));
    let task = hub
        .recover(&client, &nonce, &options)
        .await
        .unwrap()
        .expect("the real callback was heard after the replay");
    assert_ne!(task.task_id, other);
    assert!(task.callback_url.unwrap().ends_with(&nonce));
    assert_eq!(sim.stats().tasks_created, 2);
}

/// A success body whose result part is odd (a string code, an empty
/// resultJson) still ends the wait: the receiver reads only the task id, and
/// the state comes from the service.
#[tokio::test]
async fn a_callback_with_an_odd_body_is_still_heard() {
    let (hub, public) = receiver(ReceiverConfig::unsigned()).await;
    let sim = sim(|c| c.faults.callback.lost = 1.0).await;
    let client = client(&sim);
    let id = client
        .submit(&request(&public, &new_nonce()))
        .await
        .unwrap();
    while !client.get(&id).await.unwrap().state.is_terminal() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let wait = tokio::spawn({
        let (client, id) = (client.clone(), id.clone());
        async move {
            client
                .wait(
                    &id,
                    WaitOptions::new().callbacks(hub).safety_poll(patient()),
                )
                .await
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let body = serde_json::json!({"code": "200", "data": {"taskId": id.as_str(), "state": "success", "resultJson": ""}});
    let answer = kling_api_ext::reqwest::Client::new()
        .post(public)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200, "{:?}", answer.text().await);
    let task = tokio::time::timeout(Duration::from_secs(20), wait)
        .await
        .expect("ended by the callback, not the minute's safety poll")
        .unwrap()
        .unwrap();
    assert_eq!(task.state, State::Success);
}

/// With callbacks the first look may come only with the safety poll, past
/// the not-visible grace: a record still null then is "not visible yet",
/// not "no such task".
#[tokio::test]
async fn a_late_first_look_at_a_record_not_visible_yet_is_not_fatal() {
    let (hub, public) = receiver(ReceiverConfig::unsigned()).await;
    let sim = sim(|c| {
        c.faults.callback.lost = 1.0;
        c.faults.null_record = 1.0;
        c.faults.null_record_ms = 2500;
    })
    .await;
    let client = client(&sim);
    let id = client
        .submit(&request(&public, &new_nonce()))
        .await
        .unwrap();
    let options = WaitOptions::new()
        .callbacks(hub)
        .not_visible_grace(Duration::from_millis(500))
        .safety_poll(
            SafetyPoll::default()
                .cold_first(Duration::from_secs(1))
                .then(Duration::from_secs(2)),
        );
    let task = client.wait(&id, options).await.unwrap();
    assert_eq!(task.state, State::Success);
}

#[tokio::test]
async fn a_callback_reaches_the_receiver_verified() {
    use kling_fleet::receiver::{ReceiverConfig, router};
    let (app, mut events) = router(ReceiverConfig::signed("hook-secret").unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let callback_url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let sim = sim(|c| c.webhook_hmac_key = Some("hook-secret".into())).await;
    let client = client(&sim);
    let request = AvatarRequest::builder()
        .image(asset("face.png"))
        .audio(asset("hello.wav"))
        .callback_url(&callback_url)
        .build()
        .unwrap();
    let task_id = client.submit(&request).await.unwrap();
    let callback = tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(callback.task_id, task_id);
    assert!(callback.signed);
    // The body is not signed: the state comes from the service.
    let confirmed = callback.confirm(&client).await.unwrap();
    assert_eq!(confirmed.state, kling_api_ext::State::Success);
    assert!(confirmed.video_url().is_some());
    // The simulator records the callback once the receiver's answer is back,
    // which may be just after the event reached the channel.
    let mut callbacks = sim.stats().callbacks;
    for _ in 0..500 {
        if !callbacks.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        callbacks = sim.stats().callbacks;
    }
    let record = &callbacks[0];
    assert_eq!((record.signed, record.status), (true, Some(200)));
}

#[tokio::test]
async fn a_callback_signed_with_another_key_is_refused() {
    use kling_fleet::receiver::{ReceiverConfig, router};
    let (app, mut events) = router(ReceiverConfig::signed("our-key").unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let callback_url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let sim = sim(|c| c.webhook_hmac_key = Some("someone-elses-key".into())).await;
    let client = client(&sim);
    let request = AvatarRequest::builder()
        .image(asset("face.png"))
        .audio(asset("hello.wav"))
        .callback_url(&callback_url)
        .build()
        .unwrap();
    client.submit(&request).await.unwrap();
    for _ in 0..300 {
        if !sim.stats().callbacks.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(sim.stats().callbacks[0].status, Some(401));
    assert!(events.try_recv().is_err());
}
