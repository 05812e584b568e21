//! The generation request, which can only be built valid.

use std::collections::BTreeMap;

use serde_json::Value;
use url::Url;

use crate::error::{Error, Field};
use crate::media::{self, MediaFacts, MediaKind};

mod input;
mod model;
mod source;

pub(crate) use input::{Built as BuiltInput, build as build_input};
pub use input::{InputBuilder, input_schema};

pub use model::Model;
use source::RawSource;
pub(crate) use source::check_http_url;
pub use source::{IntoMediaInput, MediaInputRaw, MediaSource};

/// The longest prompt, in characters (Unicode scalar values, not bytes).
pub const MAX_PROMPT_CHARS: usize = 5000;

/// One media input of a request, checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Media {
    source: MediaSource,
    facts: Option<MediaFacts>,
}

impl Media {
    /// Where it comes from.
    pub fn source(&self) -> &MediaSource {
        &self.source
    }

    /// What is known about it: for local files, always (type, size, dimensions
    /// or duration where the header says); for URLs, after a preflight.
    pub fn facts(&self) -> Option<&MediaFacts> {
        self.facts.as_ref()
    }

    pub(crate) fn from_url(url: Url, facts: MediaFacts) -> Media {
        Media {
            source: MediaSource::Url(url),
            facts: Some(facts),
        }
    }

    pub(crate) fn with_facts(&self, facts: MediaFacts) -> Media {
        Media {
            source: self.source.clone(),
            facts: Some(facts),
        }
    }
}

/// A request for one avatar video. It can only be built valid: see
/// [`AvatarRequest::builder`].
#[derive(Clone, Debug, PartialEq)]
pub struct AvatarRequest {
    pub(crate) image: Media,
    pub(crate) audio: Media,
    pub(crate) prompt: String,
    pub(crate) callback_url: Option<Url>,
    pub(crate) model: Option<Model>,
    pub(crate) extra_input: BTreeMap<String, Value>,
    pub(crate) warnings: Vec<String>,
}

impl AvatarRequest {
    /// Starts a request. Image and audio are required; the prompt may be empty.
    ///
    /// ```
    /// use kling_api_ext::{AvatarRequest, Error, Field, Model};
    ///
    /// let request = AvatarRequest::builder()
    ///     .image("https://cdn.example.com/face.png") // or a local path, checked now
    ///     .audio("https://cdn.example.com/hello.mp3?X-Amz-Signature=abc")
    ///     .prompt("A calm presenter, looking at the camera")
    ///     .callback_url("https://example.com/kling/callback")
    ///     .model(Model::AvatarV1Pro)
    ///     .build()?;
    /// assert_eq!(request.prompt(), "A calm presenter, looking at the camera");
    ///
    /// // Bad input never builds, and says what is allowed.
    /// let error = AvatarRequest::builder()
    ///     .image("https://cdn.example.com/face.png")
    ///     .audio("https://cdn.example.com/hello.mp3")
    ///     .prompt("x".repeat(5001))
    ///     .build()
    ///     .unwrap_err();
    /// assert!(matches!(error, Error::InvalidInput { field: Field::Prompt, .. }));
    /// # Ok::<(), kling_api_ext::Error>(())
    /// ```
    pub fn builder() -> AvatarRequestBuilder {
        AvatarRequestBuilder::default()
    }

    /// The portrait.
    pub fn image(&self) -> &Media {
        &self.image
    }

    /// The audio track.
    pub fn audio(&self) -> &Media {
        &self.audio
    }

    /// The audio's length, when it is known (read from a local file's
    /// headers): what a wait needs to place its polls
    /// ([`WaitOptions::audio_duration`](crate::WaitOptions::audio_duration)).
    pub fn audio_duration(&self) -> Option<std::time::Duration> {
        self.audio.facts().and_then(|f| f.duration)
    }

    /// The prompt (possibly empty).
    pub fn prompt(&self) -> &str {
        &self.prompt
    }

    /// The callback URL, if set.
    pub fn callback_url(&self) -> Option<&Url> {
        self.callback_url.as_ref()
    }

