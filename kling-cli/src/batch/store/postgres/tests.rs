//! The fleet's job store on a throwaway cluster: claims, leases, and the
//! one rule that matters most (at most one createTask per intent).

use std::time::Duration;

use kling_testkit::TestPg;

use super::{Claimed, PgJobs};
use crate::batch::journal::{Event, now_ms};
use crate::batch::store::StoreError;

/// The lease of a worker that dies in a test: what the others must wait out
/// (long enough that a loaded machine does not end it early).
const DEAD: Duration = Duration::from_secs(2);
/// Past the end of a [`DEAD`] lease.
const PAST: Duration = Duration::from_millis(2500);

/// A worker of batch `batch` on the store at `url`, migrated.
async fn open_with(
    url: &str,
    batch: &str,
    worker: &str,
    lease: Duration,
) -> Result<PgJobs, StoreError> {
    Ok(PgJobs::with_pool(
        super::connect(url).await?,
        batch,
        worker,
        lease,
    ))
}

fn manifest(n: usize) -> Vec<(String, usize, String)> {
    (1..=n)
        .map(|i| (format!("job-{i:02}"), i, format!("{{\"prompt\":\"{i}\"}}")))
        .collect()
}

async fn worker(pg: &TestPg, name: &str, lease: Duration) -> PgJobs {
    open_with(pg.url(), "jobs.jsonl", name, lease)
        .await
        .unwrap()
}

fn intent(id: &str) -> Event {
    Event::Intent {
        id: id.into(),
        input: "{}".into(),
        nonce: None,
        service: None,
        at: now_ms(),
    }
}

