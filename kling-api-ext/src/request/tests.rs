use super::*;

const URL_IMAGE: &str = "https://cdn.example.com/face.png?X-Amz-Signature=abc&x=1";
const URL_AUDIO: &str = "https://cdn.example.com/hello.mp3";

fn urls() -> AvatarRequestBuilder {
    AvatarRequest::builder().image(URL_IMAGE).audio(URL_AUDIO)
}

#[test]
fn prompt_counts_characters_not_bytes() {
    let at_limit = "é".repeat(MAX_PROMPT_CHARS);
    assert_eq!(at_limit.len(), 2 * MAX_PROMPT_CHARS);
    let request = urls().prompt(at_limit.clone()).build().unwrap();
    assert_eq!(request.prompt(), at_limit);
    let over = "é".repeat(MAX_PROMPT_CHARS + 1);
    let error = urls().prompt(over).build().unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid prompt: the prompt has 5001 characters; at most 5000 are allowed"
    );
    // Four-byte characters too.
    assert!(urls().prompt("🙂".repeat(MAX_PROMPT_CHARS)).build().is_ok());
    assert!(
        urls()
            .prompt("🙂".repeat(MAX_PROMPT_CHARS + 1))
            .build()
            .is_err()
    );
}

#[test]
fn empty_prompt_is_allowed() {
    assert_eq!(urls().build().unwrap().prompt(), "");
    assert_eq!(urls().prompt("").build().unwrap().prompt(), "");
}

#[test]
fn urls_must_be_http_or_https_with_a_host() {
    for (bad, why) in [
        ("ftp://example.com/a.png", "the scheme is ftp"),
        ("file:///etc/passwd", "the scheme is file"),
        ("https://", "not a valid URL"),
        ("http:// spaced.example.com/a.png", "not a valid URL"),
    ] {
        let error = AvatarRequest::builder()
            .image(bad)
            .audio(URL_AUDIO)
            .build()
            .unwrap_err();
        assert!(
            matches!(
                error,
                Error::InvalidInput {
                    field: Field::Image,
                    ..
                }
            ),
            "{bad}: {error}"
        );
        assert!(error.to_string().contains(why), "{bad}: {error}");
    }
    let request = urls().build().unwrap();
    assert_eq!(
        request.image().source(),
        &MediaSource::Url(Url::parse(URL_IMAGE).unwrap())
    );
}

#[test]
fn callback_url_must_be_absolute_http() {
    assert!(
        urls()
            .callback_url("https://example.com/cb")
            .build()
            .is_ok()
    );
    for bad in [
        "/relative/cb",
        "example.com/cb",
        "mailto:a@example.com",
        "ws://example.com/cb",
    ] {
        let error = urls().callback_url(bad).build().unwrap_err();
        assert!(
            matches!(
                error,
                Error::InvalidInput {
                    field: Field::CallbackUrl,
                    ..
                }
            ),
            "{bad}: {error}"
        );
    }
}

#[test]
fn image_and_audio_are_required() {
    let error = AvatarRequest::builder()
        .audio(URL_AUDIO)
        .build()
        .unwrap_err();
    assert!(matches!(
        error,
        Error::InvalidInput {
            field: Field::Image,
            ..
        }
    ));
    assert!(
        error
            .to_string()
            .contains("image/jpeg, image/png, image/webp"),
        "{error}"
    );
    let error = AvatarRequest::builder()
        .image(URL_IMAGE)
        .build()
        .unwrap_err();
    assert!(matches!(
        error,
        Error::InvalidInput {
            field: Field::Audio,
            ..
        }
    ));
}

#[test]
fn estimate_needs_a_duration() {
    let request = urls().build().unwrap();
    assert_eq!(request.estimated_credits(16.0), None);
}

#[test]
fn a_url_must_write_its_host() {
    use crate::error::written_host;
    for (text, host) in [
        ("https://example.com/a.png", "example.com"),
        (
            "http://u:p@files.example.com:8443/a.png?x=1",
            "files.example.com",
        ),
        ("https://[::1]:8080/a.png", "[::1]"),
        ("https://cdn.example.com", "cdn.example.com"),
    ] {
        assert_eq!(written_host(text), Ok(host), "{text}");
    }
    let no_host = written_host("https:///a.png").unwrap_err();
    assert!(no_host.contains("no host"), "{no_host}");
    assert!(
        no_host.contains("`a.png`"),
        "the invented host is named: {no_host}"
    );
    assert!(
        written_host("https:a.png")
            .unwrap_err()
            .contains("two slashes")
    );
    assert!(
        written_host("https://user@:80/a.png")
            .unwrap_err()
            .contains("no host")
    );
    // Through the builder: an invalid input naming the field, nothing sent.
    let error = AvatarRequest::builder()
        .image("https:///a.png")
        .audio("https://example.com/a.mp3")
        .build()
        .unwrap_err();
    match error {
        Error::InvalidInput { field, reason, .. } => {
            assert_eq!(field, Field::Image);
            assert!(reason.contains("no host"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
}
