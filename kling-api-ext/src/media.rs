//! Media types and facts: what a file really is (from its bytes, never from its
//! name alone), whether the service accepts it, and what its headers say about
//! size, dimensions and duration.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::error::{Error, Field};

/// The largest image or audio file accepted: 10,000,000 bytes.
///
/// The service documents "10.0MB" without saying whether it means 10,000,000 or
/// 10,485,760 (10 MiB) bytes. This SDK takes the smaller, which the service
/// accepts under either reading: a file it lets through is never refused for its
/// size after upload.
pub const MAX_MEDIA_BYTES: u64 = 10_000_000;

/// Image types the service accepts.
pub const IMAGE_TYPES: &[&str] = &["image/jpeg", "image/png", "image/webp"];

/// Audio types the service accepts.
pub const AUDIO_TYPES: &[&str] = &[
    "audio/mpeg",
    "audio/wav",
    "audio/x-wav",
    "audio/aac",
    "audio/mp4",
    "audio/ogg",
];

/// How many bytes are read to tell a file's type.
pub(crate) const SNIFF_BYTES: usize = 64 * 1024;

/// Upstream Kling limits that are not confirmed for this reseller: outside them
/// a request gets a warning, not an error.
pub mod soft_limits {
    use std::time::Duration;
    /// Shortest audio upstream Kling accepts.
    pub const MIN_AUDIO: Duration = Duration::from_secs(2);
    /// Longest audio upstream Kling documents (other resellers say 60 s).
    pub const MAX_AUDIO: Duration = Duration::from_secs(300);
    /// Smallest image side upstream Kling accepts, in pixels.
    pub const MIN_IMAGE_SIDE: u32 = 300;
    /// Widest and tallest aspect ratio upstream Kling accepts (2.5:1 and 1:2.5).
    pub const MAX_ASPECT: f64 = 2.5;
}

/// Whether a media input is the portrait or the audio track.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    /// The portrait image.
    Image,
    /// The audio track.
    Audio,
}

impl MediaKind {
    /// The types the service accepts for this kind.
    pub fn allowed(self) -> &'static [&'static str] {
        match self {
            MediaKind::Image => IMAGE_TYPES,
            MediaKind::Audio => AUDIO_TYPES,
        }
    }

    pub(crate) fn field(self) -> Field {
        match self {
            MediaKind::Image => Field::Image,
            MediaKind::Audio => Field::Audio,
        }
    }

    pub(crate) fn allowed_text(self) -> String {
        format!("allowed: {}", self.allowed().join(", "))
    }
}

/// What is known about a media input after checking it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct MediaFacts {
    /// The media type, one of [`IMAGE_TYPES`] or [`AUDIO_TYPES`].
    pub mime: &'static str,
    /// The size in bytes, when known (a URL's server may not say).
    pub bytes: Option<u64>,
    /// Width and height in pixels, for images whose header could be read.
    pub dimensions: Option<(u32, u32)>,
    /// Duration, for audio whose header could be read.
    #[serde(serialize_with = "crate::serde_secs::option")]
    pub duration: Option<Duration>,
}

impl MediaFacts {
    /// The file extension that matches the type (`png`, `mp3`, ...), used for
    /// uploaded file names.
    pub fn extension(&self) -> &'static str {
        extension_for(self.mime)
    }
}

pub(crate) fn extension_for(mime: &str) -> &'static str {
    match mime {
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "image/webp" => "webp",
        "audio/mpeg" => "mp3",
        "audio/wav" | "audio/x-wav" => "wav",
        "audio/aac" => "aac",
        "audio/mp4" => "m4a",
        "audio/ogg" => "ogg",
        _ => "bin",
    }
}

