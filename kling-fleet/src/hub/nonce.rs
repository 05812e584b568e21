//! Nonces: the random token that names an intent in its `callBackUrl`, so a
//! callback can name the task whose createTask answer was lost.

use url::Url;

/// A fresh nonce: 128 bits from the operating system's generator, as 32
/// lowercase hex characters (safe in a URL path).
pub fn new_nonce() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::fill(&mut bytes).is_err() {
        // No OS generator (never seen on supported targets): still unique
        // within the process, and a callback is confirmed before it counts.
        bytes = fastrand::u128(..).to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `callBackUrl` for a nonce: `public` with the nonce as one more path
/// segment (`https://hooks.example.com/kling` → `…/kling/<nonce>`). The
/// receiver reads the nonce back from the last segment of the path it is
/// called on, so a proxy may keep or strip the prefix.
pub fn callback_url(public: &Url, nonce: &str) -> Url {
    let mut url = public.clone();
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty().push(nonce);
    }
    url
}

/// The nonce a callback's request path carries: its last segment, when it
/// looks like one (8 to 128 characters of `A-Z a-z 0-9 - _`).
pub(crate) fn nonce_in_path(path: &str) -> Option<String> {
    let last = path.rsplit('/').find(|s| !s.is_empty())?;
    let fits = (8..=128).contains(&last.len())
        && last
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    fits.then(|| last.to_owned())
}
