//! Checking local files when a request is built: type from content, extension,
//! size from metadata, facts from headers, warnings.

use std::time::Duration;

use kling_api_ext::media::MAX_MEDIA_BYTES;
use kling_api_ext::{AvatarRequest, Error, Field};

use crate::support::{asset, copy_as, data, png_head, wav};

fn request(image: &std::path::Path, audio: &std::path::Path) -> Result<AvatarRequest, Error> {
    AvatarRequest::builder().image(image).audio(audio).build()
}

fn invalid(error: Error) -> (Field, Option<String>, String) {
    match error {
        Error::InvalidInput {
            field,
            subject,
            reason,
        } => (field, subject, reason),
        other => panic!("expected InvalidInput, got {other:?}"),
    }
}

#[test]
fn every_allowed_image_type_is_accepted_with_dimensions() {
    for (file, mime) in [
        (asset("face.png"), "image/png"),
        (data("face.jpg"), "image/jpeg"),
        (data("face.webp"), "image/webp"),
    ] {
        let request = request(&file, &asset("hello.wav")).unwrap();
        let facts = request.image().facts().unwrap();
        assert_eq!(facts.mime, mime, "{}", file.display());
        assert_eq!(facts.dimensions, Some((480, 600)), "{}", file.display());
        assert_eq!(facts.bytes, Some(std::fs::metadata(&file).unwrap().len()));
        assert!(request.warnings().is_empty(), "{:?}", request.warnings());
    }
}

#[test]
fn every_allowed_audio_type_is_accepted_with_its_duration() {
    for (file, mime) in [
        (asset("hello.wav"), "audio/wav"),
        (data("hello.mp3"), "audio/mpeg"),
        (data("hello.aac"), "audio/aac"),
        (data("hello.m4a"), "audio/mp4"),
        (data("hello-audio.mp4"), "audio/mp4"),
        (data("hello.ogg"), "audio/ogg"),
        (data("hello.opus"), "audio/ogg"),
    ] {
        let request = request(&asset("face.png"), &file).unwrap();
        let facts = request.audio().facts().unwrap();
        assert_eq!(facts.mime, mime, "{}", file.display());
        let seconds = facts.duration.expect("duration").as_secs_f64();
        // ffprobe says 2.93 s; AAC/MP3 framing and header estimates add a little.
        assert!(
            (2.8..=3.2).contains(&seconds),
            "{}: {seconds}",
            file.display()
        );
    }
}

#[test]
fn the_cost_estimate_rounds_the_audio_up_to_whole_seconds() {
    let request = request(&asset("face.png"), &asset("hello.wav")).unwrap();
    // 2.93 s → 3 s × 16 credits.
    assert_eq!(request.estimated_credits(16.0), Some(48.0));
}

#[test]
fn types_outside_the_allow_list_are_refused_naming_what_is_allowed() {
    let (field, subject, reason) =
        invalid(request(&data("face.gif"), &asset("hello.wav")).unwrap_err());
    assert_eq!(field, Field::Image);
    assert!(subject.unwrap().ends_with("face.gif"));
    assert_eq!(
        reason,
        "the content is image/gif; allowed: image/jpeg, image/png, image/webp"
    );

    let (field, _, reason) = invalid(request(&asset("face.png"), &data("video.mp4")).unwrap_err());
    assert_eq!(field, Field::Audio);
    assert!(
        reason.starts_with("the content is video/mp4; allowed: audio/mpeg"),
        "{reason}"
    );

    // Audio given as the image, and the other way round.
    let (field, _, reason) =
        invalid(request(&asset("hello.wav"), &asset("hello.wav")).unwrap_err());
    assert_eq!(field, Field::Image);
    assert!(reason.contains("audio/"), "{reason}");
    let (field, _, _) = invalid(request(&asset("face.png"), &asset("face.png")).unwrap_err());
    assert_eq!(field, Field::Audio);
}

#[test]
fn a_name_that_contradicts_the_content_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let jpeg_named_png = copy_as(&data("face.jpg"), dir.path(), "face.png");
    let (field, _, reason) = invalid(request(&jpeg_named_png, &asset("hello.wav")).unwrap_err());
    assert_eq!(field, Field::Image);
    assert_eq!(
        reason,
        "the extension .png says image/png but the content is image/jpeg; rename the file or fix its content"
    );

    let mp3_named_wav = copy_as(&data("hello.mp3"), dir.path(), "voice.wav");
    let (field, _, reason) = invalid(request(&asset("face.png"), &mp3_named_wav).unwrap_err());
    assert_eq!(field, Field::Audio);
    assert!(reason.contains("but the content is audio/mpeg"), "{reason}");

    let png_named_gif = copy_as(&asset("face.png"), dir.path(), "face.gif");
    assert!(request(&png_named_gif, &asset("hello.wav")).is_err());
}