/// Maps the many names detectors and servers use to the service's own, or
/// `None` for anything it does not accept. `audio/vnd.wave` and `audio/x-wav`
/// are WAV; `audio/x-m4a` and `audio/m4a` are MP4 audio; Ogg Opus is Ogg.
pub(crate) fn canonical_type(mime: &str) -> Option<&'static str> {
    let mime = mime
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    Some(match mime.as_str() {
        "image/jpeg" | "image/jpg" | "image/pjpeg" => "image/jpeg",
        "image/png" => "image/png",
        "image/webp" => "image/webp",
        "audio/mpeg" | "audio/mp3" | "audio/mpeg3" | "audio/x-mpeg-3" => "audio/mpeg",
        "audio/wav" | "audio/wave" | "audio/vnd.wave" => "audio/wav",
        "audio/x-wav" => "audio/x-wav",
        "audio/aac" | "audio/x-aac" | "audio/aacp" => "audio/aac",
        "audio/mp4" | "audio/x-m4a" | "audio/m4a" => "audio/mp4",
        "audio/ogg" | "audio/opus" | "audio/vorbis" | "application/ogg" => "audio/ogg",
        _ => return None,
    })
}

/// Whether two canonical types name the same format (WAV's two names; an MP4
/// file may be named as video or audio).
fn same_format(a: &str, b: &str) -> bool {
    fn family(mime: &str) -> String {
        let mime = canonical_type(mime).map_or_else(|| mime.to_ascii_lowercase(), str::to_owned);
        match mime.as_str() {
            "audio/wav" | "audio/x-wav" => "wav".to_owned(),
            "audio/mp4" | "video/mp4" => "mp4".to_owned(),
            "audio/ogg" | "video/ogg" => "ogg".to_owned(),
            _ => mime,
        }
    }
    family(a) == family(b)
}

/// The media type of some bytes, from their content (magic numbers, MP4 boxes).
pub(crate) fn sniff(bytes: &[u8]) -> String {
    file_format::FileFormat::from_bytes(bytes)
        .media_type()
        .to_owned()
}

/// The media type of a file, from its content.
pub(crate) fn sniff_file(path: &Path, head: &[u8]) -> String {
    match file_format::FileFormat::from_file(path) {
        Ok(format) => format.media_type().to_owned(),
        Err(_) => sniff(head),
    }
}

/// Checks a detected type against the kind's allow-list.
pub(crate) fn accept_type(
    kind: MediaKind,
    subject: &str,
    detected: &str,
    how: &str,
) -> Result<&'static str, Error> {
    match canonical_type(detected) {
        Some(mime) if kind.allowed().contains(&mime) => Ok(mime),
        _ => Err(Error::invalid(
            kind.field(),
            Some(subject.to_owned()),
            format!("{how} {detected}; {}", kind.allowed_text()),
        )),
    }
}

pub(crate) fn check_size(kind: MediaKind, subject: &str, bytes: u64) -> Result<(), Error> {
    if bytes == 0 {
        return Err(Error::invalid(
            kind.field(),
            Some(subject.to_owned()),
            "the file is empty",
        ));
    }
    if bytes > MAX_MEDIA_BYTES {
        return Err(Error::invalid(
            kind.field(),
            Some(subject.to_owned()),
            format!(
                "the file is {bytes} bytes; the limit is {MAX_MEDIA_BYTES} bytes (10.0 MB) per file"
            ),
        ));
    }
    Ok(())
}

