use super::*;
use crate::lifecycle::State;

const SUCCESS: &str = r#"{"code":200,"msg":"Playground task completed successfully.","data":{"taskId":"task1","model":"kling/ai-avatar-v1-pro","state":"success","param":"{}","resultJson":"{\"resultUrls\":[\"https://files.example.com/v.mp4\"]}","costTime":89,"completeTime":1787567409000,"createTime":1787567320000,"updateTime":1787567409000,"creditsConsumed":61}}"#;
const FAILURE: &str = r#"{"code":501,"msg":"Playground task failed.","data":{"taskId":"task1","model":"m","state":"fail","param":"{}","failCode":"400","failMsg":"bad audio","costTime":89,"creditsConsumed":0}}"#;

fn headers(timestamp: &str, signature: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(TIMESTAMP_HEADER, timestamp.parse().unwrap());
    h.insert(SIGNATURE_HEADER, signature.parse().unwrap());
    h
}

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(secs)
}

/// Known answers computed independently of this code, with:
/// `python3 -c 'import hmac,hashlib,base64; print(base64.b64encode(hmac.new(b"secret", b"task1.1700000000", hashlib.sha256).digest()).decode())'`
/// and `printf 'task1.1700000000' | openssl dgst -sha256 -hmac secret -binary | base64`.
const KNOWN: &str = "Bpi3jhs3QgziHpYQ8zsyMocxMn4eY89lHCR9BLAl8zM=";

#[test]
fn signatures_match_independent_known_answers() {
    assert_eq!(sign_callback(b"secret", "task1", 1_700_000_000), KNOWN);
    // python3 -c 'import hmac,hashlib,base64; print(base64.b64encode(hmac.new(b"whsec_test",
    //   b"c420e5a6f3b84ad2b6c1e4d0a9f7b311.1787567409", hashlib.sha256).digest()).decode())'
    assert_eq!(
        sign_callback(
            b"whsec_test",
            "c420e5a6f3b84ad2b6c1e4d0a9f7b311",
            1_787_567_409
        ),
        "3z0b/erIg9DUkrHt3iGuDCMrjreTRxsrIYxt6xhvOxg="
    );
}

#[test]
fn a_good_callback_verifies_and_parses() {
    let callback = verify_callback(
        &headers("1700000000", KNOWN),
        SUCCESS.as_bytes(),
        b"secret",
        at(1_700_000_100),
        &VerifyOptions::default(),
    )
    .unwrap();
    assert!(callback.succeeded());
    assert_eq!(callback.code, 200);
    assert_eq!(callback.credits_consumed, Some(61.0));
    assert_eq!(callback.task.cost_time, Some(Duration::from_secs(89)));
}

