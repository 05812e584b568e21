//! Downloads: complete or nothing at the target path.

use std::time::Duration;

use kling_api_ext::{Error, RetryPolicy};
use sha2::Digest as _;

use crate::support::ScriptedClient as _;
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
        .retry(
            RetryPolicy::default()
                .max_attempts(4)
                .initial_delay(Duration::from_millis(10))
                .max_delay(Duration::from_millis(20))
                .time_budget(Duration::from_secs(5)),
        )
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
            // If-Range with another validator: the whole file (RFC 9110 §13.1.5).
            let same = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("if-range: ")
                        .map(str::to_owned)
                })
                .is_none_or(|tag| tag.trim() == "\"v1\"");
            let start = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("range: bytes=")
                        .map(|r| r.trim_end_matches('-').trim().parse::<usize>().unwrap())
                })
                .filter(|_| ranges && same);
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
                "HTTP/1.1 {status}\r\ncontent-type: video/mp4\r\ncontent-length: {}\r\netag: \"v1\"\r\n{accept}connection: close\r\n\r\n",
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
        .download(url.parse::<url::Url>().unwrap(), &target)
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
        .download(url.parse::<url::Url>().unwrap(), &target)
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
        .download(url.parse::<url::Url>().unwrap(), &target)
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
        .download(url.parse::<url::Url>().unwrap(), &target)
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

/// A server that answers each request with the next of `answers`: a head
/// (status line and headers, without the blank line) and the bytes to send
/// before closing. Records each request's head.
async fn raw_server(
    answers: Vec<(String, Vec<u8>)>,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/video.mp4", listener.local_addr().unwrap());
    let heads = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = heads.clone();
    tokio::spawn(async move {
        for (head, body) in answers {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut buf = vec![0u8; 8192];
            let read = socket.read(&mut buf).await.unwrap_or(0);
            log.lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf[..read]).to_ascii_lowercase());
            let _ = socket
                .write_all(format!("{head}\r\nconnection: close\r\n\r\n").as_bytes())
                .await;
            let _ = socket.write_all(&body).await;
            let _ = socket.shutdown().await;
        }
    });
    (url, heads)
}

fn ok_head(len: usize, etag: &str) -> String {
    format!(
        "HTTP/1.1 200 OK\r\ncontent-type: video/mp4\r\ncontent-length: {len}\r\naccept-ranges: bytes\r\netag: {etag}"
    )
}

#[tokio::test]
async fn a_file_that_changed_between_attempts_is_never_spliced() {
    let old = video();
    let new: Vec<u8> = (0..150_000u32).map(|i| (i * 13 % 241) as u8).collect();
    // A server that honours If-Range answers 200 with the new file.
    let (url, heads) = raw_server(vec![
        (ok_head(old.len(), "\"a\""), old[..50_000].to_vec()),
        (ok_head(new.len(), "\"b\""), new.clone()),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("avatar.mp4");
    let saved = client(&url)
        .download(url.parse::<url::Url>().unwrap(), &target)
        .await
        .unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), new);
    assert_eq!(saved.sha256, sha256(&new));
    let heads = heads.lock().unwrap().clone();
    assert!(heads[1].contains("range: bytes=50000-"), "{}", heads[1]);
    assert!(heads[1].contains("if-range: \"a\""), "{}", heads[1]);

    // A server that ignores If-Range sends a range of the new file: its total
    // length differs from the first answer's, so the download starts over.
    let (url, heads) = raw_server(vec![
        (ok_head(old.len(), "\"a\""), old[..50_000].to_vec()),
        (
            format!(
                "HTTP/1.1 206 Partial Content\r\ncontent-type: video/mp4\r\ncontent-length: {}\r\ncontent-range: bytes 50000-{}/{}\r\netag: \"b\"",
                new.len() - 50_000,
                new.len() - 1,
                new.len()
            ),
            new[50_000..].to_vec(),
        ),
        (ok_head(new.len(), "\"b\""), new.clone()),
    ])
    .await;
    let target = dir.path().join("again.mp4");
    client(&url)
        .download(url.parse::<url::Url>().unwrap(), &target)
        .await
        .unwrap();
    assert_eq!(
        std::fs::read(&target).unwrap(),
        new,
        "not old[..50000] + new[50000..]"
    );
    let heads = heads.lock().unwrap().clone();
    assert_eq!(heads.len(), 3);
    assert!(!heads[2].contains("range:"), "a fresh start: {}", heads[2]);
}

#[tokio::test]
async fn without_a_validator_a_cut_transfer_starts_over() {
    let content = video();
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: video/mp4\r\ncontent-length: {}\r\naccept-ranges: bytes",
        content.len()
    );
    let (url, heads) = raw_server(vec![
        (head.clone(), content[..60_000].to_vec()),
        (head, content.clone()),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("avatar.mp4");
    client(&url)
        .download(url.parse::<url::Url>().unwrap(), &target)
        .await
        .unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), content);
    assert!(
        !heads.lock().unwrap()[1].contains("range:"),
        "nothing proves the object is the same: no Range"
    );
}

/// An MP4 of `len` bytes: an ftyp box, then an mdat box filling the rest.
fn mp4(len: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&24u32.to_be_bytes());
    out.extend_from_slice(b"ftypisom");
    out.resize(24, 0);
    out.extend_from_slice(&((len - 24) as u32).to_be_bytes());
    out.extend_from_slice(b"mdat");
    while out.len() < len {
        out.push((out.len() % 251) as u8);
    }
    out
}

#[tokio::test]
async fn a_body_cut_short_without_content_length_is_not_taken_as_complete() {
    let content = mp4(120_000);
    let head = "HTTP/1.1 200 OK\r\ncontent-type: video/mp4".to_owned();
    let (url, heads) = raw_server(vec![
        (head.clone(), content[..70_000].to_vec()),
        (head, content.clone()),
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("avatar.mp4");
    let saved = client(&url)
        .download(url.parse::<url::Url>().unwrap(), &target)
        .await
        .unwrap();
    assert_eq!(saved.bytes, content.len() as u64);
    assert_eq!(std::fs::read(&target).unwrap(), content);
    assert_eq!(saved.retries, 1);
    assert_eq!(heads.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn a_presigned_query_stays_out_of_download_errors() {
    let server = ScriptedServer::start(vec![Canned {
        status: 404,
        headers: vec![],
        body: "gone".into(),
    }])
    .await;
    let url: url::Url = format!(
        "{}/k/t_1.mp4?X-Amz-Signature=deadbeefsecret&X-Amz-Credential=AKIA",
        server.url
    )
    .parse()
    .unwrap();
    let error = server
        .client()
        .download(&url, std::env::temp_dir().join("never-1.mp4"))
        .await
        .unwrap_err();
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains("deadbeefsecret"), "{shown}");
    assert!(shown.contains("/k/t_1.mp4"), "{shown}");

    // A connection error names the URL too (reqwest's message): without the query.
    let base = format!("http://127.0.0.1:{}", crate::support::closed_port());
    let url: url::Url = format!("{base}/v.mp4?sig=deadbeefsecret").parse().unwrap();
    let error = client(&base)
        .download(&url, std::env::temp_dir().join("never-2.mp4"))
        .await
        .unwrap_err();
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains("deadbeefsecret"), "{shown}");
}
