//! Downloads: complete or nothing at the target path.

use std::time::Duration;

use kling_api_ext::{Error, RetryPolicy};
use sha2::Digest as _;

use crate::support::{Canned, KEY, ScriptedServer};

fn video() -> Vec<u8> {
    (0..200_000u32).map(|i| (i * 7 % 251) as u8).collect()
}

fn sha256(bytes: &[u8]) -> String {
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn leftovers(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".part"))
        .collect()
}

fn client(url: &str) -> kling_api_ext::Client {
    kling_api_ext::Client::builder()
        .api_key(KEY)
        .base_url(url)
        .retry(RetryPolicy {
            max_attempts: 4,
            initial_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(20),
            time_budget: Duration::from_secs(5),
        })
        .build()
        .unwrap()
}

/// A server for one file: `plan` says, per request, how many bytes to send
/// before cutting the connection (`None`: all), and whether ranges work.
async fn file_server(
    content: Vec<u8>,
    plan: Vec<Option<usize>>,
    ranges: bool,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/video.mp4", listener.local_addr().unwrap());
    let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = heads.clone();
    tokio::spawn(async move {
        let mut n = 0usize;
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut buf = vec![0u8; 8192];
            let read = socket.read(&mut buf).await.unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..read]).into_owned();
            log.lock().unwrap().push(head.clone());
            let start = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("range: bytes=")
                        .map(|r| r.trim_end_matches('-').trim().parse::<usize>().unwrap())
                })
                .filter(|_| ranges);
            let cut = plan.get(n).copied().flatten();
            n += 1;
            let (status, body) = match start {
                Some(s) => (
                    format!(
                        "206 Partial Content\r\ncontent-range: bytes {s}-{}/{}",
                        content.len() - 1,
                        content.len()
                    ),
                    &content[s..],
                ),
                None => ("200 OK".to_owned(), &content[..]),
            };
            let accept = if ranges {
                "accept-ranges: bytes\r\n"
            } else {
                ""
            };
            let out = format!(
                "HTTP/1.1 {status}\r\ncontent-type: video/mp4\r\ncontent-length: {}\r\n{accept}connection: close\r\n\r\n",
                body.len()
            );
            let _ = socket.write_all(out.as_bytes()).await;
            let send = cut.unwrap_or(body.len()).min(body.len());
            let _ = socket.write_all(&body[..send]).await;
            // Closing before Content-Length is reached: the client sees the body
            // end early, after exactly `send` bytes.
            let _ = socket.shutdown().await;
            drop(socket);
        }
    });
    (url, heads)
}

#[tokio::test]
async fn a_download_lands_whole_with_its_hash() {
    let content = video();
    let (url, _) = file_server(content.clone(), vec![None], true).await;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("avatar.mp4");
    let saved = client(&url)
        .download(&url.parse::<url::Url>().unwrap(), &target)
        .await
        .unwrap();
    assert_eq!(saved.bytes, content.len() as u64);
    assert_eq!(saved.sha256, sha256(&content));
    assert_eq!(std::fs::read(&target).unwrap(), content);
    assert_eq!(saved.retries, 0);
    assert!(leftovers(dir.path()).is_empty());
}

#[tokio::test]
async fn a_cut_transfer_resumes_with_range() {
    let content = video();
    let (url, heads) = file_server(
        content.clone(),
        vec![Some(50_000), Some(30_000), None],
        true,
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("avatar.mp4");
    let saved = client(&url)
        .download(&url.parse::<url::Url>().unwrap(), &target)
        .await
        .unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), content);
    assert_eq!(saved.sha256, sha256(&content));
    assert_eq!(saved.retries, 2);
    let heads = heads.lock().unwrap();
    assert!(!heads[0].to_ascii_lowercase().contains("range:"));
    assert!(
        heads[1]
            .to_ascii_lowercase()
            .contains("range: bytes=50000-"),
        "{}",
        heads[1]
    );
    assert!(
        heads[2]
            .to_ascii_lowercase()
            .contains("range: bytes=80000-"),
        "{}",
        heads[2]
    );
}

#[tokio::test]
async fn without_ranges_a_cut_transfer_starts_over() {
    let content = video();
    let (url, heads) = file_server(content.clone(), vec![Some(120_000), None], false).await;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("avatar.mp4");
    let saved = client(&url)
        .download(&url.parse::<url::Url>().unwrap(), &target)
        .await
        .unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), content);
    assert_eq!(saved.sha256, sha256(&content));
    assert!(
        !heads.lock().unwrap()[1]
            .to_ascii_lowercase()
            .contains("range:")
    );
}

#[tokio::test]
async fn a_transfer_that_keeps_breaking_leaves_nothing_at_the_target() {
    let content = video();
    let (url, _) = file_server(content, vec![Some(1000); 10], true).await;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("avatar.mp4");
    std::fs::write(&target, b"the previous video").unwrap();
    let error = client(&url)
        .download(&url.parse::<url::Url>().unwrap(), &target)
        .await
        .unwrap_err();
    assert!(error.is_retryable(), "{error:?}");
    // The old file is untouched: the target is only ever replaced whole.
    assert_eq!(std::fs::read(&target).unwrap(), b"the previous video");
    assert!(
        leftovers(dir.path()).is_empty(),
        "{:?}",
        leftovers(dir.path())
    );
}

#[tokio::test]
async fn an_expired_link_says_to_ask_for_a_fresh_one() {
    for status in [403, 404, 410] {
        let server = ScriptedServer::start(vec![Canned {
            status,
            headers: vec![],
            body: "gone".into(),
        }])
        .await;
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("avatar.mp4");
        let url: url::Url = format!("{}/k/t_1.mp4", server.url).parse().unwrap();
        let error = server.client().download(&url, &target).await.unwrap_err();
        assert!(
            matches!(error, Error::LinkExpired { status: s, .. } if s == status),
            "{error:?}"
        );
        assert!(error.to_string().contains("download_url()"), "{error}");
        assert_eq!(server.hits(), 1, "not retried");
        assert!(!target.exists());
        assert!(leftovers(dir.path()).is_empty());
    }
}

#[tokio::test]
async fn a_task_without_a_result_cannot_be_downloaded() {
    let server = ScriptedServer::start(vec![Canned::json(
        200,
        &crate::support::record("t-1", "generating"),
    )])
    .await;
    let client = server.client();
    let task = client
        .get(&kling_api_ext::TaskId::new("t-1").unwrap())
        .await
        .unwrap();
    let error = client
        .download(&task, std::env::temp_dir().join("never.mp4"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), "invalid_input");
}
