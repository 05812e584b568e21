//! Where a media input comes from, and what the builder takes as one.

use crate::error::{Error, Field};
use crate::media::MediaKind;
use std::fmt;
use std::path::{Path, PathBuf};
use url::Url;

/// Where a media input comes from: a local file (uploaded on submit) or a URL
/// the service fetches itself.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum MediaSource {
    /// A local file.
    Path(PathBuf),
    /// An http(s) URL (query strings, e.g. presigned URLs, are fine).
    Url(Url),
}

/// As messages show it: the path, or the URL without its query ([`crate::error::safe_url`]).
///
/// ```
/// use kling_api_ext::request::MediaSource;
/// let url = url::Url::parse("https://b.example.com/v.mp3?X-Amz-Signature=abc").unwrap();
/// assert_eq!(MediaSource::Url(url).to_string(), "https://b.example.com/v.mp3?[query hidden]");
/// ```
impl fmt::Display for MediaSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MediaSource::Path(path) => write!(f, "{}", path.display()),
            MediaSource::Url(url) => f.write_str(&crate::error::safe_url(url)),
        }
    }
}

/// An input as given to the builder, checked by [`AvatarRequestBuilder::build`].
#[derive(Clone, Debug)]
pub(super) enum RawSource {
    Path(PathBuf),
    Text(String),
    Url(Url),
}

impl RawSource {
    pub(super) fn resolve(self, kind: MediaKind) -> Result<MediaSource, Error> {
        match self {
            RawSource::Path(p) => Ok(MediaSource::Path(p)),
            RawSource::Url(u) => check_media_url(kind, u.as_str()).map(MediaSource::Url),
            RawSource::Text(t) => {
                if t.contains("://") {
                    check_media_url(kind, &t).map(MediaSource::Url)
                } else {
                    Ok(MediaSource::Path(PathBuf::from(t)))
                }
            }
        }
    }
}

/// A value the builder accepts as an image or audio input: a path, or a string
/// that is a URL when it has a scheme (`https://...`) and a path otherwise.
pub trait IntoMediaInput: sealed::Sealed {
    #[doc(hidden)]
    fn into_raw(self) -> MediaInputRaw;
}

#[doc(hidden)]
#[derive(Clone, Debug)]
pub struct MediaInputRaw(pub(super) RawSource);

mod sealed {
    pub trait Sealed {}
    impl Sealed for &str {}
    impl Sealed for String {}
    impl Sealed for &String {}
    impl Sealed for &std::path::Path {}
    impl Sealed for std::path::PathBuf {}
    impl Sealed for &std::path::PathBuf {}
    impl Sealed for url::Url {}
    impl Sealed for super::MediaSource {}
}

impl IntoMediaInput for &str {
    fn into_raw(self) -> MediaInputRaw {
        MediaInputRaw(RawSource::Text(self.to_owned()))
    }
}

impl IntoMediaInput for String {
    fn into_raw(self) -> MediaInputRaw {
        MediaInputRaw(RawSource::Text(self))
    }
}

impl IntoMediaInput for &String {
    fn into_raw(self) -> MediaInputRaw {
        MediaInputRaw(RawSource::Text(self.clone()))
    }
}

impl IntoMediaInput for &Path {
    fn into_raw(self) -> MediaInputRaw {
        MediaInputRaw(RawSource::Path(self.to_owned()))
    }
}

impl IntoMediaInput for PathBuf {
    fn into_raw(self) -> MediaInputRaw {
        MediaInputRaw(RawSource::Path(self))
    }
}

impl IntoMediaInput for &PathBuf {
    fn into_raw(self) -> MediaInputRaw {
        MediaInputRaw(RawSource::Path(self.clone()))
    }
}

impl IntoMediaInput for Url {
    fn into_raw(self) -> MediaInputRaw {
        MediaInputRaw(RawSource::Url(self))
    }
}

impl IntoMediaInput for MediaSource {
    fn into_raw(self) -> MediaInputRaw {
        MediaInputRaw(match self {
            MediaSource::Path(p) => RawSource::Path(p),
            MediaSource::Url(u) => RawSource::Url(u),
        })
    }
}

pub(super) fn check_media_url(kind: MediaKind, text: &str) -> Result<Url, Error> {
    check_http_url(kind.field(), text)
}

/// Parses an absolute http(s) URL with a host.
pub(crate) fn check_http_url(field: Field, text: &str) -> Result<Url, Error> {
    let url = Url::parse(text).map_err(|e| {
        Error::invalid(
            field,
            Some(text.to_owned()),
            format!("not a valid URL ({e}); use an absolute http(s) URL"),
        )
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::invalid(
            field,
            Some(text.to_owned()),
            format!(
                "the scheme is {}; only http and https URLs are allowed",
                url.scheme()
            ),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Error::invalid(
            field,
            Some(text.to_owned()),
            "the URL has no host",
        ));
    }
    crate::error::written_host(text)
        .map_err(|reason| Error::invalid(field, Some(text.to_owned()), reason))?;
    Ok(url)
}