    /// The same request with another callback URL (checked as the builder's
    /// is: absolute http or https), e.g. one per intent with a nonce
    /// (the `kling-fleet` crate's `callback_url`).
    pub fn with_callback_url(mut self, url: Url) -> crate::Result<Self> {
        self.callback_url = Some(check_http_url(Field::CallbackUrl, url.as_str())?);
        Ok(self)
    }

    /// The model chosen for this request; `None` means the client's
    /// ([`ClientBuilder::model`](crate::ClientBuilder::model),
    /// [`Client::model_for`](crate::Client::model_for)).
    pub fn model(&self) -> Option<&Model> {
        self.model.as_ref()
    }

    /// The other `input` fields it sets ([`AvatarRequestBuilder::input_with`],
    /// [`AvatarRequestBuilder::extra_input`]), as sent.
    pub fn extra_input(&self) -> &BTreeMap<String, Value> {
        &self.extra_input
    }

    /// Things worth knowing that do not stop the request: values outside the
    /// upstream limits (audio 2 to 300 s, image at least 300 px, aspect ratio
    /// 1:2.5 to 2.5:1), which Apikley has not confirmed, and headers that could
    /// not be read.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// The estimated cost in credits: the audio's duration (the video lasts as
    /// long), rounded up to whole seconds, times `credits_per_second`. `None`
    /// when the duration is unknown (an audio URL, or a header that does not say).
    pub fn estimated_credits(&self, credits_per_second: f64) -> Option<f64> {
        let seconds = self.audio.facts()?.duration?.as_secs_f64().ceil();
        Some(seconds * credits_per_second)
    }

    pub(crate) fn with_media(&self, image: Media, audio: Media) -> AvatarRequest {
        AvatarRequest {
            image,
            audio,
            ..self.clone()
        }
    }
}

/// Builds an [`AvatarRequest`]; [`build`](Self::build) checks everything.
#[derive(Clone, Debug, Default)]
pub struct AvatarRequestBuilder {
    image: Option<RawSource>,
    audio: Option<RawSource>,
    prompt: Option<String>,
    callback_url: Option<String>,
    model: Option<Model>,
    input: Option<InputBuilder>,
    extra_input: BTreeMap<String, Value>,
}

impl AvatarRequestBuilder {
    /// The portrait: a local path, or an http(s) URL. JPEG, PNG or WebP, at most
    /// [`MAX_MEDIA_BYTES`](crate::media::MAX_MEDIA_BYTES).
    pub fn image(mut self, source: impl IntoMediaInput) -> Self {
        self.image = Some(source.into_raw().0);
        self
    }

    /// The audio: a local path, or an http(s) URL. MP3, WAV, AAC, MP4/M4A audio
    /// or Ogg, at most [`MAX_MEDIA_BYTES`](crate::media::MAX_MEDIA_BYTES).
    pub fn audio(mut self, source: impl IntoMediaInput) -> Self {
        self.audio = Some(source.into_raw().0);
        self
    }

    /// The prompt: at most 5000 characters; empty is allowed.
    pub fn prompt(mut self, prompt: impl Into<String>) -> Self {
        self.prompt = Some(prompt.into());
        self
    }

    /// Where the service should POST the result (an absolute http(s) URL).
    pub fn callback_url(mut self, url: impl Into<String>) -> Self {
        self.callback_url = Some(url.into());
        self
    }

    /// The model (default: the client's, itself [`Model::AvatarV1Pro`] unless
    /// [`ClientBuilder::model`](crate::ClientBuilder::model) says otherwise).
    pub fn model(mut self, model: Model) -> Self {
        self.model = Some(model);
        self
    }

    /// Sets other fields of the createTask `input` through the generated
    /// builder, with the types and limits of the spec this SDK was built from:
    /// a field a new spec version adds is settable as soon as the SDK is
    /// rebuilt with it, with no SDK change. The builder comes with `image_url`,
    /// `audio_url` and `prompt` filled by the request's own methods; changing
    /// them here is refused. Checked by [`build`](Self::build).
    ///
    /// ```ignore
    /// // With a spec whose input has an integer `seed`:
    /// let request = AvatarRequest::builder()
    ///     .image("https://cdn.example.com/face.png")
    ///     .audio("https://cdn.example.com/hello.mp3")
    ///     .input_with(|b| b.seed(42))
    ///     .build()?;
    /// ```
    pub fn input_with(mut self, f: impl FnOnce(InputBuilder) -> InputBuilder) -> Self {
        let current = self.input.take().unwrap_or_else(input::baseline);
        self.input = Some(f(current));
        self
    }