#[test]
fn each_failure_has_its_error() {
    let opts = VerifyOptions::default();
    let now = at(1_700_000_000);
    let body = SUCCESS.as_bytes();
    let mut missing = headers("1700000000", KNOWN);
    missing.remove(SIGNATURE_HEADER);
    assert_eq!(
        verify_callback(&missing, body, b"secret", now, &opts),
        Err(WebhookError::MissingHeader(SIGNATURE_HEADER))
    );
    let mut missing = headers("1700000000", KNOWN);
    missing.remove(TIMESTAMP_HEADER);
    assert_eq!(
        verify_callback(&missing, body, b"secret", now, &opts),
        Err(WebhookError::MissingHeader(TIMESTAMP_HEADER))
    );
    assert_eq!(
        verify_callback(&headers("17e8", KNOWN), body, b"secret", now, &opts),
        Err(WebhookError::BadTimestamp("17e8".into()))
    );
    assert_eq!(
        verify_callback(
            &headers("1700000000", KNOWN),
            body,
            b"secret",
            at(1_700_000_301),
            &opts
        ),
        Err(WebhookError::StaleTimestamp {
            age_secs: 301,
            tolerance_secs: 300
        })
    );
    assert_eq!(
        verify_callback(
            &headers("1700000000", KNOWN),
            body,
            b"secret",
            at(1_699_999_699),
            &opts
        ),
        Err(WebhookError::FutureTimestamp {
            ahead_secs: 301,
            tolerance_secs: 300
        })
    );
    // Extreme timestamps are refused, not overflowed.
    assert!(matches!(
        verify_callback(
            &headers("-9223372036854775808", KNOWN),
            body,
            b"secret",
            now,
            &opts
        ),
        Err(WebhookError::StaleTimestamp { .. })
    ));
    assert!(matches!(
        verify_callback(
            &headers("9223372036854775807", KNOWN),
            body,
            b"secret",
            now,
            &opts
        ),
        Err(WebhookError::FutureTimestamp { .. })
    ));
    // Edges of the window pass.
    assert!(
        verify_callback(
            &headers("1700000000", KNOWN),
            body,
            b"secret",
            at(1_700_000_300),
            &opts
        )
        .is_ok()
    );
    assert!(
        verify_callback(
            &headers("1700000000", KNOWN),
            body,
            b"secret",
            at(1_699_999_700),
            &opts
        )
        .is_ok()
    );
    // Off: anything goes for time.
    let off = VerifyOptions { tolerance: None };
    assert!(
        verify_callback(
            &headers("1700000000", KNOWN),
            body,
            b"secret",
            at(2_000_000_000),
            &off
        )
        .is_ok()
    );
    assert_eq!(
        verify_callback(&headers("1700000000", KNOWN), body, b"wrong", now, &opts),
        Err(WebhookError::BadSignature)
    );
    assert_eq!(
        verify_callback(&headers("1700000001", KNOWN), body, b"secret", now, &opts),
        Err(WebhookError::BadSignature)
    );
    assert_eq!(
        verify_callback(
            &headers("1700000000", "not base64!"),
            body,
            b"secret",
            now,
            &opts
        ),
        Err(WebhookError::BadSignature)
    );
    let other_task = SUCCESS.replace("task1", "task2");
    assert_eq!(
        verify_callback(
            &headers("1700000000", KNOWN),
            other_task.as_bytes(),
            b"secret",
            now,
            &opts
        ),
        Err(WebhookError::BadSignature)
    );
    assert!(matches!(
        verify_callback(
            &headers("1700000000", KNOWN),
            b"<html>",
            b"secret",
            now,
            &opts
        ),
        Err(WebhookError::UnparseableBody(_))
    ));
    assert_eq!(
        verify_callback(
            &headers("1700000000", KNOWN),
            br#"{"code":200,"data":{}}"#,
            b"secret",
            now,
            &opts
        ),
        Err(WebhookError::MissingTaskId)
    );
}

#[test]
fn the_task_id_falls_back_as_documented() {
    let snake =
        r#"{"code":200,"msg":"ok","data":{"task_id":"task1","state":"fail","failCode":500}}"#;
    let top = r#"{"code":501,"taskId":"task1","data":{"state":"fail"}}"#;
    for body in [snake, top] {
        let c = verify_callback(
            &headers("1700000000", KNOWN),
            body.as_bytes(),
            b"secret",
            at(1_700_000_000),
            &VerifyOptions::default(),
        )
        .unwrap();
        assert_eq!(c.task.task_id.as_str(), "task1");
    }
}

/// Found by `cargo fuzz run callback`: a huge `costTime` panicked.
#[test]
fn absurd_numbers_do_not_panic() {
    let body = r#"{"code":501,"data":{"taskId":"t","state":"fail","costTime":1e300,"createTime":9223372036854775807}}"#;
    let c = Callback::parse(body.as_bytes()).unwrap();
    assert_eq!(c.task.cost_time, None);
}

#[test]
fn failure_bodies_parse() {
    let c = Callback::parse(FAILURE.as_bytes()).unwrap();
    assert!(!c.succeeded());
    assert_eq!((c.code, c.task.state.clone()), (501, State::Fail));
    assert_eq!(c.task.fail_code.as_deref(), Some("400"));
    assert_eq!(c.task.fail_msg.as_deref(), Some("bad audio"));
    assert_eq!(c.credits_consumed, Some(0.0));
    // Older bodies name the credits differently.
    let old = r#"{"code":200,"msg":"success","data":{"taskId":"t","state":"success","resultJson":"{\"resultUrls\":[\"https://x.test/v.mp4\"]}","consumeCredits":80,"remainedCredits":920.5}}"#;
    let c = Callback::parse(old.as_bytes()).unwrap();
    assert_eq!(
        (c.credits_consumed, c.remaining_credits),
        (Some(80.0), Some(920.5))
    );
}
