use super::*;

#[test]
fn upload_names_are_unique_safe_and_typed() {
    let a = upload_file_name(Some(Path::new("/tmp/My Face (1).JPG")), "jpg");
    let b = upload_file_name(Some(Path::new("/tmp/My Face (1).JPG")), "jpg");
    assert_ne!(a, b);
    assert!(a.starts_with("My_Face__1_-"), "{a}");
    assert!(a.ends_with(".jpg"));
    assert!(
        a.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
        "{a}"
    );
    assert!(upload_file_name(None, "wav").starts_with("media-"));
    assert!(upload_file_name(Some(Path::new("日本.wav")), "wav").starts_with("media-"));
}
