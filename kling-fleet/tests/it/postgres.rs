//! The PostgreSQL creation limiter, on a throwaway cluster
//! (`kling_testkit::TestPg`): what many hosts sharing one database see.

use std::sync::Arc;
use std::time::Duration;

use kling_api_ext::Error;
use kling_api_ext::limit::{AccountKey, Acquire, CreationLimiter, LimitWait, RateLimit, SlotId};
use kling_fleet::PgLimiter;
use kling_testkit::TestPg;

const LEASE: Duration = Duration::from_secs(60);

fn account() -> AccountKey {
    AccountKey::new("sk-test", "http://127.0.0.1:1")
}

/// One host's limiter: its own pool on the shared database.
fn host(pg: &TestPg, max: u32, window: Duration) -> PgLimiter {
    PgLimiter::connect_lazy(pg.url(), &account(), RateLimit::new(max, window)).unwrap()
}

fn slot(answer: Acquire) -> SlotId {
    match answer {
        Acquire::Slot(slot) => slot,
        other => panic!("no slot: {other:?}"),
    }
}

#[tokio::test]
async fn hosts_share_one_window_counted_from_the_answers() {
    let Some(pg) = TestPg::start("hosts_share_one_window_counted_from_the_answers") else {
        return;
    };
    let window = Duration::from_secs(2);
    let (a, b) = (host(&pg, 2, window), host(&pg, 2, window));
    let first = slot(a.try_acquire(LEASE).await.unwrap());
    let second = slot(b.try_acquire(LEASE).await.unwrap());
    assert_ne!(first, second);
    // Both in flight: one answered now would free a window from now.
    match a.try_acquire(LEASE).await.unwrap() {
        Acquire::Wait {
            wait,
            why: LimitWait::Window,
        } => {
            assert!(wait <= window && wait > window / 2, "{wait:?}")
        }
        other => panic!("{other:?}"),
    }
    b.release(first).await.unwrap();
    let wait = match a.try_acquire(LEASE).await.unwrap() {
        Acquire::Wait { wait, .. } => wait,
        other => panic!("a slot a window would not allow: {other:?}"),
    };
    assert!(wait <= window, "{wait:?}");
    tokio::time::sleep(wait).await;
    slot(a.try_acquire(LEASE).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_asks_from_many_hosts_never_take_more_than_max() {
    let Some(pg) = TestPg::start("concurrent_asks_from_many_hosts_never_take_more_than_max") else {
        return;
    };
    let hosts: Vec<Arc<PgLimiter>> = (0..8)
        .map(|_| Arc::new(host(&pg, 5, Duration::from_secs(600))))
        .collect();
    let asks: Vec<_> = (0..400)
        .map(|i| {
            let limiter = hosts[i % hosts.len()].clone();
            tokio::spawn(async move { limiter.try_acquire(LEASE).await.unwrap() })
        })
        .collect();
    let mut granted = Vec::new();
    for ask in asks {
        if let Acquire::Slot(slot) = ask.await.unwrap() {
            granted.push(slot);
        }
    }
    granted.sort_by_key(|s| s.get());
    granted.dedup();
    assert_eq!(granted.len(), 5, "{granted:?}");
}

#[tokio::test]
async fn a_dead_hosts_slot_frees_itself_when_its_lease_ends() {
    let Some(pg) = TestPg::start("a_dead_hosts_slot_frees_itself_when_its_lease_ends") else {
        return;
    };
    let window = Duration::from_millis(500);
    let lease = Duration::from_millis(800);
    let dead = host(&pg, 1, window);
    slot(dead.try_acquire(lease).await.unwrap());
    drop(dead); // never released
    let alive = host(&pg, 1, window);
    let wait = match alive.try_acquire(lease).await.unwrap() {
        Acquire::Wait { wait, .. } => wait,
        other => panic!("the dead host's slot is still leased: {other:?}"),
    };
    assert!(wait <= window, "{wait:?}");
    // The lease ends, then the window after it: free.
    tokio::time::sleep(lease + window).await;
    slot(alive.try_acquire(lease).await.unwrap());
}

#[tokio::test]
async fn a_pause_holds_every_host_and_only_grows() {
    let Some(pg) = TestPg::start("a_pause_holds_every_host_and_only_grows") else {
        return;
    };
    let (a, b) = (
        host(&pg, 20, Duration::from_secs(10)),
        host(&pg, 20, Duration::from_secs(10)),
    );
    a.pause(Duration::from_secs(30)).await.unwrap();
    b.pause(Duration::from_secs(1)).await.unwrap();
    match b.try_acquire(LEASE).await.unwrap() {
        Acquire::Wait {
            wait,
            why: LimitWait::Paused,
        } => {
            assert!(
                wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
                "{wait:?}"
            )
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        a.rest_of_window().await.unwrap(),
        Duration::from_secs(10),
        "no answer in the window yet"
    );
}

#[tokio::test]
async fn an_unreachable_database_fails_the_submit_and_nothing_is_sent() {
    let Some(mut pg) =
        TestPg::start("an_unreachable_database_fails_the_submit_and_nothing_is_sent")
    else {
        return;
    };
    let sim = kling_testkit::sim("sk-test", |_| {}).await;
    let client = kling_api_ext::Client::builder()
        .api_key("sk-test")
        .base_url(sim.base_url())
        .upload_base_url(sim.upload_base_url())
        .rate_limiter_per_account(PgLimiter::per_account(pg.url()))
        .preflight(false)
        .build()
        .unwrap();
    let request = kling_api_ext::AvatarRequest::builder()
        .image("https://cdn.example.com/face.png")
        .audio("https://cdn.example.com/hello.mp3")
        .build()
        .unwrap();
    // Reachable: the schema is created on first use and the task is created.
    client.submit(&request).await.unwrap();
    pg.stop();
    let error = client.submit(&request).await.unwrap_err();
    assert!(matches!(error, Error::Limiter { .. }), "{error:?}");
    assert!(error.is_not_taken(), "nothing was sent: {error}");
    assert!(error.to_string().contains("nothing was sent"), "{error}");
    assert_eq!(sim.stats().tasks_created, 1);
    pg.restart();
    client.submit(&request).await.unwrap();
    assert_eq!(sim.stats().tasks_created, 2);
}

#[test]
fn a_url_that_cannot_be_read_is_refused_without_repeating_it() {
    let error = kling_api_ext::Client::builder()
        .api_key("sk-test")
        .rate_limiter_per_account(PgLimiter::per_account(
            "postgres://user:s3cret@host:notaport/db",
        ))
        .build()
        .unwrap_err();
    let text = error.to_string();
    assert!(text.contains("database URL"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
}

/// A database the `kling` CLI migrated before the schema had one migrator:
/// the SDK's table in `kling._migrations` (version 1), the CLI's four in
/// `kling._cli_migrations` (versions 1-4). It is adopted: no migration runs
/// twice, nothing is lost, and the old record is gone.
#[tokio::test]
async fn a_database_migrated_by_the_two_old_migrators_is_adopted() {
    use sqlx::SqlSafeStr;
    use sqlx::migrate::{Migration, MigrationType, Migrator};
    let Some(pg) = TestPg::start("a_database_migrated_by_the_two_old_migrators_is_adopted") else {
        return;
    };
    let pool = kling_fleet::pg::pool(pg.url()).unwrap();
    let old = |table: &'static str, files: &[(i64, &'static str, &'static str)]| {
        let mut migrator = Migrator::with_migrations(
            files
                .iter()
                .map(|(version, name, sql)| {
                    Migration::new(
                        *version,
                        std::borrow::Cow::Borrowed(*name),
                        MigrationType::Simple,
                        sql.into_sql_str(),
                        false,
                    )
                })
                .collect(),
        );
        migrator.create_schema("kling");
        migrator.dangerous_set_table_name(table);
        migrator
    };
    old(
        "kling._migrations",
        &[(
            1,
            "rate limit",
            include_str!("../../migrations/0001_rate_limit.sql"),
        )],
    )
    .run(&pool)
    .await
    .unwrap();
    old(
        "kling._cli_migrations",
        &[
            (1, "jobs", include_str!("../../migrations/0002_jobs.sql")),
            (2, "speed", include_str!("../../migrations/0003_speed.sql")),
            (3, "nonce", include_str!("../../migrations/0004_nonce.sql")),
            (
                4,
                "identity",
                include_str!("../../migrations/0005_identity.sql"),
            ),
        ],
    )
    .run(&pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO kling.identity (id) VALUES ('store-1')")
        .execute(&pool)
        .await
        .unwrap();

    // Twice: a second worker starting later finds nothing left to adopt.
    for _ in 0..2 {
        kling_fleet::pg::migrate(&pool).await.unwrap();
    }
    let versions: Vec<(i64,)> =
        sqlx::query_as("SELECT version FROM kling._migrations ORDER BY version")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(versions, vec![(1,), (2,), (3,), (4,), (5,)]);
    let old_record: (Option<String>,) =
        sqlx::query_as("SELECT to_regclass('kling._cli_migrations')::text")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(old_record.0, None);
    let after: (String,) = sqlx::query_as("SELECT id FROM kling.identity")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(after.0, "store-1", "the store keeps its identity");
}

/// Workers share what their waits learn, each sample once, per service.
#[tokio::test]
async fn workers_share_what_their_waits_learn_each_sample_once() {
    use kling_api_ext::wait::DurationModel;
    use kling_fleet::pg::share_speed;
    let Some(pg) = TestPg::start("workers_share_what_their_waits_learn_each_sample_once") else {
        return;
    };
    let pool = kling_fleet::pg::pool(pg.url()).unwrap();
    kling_fleet::pg::migrate(&pool).await.unwrap();
    let service = "http://127.0.0.1:1/";
    let (model_a, model_b) = (DurationModel::default(), DurationModel::default());
    let (mut seen_a, mut seen_b) = (0, 0);
    for generation in [20, 30, 40] {
        model_a.learn(Duration::from_secs(10), Duration::from_secs(generation));
    }
    assert_eq!(
        share_speed(&pool, "a", service, &model_a, &mut seen_a)
            .await
            .unwrap(),
        0
    );
    // B learns A's three samples: enough for an estimate of its own.
    assert_eq!(
        share_speed(&pool, "b", service, &model_b, &mut seen_b)
            .await
            .unwrap(),
        3
    );
    assert_eq!(
        model_b.expected_generation(Duration::from_secs(10)),
        Some(Duration::from_secs(30))
    );
    // Nothing twice: neither its own samples nor the ones it took before.
    assert_eq!(
        share_speed(&pool, "b", service, &model_b, &mut seen_b)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        share_speed(&pool, "a", service, &model_a, &mut seen_a)
            .await
            .unwrap(),
        0
    );
    assert_eq!(model_b.samples().len(), 3);
    // Another service's speed stays apart.
    let model_c = DurationModel::default();
    assert_eq!(
        share_speed(&pool, "b", "http://other/", &model_c, &mut 0)
            .await
            .unwrap(),
        0
    );
}

/// The one rule that matters most: an intent needs a live lease, so a worker
/// that stalled past its lease cannot send a second createTask for a job
/// another worker took over.
#[tokio::test]
async fn the_intent_needs_a_live_lease_so_one_createtask_per_intent() {
    use kling_fleet::jobs::{Claimed, JobEvent, JobStore, JobStoreError};
    let Some(pg) = TestPg::start("the_intent_needs_a_live_lease_so_one_createtask_per_intent")
    else {
        return;
    };
    let pool = kling_fleet::pg::pool(pg.url()).unwrap();
    kling_fleet::pg::migrate(&pool).await.unwrap();
    // Long enough that a loaded machine does not end it early.
    let lease = Duration::from_secs(2);
    let worker = |name: &str| JobStore::with_pool(pool.clone(), "jobs.jsonl", name, lease);
    let job = || Some(Claimed::Submit("job-01".into(), "{}".into()));
    let intent = JobEvent::Intent {
        input: "{}",
        nonce: None,
    };
    let slow = worker("slow");
    slow.load(&[("job-01".into(), 1, "{}".into())])
        .await
        .unwrap();
    assert_eq!(slow.claim(&[], true).await.unwrap(), job());
    // The slow worker stalls (its renewals stop) past its lease.
    drop(slow);
    tokio::time::sleep(lease + Duration::from_millis(500)).await;
    let fast = worker("fast");
    assert_eq!(fast.claim(&[], true).await.unwrap(), job());
    fast.record("job-01", intent).await.unwrap();
    // The stalled worker comes back: its intent is refused, nothing is sent.
    let slow = worker("slow");
    let refused = slow.record("job-01", intent).await.unwrap_err();
    assert!(
        matches!(refused, JobStoreError::LeaseLost { .. }),
        "{refused}"
    );
}
