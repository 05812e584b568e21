//! The generated media are what they say: the SDK's own checks read their
//! type, dimensions and duration back.

use std::time::Duration;

use kling_api_ext::AvatarRequest;

fn facts(image: &[u8], audio: &[u8], audio_name: &str) -> (Option<(u32, u32)>, Option<Duration>) {
    let dir = tempfile::tempdir().unwrap();
    let image_path = dir.path().join("face.png");
    let audio_path = dir.path().join(audio_name);
    std::fs::write(&image_path, image).unwrap();
    std::fs::write(&audio_path, audio).unwrap();
    let request = AvatarRequest::builder()
        .image(image_path)
        .audio(audio_path)
        .build()
        .unwrap();
    (
        request.image().facts().and_then(|f| f.dimensions),
        request.audio().facts().and_then(|f| f.duration),
    )
}

fn close(d: Option<Duration>, seconds: f64) -> bool {
    d.is_some_and(|d| (d.as_secs_f64() - seconds).abs() < 0.1)
}

#[test]
fn wav_mp3_and_png_read_back_as_made() {
    let png = kling_testkit::png_head(640, 800);
    let (dims, wav) = facts(&png, &kling_testkit::wav(3.0), "a.wav");
    assert_eq!(dims, Some((640, 800)));
    assert!(close(wav, 3.0), "{wav:?}");
    let (_, mp3) = facts(&png, &kling_testkit::mp3(4.0), "a.mp3");
    assert!(close(mp3, 4.0), "{mp3:?}");
}

#[test]
fn the_shared_files_are_there() {
    for name in ["face.png", "hello.wav"] {
        assert!(kling_testkit::asset(name).is_file(), "{name}");
    }
    for name in [
        "face.gif",
        "face.jpg",
        "face.webp",
        "hello.mp3",
        "video.mp4",
    ] {
        assert!(kling_testkit::data(name).is_file(), "{name}");
    }
}

#[test]
fn check_mp4_tells_whole_from_cut() {
    let video = std::fs::read(kling_testkit::data("video.mp4")).unwrap();
    assert!(kling_testkit::check_mp4(&video).is_ok());
    assert!(kling_testkit::check_mp4(&video[..video.len() / 2]).is_err());
}