    /// Sets one other field of the createTask `input` as raw JSON: the escape
    /// hatch for a field the spec does not have yet. A field the spec knows is
    /// checked against its schema by [`build`](Self::build); any other is sent
    /// as given, with a warning ([`AvatarRequest::warnings`]). `image_url`,
    /// `audio_url` and `prompt` are refused (use their methods).
    ///
    /// ```
    /// use kling_api_ext::AvatarRequest;
    ///
    /// let request = AvatarRequest::builder()
    ///     .image("https://cdn.example.com/face.png")
    ///     .audio("https://cdn.example.com/hello.mp3")
    ///     .extra_input("expression", "smile")
    ///     .build()?;
    /// assert_eq!(request.extra_input()["expression"], "smile");
    /// assert!(request.warnings()[0].contains("input.expression is not in the spec"));
    ///
    /// let refused = AvatarRequest::builder()
    ///     .image("https://cdn.example.com/face.png")
    ///     .audio("https://cdn.example.com/hello.mp3")
    ///     .extra_input("prompt", "hello")
    ///     .build()
    ///     .unwrap_err();
    /// assert!(refused.to_string().contains("AvatarRequestBuilder::prompt"));
    /// # Ok::<(), kling_api_ext::Error>(())
    /// ```
    pub fn extra_input(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.extra_input.insert(key.into(), value.into());
        self
    }

    /// Checks everything and returns the request, or the first problem found.
    ///
    /// Local files are checked here: type from the content (magic bytes), the
    /// extension must not contradict it, not empty, not over the limit (from the
    /// metadata, before reading), and their headers are read for the media facts.
    /// This does small blocking reads (metadata, the first 64 KiB, the header).
    /// URLs are checked for syntax here; [`crate::Client::preflight`] checks what
    /// they serve.
    pub fn build(self) -> Result<AvatarRequest, Error> {
        let prompt = self.prompt.unwrap_or_default();
        let chars = prompt.chars().count();
        if chars > MAX_PROMPT_CHARS {
            return Err(Error::invalid(
                Field::Prompt,
                None,
                format!(
                    "the prompt has {chars} characters; at most {MAX_PROMPT_CHARS} are allowed"
                ),
            ));
        }
        let callback_url = self
            .callback_url
            .map(|u| check_http_url(Field::CallbackUrl, &u))
            .transpose()?;
        let mut warnings = Vec::new();
        if let Some(model) = &self.model {
            model.check()?;
            warnings.extend(model.warning());
        }
        let extra_input = input::collect(self.input, self.extra_input, &mut warnings)?;
        let image = check_media(MediaKind::Image, self.image, &mut warnings)?;
        let audio = check_media(MediaKind::Audio, self.audio, &mut warnings)?;
        Ok(AvatarRequest {
            image,
            audio,
            prompt,
            callback_url,
            model: self.model,
            extra_input,
            warnings,
        })
    }
}

fn check_media(
    kind: MediaKind,
    raw: Option<RawSource>,
    warnings: &mut Vec<String>,
) -> Result<Media, Error> {
    let raw = raw.ok_or_else(|| {
        Error::invalid(
            kind.field(),
            None,
            format!(
                "missing: give a local path or an http(s) URL ({})",
                kind.allowed_text()
            ),
        )
    })?;
    match raw.resolve(kind)? {
        MediaSource::Path(path) => {
            let (facts, file_warnings) = media::inspect_file(kind, &path)?;
            warnings.extend(file_warnings);
            Ok(Media {
                source: MediaSource::Path(path),
                facts: Some(facts),
            })
        }
        MediaSource::Url(url) => Ok(Media {
            source: MediaSource::Url(url),
            facts: None,
        }),
    }
}

#[cfg(test)]
mod tests;
