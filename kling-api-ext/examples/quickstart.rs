//! A video in one call, against the real service or a `kling sim` process:
//! compiled by `cargo test` so it stays true.
//!
//! Against the real service: `APIKLEY_API_KEY=... cargo run -p kling-api-ext --example quickstart`.
//! Against a local simulator: start `kling sim`, export the three variables it
//! prints, then run the same command. (The crate README's example runs the
//! simulator inside the program instead.)

use kling_api_ext::{AvatarRequest, Client};

#[tokio::main]
async fn main() -> Result<(), kling_api_ext::Error> {
    let client = Client::from_env()?; // APIKLEY_API_KEY (+ APIKLEY_BASE_URL, APIKLEY_UPLOAD_BASE_URL)
    let request = AvatarRequest::builder()
        .image("examples/assets/face.png") // a path (uploaded on submit) or an http(s) URL
        .audio("examples/assets/hello.wav")
        .prompt("A friendly presenter, looking at the camera")
        .build()?; // every check happens here, before anything is sent
    let made = client.generate(&request, "avatar.mp4").await?; // atomic, with SHA-256
    println!("{} ({} bytes)", made.video.path.display(), made.video.bytes);
    Ok(())
}