/// Checks a local file and reads its facts. Reads the metadata, the first
/// 64 KiB and the header the type needs; never the whole file into memory.
pub(crate) fn inspect_file(
    kind: MediaKind,
    path: &Path,
) -> Result<(MediaFacts, Vec<String>), Error> {
    let subject = path.display().to_string();
    let invalid = |reason: String| Error::invalid(kind.field(), Some(subject.clone()), reason);
    let metadata = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => invalid("no such file".into()),
        std::io::ErrorKind::PermissionDenied => {
            invalid("the file cannot be read (permission denied)".into())
        }
        _ => invalid(format!("the file cannot be read: {e}")),
    })?;
    if metadata.is_dir() {
        return Err(invalid("this is a directory, not a file".into()));
    }
    if !metadata.is_file() {
        return Err(invalid("this is not a regular file".into()));
    }
    // From the metadata, before reading anything.
    check_size(kind, &subject, metadata.len())?;

    let head = read_head(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::PermissionDenied => {
            invalid("the file cannot be read (permission denied)".into())
        }
        _ => invalid(format!("the file cannot be read: {e}")),
    })?;
    let detected = sniff_file(path, &head);
    let mime = accept_type(kind, &subject, &detected, "the content is")?;

    // The name may not contradict the content (a JPEG named .png is refused:
    // some services trust the extension).
    if let Some(claimed) = mime_guess::from_path(path).first_raw() {
        let generic = matches!(claimed, "application/octet-stream");
        if !generic && !same_format(claimed, mime) {
            let ext = path
                .extension()
                .map(|e| e.to_string_lossy().into_owned())
                .unwrap_or_default();
            return Err(invalid(format!(
                "the extension .{ext} says {claimed} but the content is {mime}; rename the file or fix its content"
            )));
        }
    }

    let mut warnings = Vec::new();
    let mut facts = MediaFacts {
        mime,
        bytes: Some(metadata.len()),
        dimensions: None,
        duration: None,
    };
    match kind {
        MediaKind::Image => match imagesize::size(path) {
            Ok(size) => facts.dimensions = Some((size.width as u32, size.height as u32)),
            Err(e) => warnings.push(format!(
                "image `{subject}`: could not read its dimensions ({e})"
            )),
        },
        MediaKind::Audio => match audio_duration(path) {
            Ok(d) if !d.is_zero() => facts.duration = Some(d),
            Ok(_) => warnings.push(format!("audio `{subject}`: its header gives no duration")),
            Err(e) => warnings.push(format!(
                "audio `{subject}`: could not read its duration ({e})"
            )),
        },
    }
    warnings.extend(soft_warnings(kind, &subject, &facts));
    Ok((facts, warnings))
}

fn read_head(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path)?;
    let mut head = Vec::with_capacity(SNIFF_BYTES);
    file.take(SNIFF_BYTES as u64).read_to_end(&mut head)?;
    Ok(head)
}

fn audio_duration(path: &Path) -> Result<Duration, String> {
    use lofty::config::ParseOptions;
    use lofty::file::AudioFile;
    let options = ParseOptions::new().read_tags(false).read_cover_art(false);
    let tagged = lofty::probe::Probe::open(path)
        .map_err(|e| e.to_string())?
        .options(options)
        .guess_file_type()
        .map_err(|e| e.to_string())?
        .read()
        .map_err(|e| e.to_string())?;
    Ok(tagged.properties().duration())
}

/// Image dimensions from the first bytes of an image (for URLs).
pub(crate) fn dimensions_from_bytes(bytes: &[u8]) -> Option<(u32, u32)> {
    imagesize::blob_size(bytes)
        .ok()
        .map(|s| (s.width as u32, s.height as u32))
}

/// Warnings for values outside upstream Kling's limits, which are not confirmed
/// for this reseller.
pub(crate) fn soft_warnings(kind: MediaKind, subject: &str, facts: &MediaFacts) -> Vec<String> {
    use soft_limits::*;
    let mut warnings = Vec::new();
    match kind {
        MediaKind::Image => {
            if let Some((w, h)) = facts.dimensions {
                if w.min(h) < MIN_IMAGE_SIDE {
                    warnings.push(format!(
                        "image `{subject}` is {w}x{h} px; upstream Kling wants at least {MIN_IMAGE_SIDE} px per side"
                    ));
                }
                let ratio = f64::from(w.max(1)) / f64::from(h.max(1));
                if !(1.0 / MAX_ASPECT..=MAX_ASPECT).contains(&ratio) {
                    warnings.push(format!(
                        "image `{subject}` has aspect ratio {ratio:.2}; upstream Kling accepts 1:2.5 to 2.5:1"
                    ));
                }
            }
        }
        MediaKind::Audio => {
            if let Some(d) = facts.duration
                && (d < MIN_AUDIO || d > MAX_AUDIO)
            {
                warnings.push(format!(
                    "audio `{subject}` lasts {:.1} s; upstream Kling accepts 2 to 300 s (unconfirmed for Apikley)",
                    d.as_secs_f64()
                ));
            }
        }
    }
    warnings
}

#[cfg(test)]
mod tests;