fn id(claimed: &Claimed) -> &str {
    match claimed {
        Claimed::Submit(id, _) | Claimed::Wait(id, _) => id,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claims_take_one_job_each_and_never_the_same() {
    let Some(pg) = TestPg::start("concurrent_claims_take_one_job_each_and_never_the_same") else {
        return;
    };
    let first = worker(&pg, "w0", Duration::from_secs(60)).await;
    assert_eq!(first.load(&manifest(40)).await.unwrap(), 40);
    // Loading again (another worker, the same manifest) adds nothing.
    assert_eq!(first.load(&manifest(40)).await.unwrap(), 0);
    let mut handles = Vec::new();
    for w in 0..6 {
        let url = pg.url().to_owned();
        handles.push(tokio::spawn(async move {
            let jobs = open_with(
                &url,
                "jobs.jsonl",
                &format!("w{w}"),
                Duration::from_secs(60),
            )
            .await
            .unwrap();
            let mut mine = Vec::new();
            while let Some(claimed) = jobs.claim(&[], true).await.unwrap() {
                mine.push(id(&claimed).to_owned());
            }
            (format!("w{w}"), mine)
        }));
    }
    let mut all = Vec::new();
    let rows_before = first.rows().await.unwrap();
    for handle in handles {
        let (name, mine) = handle.await.unwrap();
        let rows = first.rows().await.unwrap();
        // Each claim took exactly one job: the rows owned match the claims.
        let owned = rows
            .values()
            .filter(|r| r.owner.as_deref() == Some(name.as_str()))
            .count();
        assert_eq!(owned, mine.len(), "{name}");
        all.extend(mine);
    }
    assert_eq!(rows_before.len(), 40);
    let claimed = all.len();
    all.sort();
    all.dedup();
    assert_eq!(
        (claimed, all.len()),
        (40, 40),
        "a job was claimed twice or not at all"
    );
}

#[tokio::test]
async fn a_worker_dead_between_intent_and_answer_leaves_the_job_unknown_never_to_do() {
    let Some(pg) =
        TestPg::start("a_worker_dead_between_intent_and_answer_leaves_the_job_unknown_never_to_do")
    else {
        return;
    };
    let dead = worker(&pg, "dead", DEAD).await;
    dead.load(&manifest(1)).await.unwrap();
    dead.claim(&[], true).await.unwrap().unwrap();
    super::record(&dead, &intent("job-01")).await.unwrap();
    drop(dead); // SIGKILL: no answer recorded, no release
    let alive = worker(&pg, "alive", DEAD).await;
    // While the lease runs, the job is the dead worker's: nothing to claim.
    assert_eq!(alive.claim(&[], true).await.unwrap(), None);
    tokio::time::sleep(PAST).await;
    assert_eq!(alive.sweep().await.unwrap(), 1);
    assert_eq!(
        alive.claim(&[], true).await.unwrap(),
        None,
        "never to do again"
    );
    let rows = alive.rows().await.unwrap();
    assert_eq!(rows["job-01"].state, "unknown");
    assert!(
        rows["job-01"]
            .error
            .as_deref()
            .unwrap_or("")
            .contains("dead"),
        "{:?}",
        rows["job-01"]
    );
}

#[tokio::test]
async fn a_running_job_is_taken_over_when_its_worker_dies_and_released_ones_at_once() {
    let Some(pg) =
        TestPg::start("a_running_job_is_taken_over_when_its_worker_dies_and_released_ones_at_once")
    else {
        return;
    };
    let dead = worker(&pg, "dead", DEAD).await;
    dead.load(&manifest(2)).await.unwrap();
    for job in ["job-01", "job-02"] {
        dead.claim(&[], true).await.unwrap().unwrap();
        super::record(&dead, &intent(job)).await.unwrap();
        super::record(
            &dead,
            &Event::Submitted {
                id: job.into(),
                task_id: format!("task-{job}"),
                at: now_ms(),
            },
        )
        .await
        .unwrap();
    }
    // One is given back by a clean stop; the other's worker dies.
    dead.release("job-02").await.unwrap();
    drop(dead);
    let alive = worker(&pg, "alive", DEAD).await;
    assert_eq!(
        alive.claim(&[], true).await.unwrap(),
        Some(Claimed::Wait("job-02".into(), "task-job-02".into())),
        "released: anyone's at once"
    );
    assert_eq!(
        alive.claim(&[], true).await.unwrap(),
        None,
        "job-01 is still leased"
    );
    tokio::time::sleep(PAST).await;
    assert_eq!(
        alive.claim(&[], true).await.unwrap(),
        Some(Claimed::Wait("job-01".into(), "task-job-01".into()))
    );
    // Renewals (every third of the lease) keep it alive past its length.
    tokio::time::sleep(DEAD * 2).await;
    assert!(alive.holds("job-01").await.unwrap());
    let rows = alive.rows().await.unwrap();
    assert_eq!(rows["job-01"].task_ids, vec!["task-job-01".to_owned()]);
}

#[tokio::test]
async fn a_kill_while_waiting_to_retry_an_attempt_not_taken_leaves_the_job_to_do() {
    let Some(pg) =
        TestPg::start("a_kill_while_waiting_to_retry_an_attempt_not_taken_leaves_the_job_to_do")
    else {
        return;
    };
    let dead = worker(&pg, "dead", DEAD).await;
    dead.load(&manifest(1)).await.unwrap();
    dead.claim(&[], true).await.unwrap().unwrap();
    super::record(&dead, &intent("job-01")).await.unwrap();
    let not_taken = Event::NotTaken {
        id: "job-01".into(),
        kind: "maintenance".into(),
        message: "455".into(),
        retrying: true,
        at: now_ms(),
    };
    super::record(&dead, &not_taken).await.unwrap();
    // Still this worker's: its next attempt records its intent again.
    let other = worker(&pg, "other", DEAD).await;
    assert_eq!(other.claim(&[], true).await.unwrap(), None);
    super::record(&dead, &intent("job-01")).await.unwrap();
    super::record(&dead, &not_taken).await.unwrap();
    drop(dead); // killed during the backoff
    tokio::time::sleep(PAST).await;
    other.sweep().await.unwrap();
    assert_eq!(
        other.claim(&[], true).await.unwrap(),
        // The input its last intent recorded.
        Some(Claimed::Submit("job-01".into(), "{}".into())),
        "to do, not unknown"
    );
}
