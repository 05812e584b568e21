use super::*;
use std::sync::atomic::{AtomicU64, Ordering};

const LEASE: Duration = Duration::from_secs(60);

struct Host {
    dir: tempfile::TempDir,
    now: Arc<AtomicU64>,
    account: AccountKey,
}

impl Host {
    fn new() -> Self {
        Host {
            dir: tempfile::tempdir().unwrap(),
            now: Arc::new(AtomicU64::new(1_000_000)),
            account: AccountKey::new("sk-test", "http://127.0.0.1:1"),
        }
    }

    /// One process's limiter, on the host's clock.
    fn process(&self, max: u32) -> FileLimiter {
        let now = self.now.clone();
        FileLimiter::new(
            self.dir.path(),
            &self.account,
            RateLimit::new(max, Duration::from_secs(10)),
        )
        .with_clock(move || now.load(Ordering::SeqCst))
    }

    fn advance(&self, d: Duration) {
        self.now.fetch_add(ms(d), Ordering::SeqCst);
    }
}

fn slot(answer: Acquire) -> SlotId {
    match answer {
        Acquire::Slot(slot) => slot,
        other => panic!("no slot: {other:?}"),
    }
}

fn wait(answer: Acquire) -> Duration {
    match answer {
        Acquire::Wait { wait, .. } => wait,
        other => panic!("a slot: {other:?}"),
    }
}

#[tokio::test]
async fn processes_share_one_window() {
    let host = Host::new();
    let (a, b) = (host.process(2), host.process(2));
    let first = slot(a.try_acquire(LEASE).await.unwrap());
    let second = slot(b.try_acquire(LEASE).await.unwrap());
    assert_ne!(first, second);
    // Both in flight: the earliest a slot can free is a window from now.
    assert_eq!(
        wait(a.try_acquire(LEASE).await.unwrap()),
        Duration::from_secs(10)
    );
    host.advance(Duration::from_secs(2));
    b.release(first).await.unwrap();
    host.advance(Duration::from_secs(3));
    assert_eq!(
        wait(b.try_acquire(LEASE).await.unwrap()),
        Duration::from_secs(7)
    );
    host.advance(Duration::from_secs(7));
    slot(a.try_acquire(LEASE).await.unwrap());
}

#[tokio::test]
async fn a_dead_processs_slot_frees_when_its_lease_ends() {
    let host = Host::new();
    let dead = host.process(1);
    slot(dead.try_acquire(LEASE).await.unwrap());
    drop(dead);
    let alive = host.process(1);
    host.advance(LEASE);
    // The lease ended now: it counts as answered now.
    assert_eq!(
        wait(alive.try_acquire(LEASE).await.unwrap()),
        Duration::from_secs(10)
    );
    host.advance(Duration::from_secs(10));
    slot(alive.try_acquire(LEASE).await.unwrap());
}

#[tokio::test]
async fn a_pause_holds_every_process() {
    let host = Host::new();
    let (a, b) = (host.process(20), host.process(20));
    a.pause(Duration::from_secs(4)).await.unwrap();
    let answer = b.try_acquire(LEASE).await.unwrap();
    assert_eq!(
        answer,
        Acquire::Wait {
            wait: Duration::from_secs(4),
            why: kling_api_ext::limit::LimitWait::Paused
        }
    );
    // A shorter pause does not cut a longer one short.
    b.pause(Duration::from_secs(1)).await.unwrap();
    host.advance(Duration::from_secs(2));
    assert_eq!(
        wait(a.try_acquire(LEASE).await.unwrap()),
        Duration::from_secs(2)
    );
}

#[tokio::test]
async fn an_unreadable_file_counts_as_a_full_window() {
    let host = Host::new();
    let a = host.process(3);
    std::fs::write(a.path(), b"{\"slots\":[{\"id\":").unwrap();
    assert_eq!(
        wait(a.try_acquire(LEASE).await.unwrap()),
        Duration::from_secs(10)
    );
    host.advance(Duration::from_secs(10));
    slot(a.try_acquire(LEASE).await.unwrap());
}

#[tokio::test]
async fn a_folder_that_cannot_be_written_fails_the_ask() {
    let host = Host::new();
    let blocker = host.dir.path().join("not-a-folder");
    std::fs::write(&blocker, b"").unwrap();
    let limiter = FileLimiter::new(&blocker, &host.account, RateLimit::DEFAULT);
    let error = limiter.try_acquire(LEASE).await.unwrap_err();
    assert!(error.to_string().contains("not-a-folder"), "{error}");
}

#[test]
fn concurrent_processes_never_take_more_than_max() {
    let host = Host::new();
    let granted = std::sync::Mutex::new(Vec::new());
    // Eight processes' threads asking at once, each reading and rewriting
    // the file: without the lock, two would read the same state.
    std::thread::scope(|scope| {
        for _ in 0..8 {
            let limiter = host.process(5);
            let granted = &granted;
            scope.spawn(move || {
                for _ in 0..4 {
                    let limit = limiter.limit;
                    let answer = limiter.locked(|state, now| take(state, now, limit, LEASE));
                    if let Acquire::Slot(slot) = answer.unwrap() {
                        granted.lock().unwrap().push(slot);
                    }
                }
            });
        }
    });
    let granted = granted.into_inner().unwrap();
    assert_eq!(granted.len(), 5, "{granted:?}");
    let distinct: std::collections::HashSet<_> = granted.iter().collect();
    assert_eq!(distinct.len(), 5);
}
