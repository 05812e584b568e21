use super::*;

#[test]
fn http_429_is_rate_limited_with_its_retry_after() {
    let error = map_error_body(
        Operation::CreateTask,
        None,
        429,
        Some(Duration::from_secs(4)),
        b"<html>slow</html>",
    );
    assert_eq!(error.kind(), "rate_limited");
    assert_eq!(error.retry_after(), Some(Duration::from_secs(4)));
}

#[test]
fn an_error_status_carrying_the_envelope_maps_its_code() {
    let error = map_error_body(
        Operation::GetTask,
        None,
        503,
        None,
        br#"{"code":455,"msg":"maintenance"}"#,
    );
    assert_eq!(error.kind(), "maintenance");
    let error = map_error_body(
        Operation::GetTask,
        None,
        500,
        None,
        br#"{"code":500,"message":"boom"}"#,
    );
    assert_eq!(
        error.to_string(),
        "recordInfo: server error (code 500): boom"
    );
}

#[test]
fn html_keeps_status_and_body() {
    let error = map_error_body(
        Operation::Credits,
        None,
        520,
        None,
        b"<!DOCTYPE html><p>cloudflare</p>",
    );
    match error {
        Error::UnexpectedResponse { status, body, .. } => {
            assert_eq!(status, 520);
            assert_eq!(body, "<!DOCTYPE html><p>cloudflare</p>");
        }
        other => panic!("{other:?}"),
    }
}

/// Found by `cargo fuzz run envelope` (artifacts/envelope/crash-1c3752ec…):
/// 1,024 bytes that are not UTF-8 turned into a 3 KiB "prefix".
#[test]
fn body_prefix_of_invalid_utf8_stays_within_a_kib() {
    for body in [
        vec![0xFFu8; 1024],
        vec![0xFFu8; 5000],
        [b"ok".as_slice(), &[0xC3; 2000]].concat(),
    ] {
        let prefix = body_prefix(&body);
        assert!(
            prefix.len() <= 1024 + '…'.len_utf8(),
            "{} bytes",
            prefix.len()
        );
        assert!(prefix.ends_with('…'));
    }
}

#[test]
fn body_prefix_is_at_most_a_kib_and_keeps_characters_whole() {
    let body = "é".repeat(2000);
    let prefix = body_prefix(body.as_bytes());
    assert!(prefix.len() <= 1024 + '…'.len_utf8() + 3);
    assert!(prefix.ends_with('…'));
    assert_eq!(body_prefix(b"short"), "short");
}
