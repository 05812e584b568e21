use super::*;

#[test]
fn canonical_names() {
    assert_eq!(canonical_type("audio/vnd.wave"), Some("audio/wav"));
    assert_eq!(canonical_type("audio/x-wav"), Some("audio/x-wav"));
    assert_eq!(canonical_type("audio/x-m4a"), Some("audio/mp4"));
    assert_eq!(
        canonical_type("image/png; charset=binary"),
        Some("image/png")
    );
    assert_eq!(canonical_type("IMAGE/JPEG"), Some("image/jpeg"));
    assert_eq!(canonical_type("video/mp4"), None);
    assert_eq!(canonical_type("image/gif"), None);
    assert_eq!(canonical_type("text/html"), None);
}

#[test]
fn formats_that_are_the_same() {
    assert!(same_format("audio/wav", "audio/x-wav"));
    assert!(same_format("video/mp4", "audio/mp4"));
    assert!(same_format("audio/m4a", "audio/mp4"));
    assert!(!same_format("image/png", "image/jpeg"));
    assert!(!same_format("image/gif", "image/png"));
}

#[test]
fn sniffing_tells_types_apart_by_content() {
    assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), "image/png");
    assert_eq!(sniff(b"\xff\xd8\xff\xe0\0\x10JFIF\0"), "image/jpeg");
    assert_eq!(sniff(b"RIFF\x24\0\0\0WEBPVP8 "), "image/webp");
    assert_eq!(sniff(b"GIF89a\x01\0\x01\0"), "image/gif");
    assert_eq!(sniff(b"<!DOCTYPE html><html></html>"), "text/html");
}

#[test]
fn size_limits_both_sides_of_the_boundary() {
    assert!(check_size(MediaKind::Image, "a", MAX_MEDIA_BYTES).is_ok());
    assert!(check_size(MediaKind::Image, "a", MAX_MEDIA_BYTES + 1).is_err());
    assert!(check_size(MediaKind::Audio, "a", 1).is_ok());
    let empty = check_size(MediaKind::Audio, "a.mp3", 0).unwrap_err();
    assert_eq!(
        empty.to_string(),
        "invalid audio `a.mp3`: the file is empty"
    );
}

#[test]
fn soft_limits_warn() {
    let facts = |dimensions, duration| MediaFacts {
        mime: "image/png",
        bytes: Some(1),
        dimensions,
        duration,
    };
    assert!(soft_warnings(MediaKind::Image, "a", &facts(Some((512, 512)), None)).is_empty());
    assert_eq!(
        soft_warnings(MediaKind::Image, "a", &facts(Some((290, 512)), None)).len(),
        1
    );
    assert_eq!(
        soft_warnings(MediaKind::Image, "a", &facts(Some((1300, 500)), None)).len(),
        1
    );
    let secs = |s| Some(Duration::from_secs_f64(s));
    assert!(soft_warnings(MediaKind::Audio, "a", &facts(None, secs(10.0))).is_empty());
    assert_eq!(
        soft_warnings(MediaKind::Audio, "a", &facts(None, secs(1.5))).len(),
        1
    );
    assert_eq!(
        soft_warnings(MediaKind::Audio, "a", &facts(None, secs(301.0))).len(),
        1
    );
}