#[test]
fn the_content_decides_when_the_name_says_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let no_extension = copy_as(&data("face.jpg"), dir.path(), "portrait");
    let generic = copy_as(&data("hello.mp3"), dir.path(), "voice.bin");
    let request = request(&no_extension, &generic).unwrap();
    assert_eq!(request.image().facts().unwrap().mime, "image/jpeg");
    assert_eq!(request.audio().facts().unwrap().mime, "audio/mpeg");
    // Either name of WAV, and MP4 audio named .mp4, are the same format.
    let mp4_audio = copy_as(&data("hello.m4a"), dir.path(), "voice.mp4");
    assert!(self::request(&asset("face.png"), &mp4_audio).is_ok());
}

#[test]
fn missing_empty_and_directory_inputs_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.png");
    let (field, subject, reason) = invalid(request(&missing, &asset("hello.wav")).unwrap_err());
    assert_eq!((field, reason.as_str()), (Field::Image, "no such file"));
    assert_eq!(subject.as_deref(), Some(missing.to_str().unwrap()));

    let empty = dir.path().join("empty.wav");
    std::fs::write(&empty, b"").unwrap();
    let error = request(&asset("face.png"), &empty).unwrap_err();
    assert_eq!(
        error.to_string(),
        format!("invalid audio `{}`: the file is empty", empty.display())
    );

    let (field, _, reason) = invalid(request(dir.path(), &asset("hello.wav")).unwrap_err());
    assert_eq!(
        (field, reason.as_str()),
        (Field::Image, "this is a directory, not a file")
    );
}

#[test]
fn the_size_limit_holds_on_both_sides_of_the_boundary() {
    let dir = tempfile::tempdir().unwrap();
    let sized = |name: &str, len: u64| {
        let path = dir.path().join(name);
        std::fs::write(&path, png_head(512, 512)).unwrap();
        // Sparse: the size is metadata only.
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len)
            .unwrap();
        path
    };
    let at_limit = sized("at.png", MAX_MEDIA_BYTES);
    let request_ok = request(&at_limit, &asset("hello.wav")).unwrap();
    assert_eq!(request_ok.image().facts().unwrap().bytes, Some(10_000_000));

    let over = sized("over.png", MAX_MEDIA_BYTES + 1);
    let (_, _, reason) = invalid(request(&over, &asset("hello.wav")).unwrap_err());
    assert_eq!(
        reason,
        "the file is 10000001 bytes; the limit is 10000000 bytes (10.0 MB) per file"
    );

    // 10 MiB, which a "10 MB = 10,485,760" reading would allow, is refused too.
    assert!(request(&sized("mib.png", 10_485_760), &asset("hello.wav")).is_err());
}

#[test]
fn the_size_is_checked_from_metadata_before_reading() {
    // A 10 GB sparse file: reading it would take long and fill memory; the
    // check answers from its metadata.
    let dir = tempfile::tempdir().unwrap();
    let huge = dir.path().join("huge.wav");
    std::fs::write(&huge, wav(1.0)).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&huge)
        .unwrap()
        .set_len(10_000_000_000)
        .unwrap();
    let (field, _, reason) = invalid(request(&asset("face.png"), &huge).unwrap_err());
    assert_eq!(field, Field::Audio);
    assert!(
        reason.starts_with("the file is 10000000000 bytes"),
        "{reason}"
    );
}

#[test]
fn values_outside_upstream_limits_warn_but_pass() {
    let dir = tempfile::tempdir().unwrap();
    let short = dir.path().join("short.wav");
    std::fs::write(&short, wav(1.0)).unwrap();
    let small = dir.path().join("small.png");
    let mut png = png_head(200, 600);
    png.resize(4096, 0);
    std::fs::write(&small, png).unwrap();
    let request = request(&small, &short).unwrap();
    assert_eq!(
        request.audio().facts().unwrap().duration,
        Some(Duration::from_secs(1))
    );
    let warnings = request.warnings().join("\n");
    assert!(
        warnings.contains("is 200x600 px; upstream Kling wants at least 300 px"),
        "{warnings}"
    );
    assert!(warnings.contains("aspect ratio 0.33"), "{warnings}");
    assert!(
        warnings.contains("lasts 1.0 s; upstream Kling accepts 2 to 300 s"),
        "{warnings}"
    );
}
