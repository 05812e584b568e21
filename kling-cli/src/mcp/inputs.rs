//! An agent's inputs: URLs, or local files inside the roots the server was
//! given (symlinks resolved first, so a link cannot lead outside), and the
//! request's identity for idempotency.

use std::path::{Path, PathBuf};

use kling_api_ext::AvatarRequest;
use sha2::{Digest as _, Sha256};

use super::{Server, ToolError};

/// A media input as given: a URL, or a file inside the roots, read once
/// and staged (see [`Server::input`]).
pub enum Input {
    Url(String),
    File { staged: PathBuf, sha256: String },
}

/// The staged copies of a call's local inputs: removed when dropped, after
/// the call has uploaded them.
pub struct Staged(Option<tempfile::TempDir>);

impl Input {
    fn as_builder_text(&self) -> String {
        match self {
            Input::Url(url) => url.clone(),
            Input::File { staged, .. } => staged.display().to_string(),
        }
    }

    /// What identifies it: the URL, or the file's content.
    fn identity(&self) -> String {
        match self {
            Input::Url(url) => url.clone(),
            Input::File { sha256, .. } => format!("sha256:{sha256}"),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Server {
    /// Reads one input (`field` is `image` or `audio`). A local file is
    /// checked against the roots, read once, checked again, and copied into
    /// `staging`: what is uploaded is what was checked, even if the path is
    /// swapped for a link outside the roots while the call waits.
    pub fn input(&self, field: &str, text: &str, staging: &mut Staged) -> Result<Input, ToolError> {
        let text = text.trim();
        let lower = text.to_ascii_lowercase();
        if lower.starts_with("http://") || lower.starts_with("https://") {
            return Ok(Input::Url(text.to_owned()));
        }
        let refuse = |reason: String| {
            ToolError::refused("invalid_input", format!("{field} {text:?}: {reason}"))
                .with("field", field)
        };
        if text.contains("://") {
            return Err(refuse(
                "give an http(s) URL or a local file inside the server's roots".into(),
            ));
        }
        if self.roots.is_empty() {
            return Err(ToolError::refused(
                "outside_roots",
                format!(
                    "{field} {text:?}: this server was given no --root, so it takes URLs only; give an http(s) URL"
                ),
            )
            .with("field", field));
        }
        let path = Path::new(text);
        if !path.is_absolute() {
            return Err(refuse(format!(
                "give an absolute path inside one of the roots ({})",
                self.roots_text()
            )));
        }
        let real =
            std::fs::canonicalize(path).map_err(|e| refuse(format!("cannot be read: {e}")))?;
        if !self.roots.iter().any(|root| real.starts_with(root)) {
            return Err(ToolError::refused(
                "outside_roots",
                format!(
                    "{field} {text:?} is outside the server's roots ({}); symlinks are followed before this check. Move the file into a root, or give a URL",
                    self.roots_text()
                ),
            )
            .with("field", field));
        }
        let bytes = std::fs::read(&real).map_err(|e| refuse(format!("cannot be read: {e}")))?;
        if std::fs::canonicalize(&real).ok().as_ref() != Some(&real) {
            return Err(refuse("it changed while it was read; give it again".into()));
        }
        let dir = match &mut staging.0 {
            Some(dir) => dir,
            empty => empty.insert(
                tempfile::tempdir()
                    .map_err(|e| ToolError::refused("io", format!("cannot stage {field}: {e}")))?,
            ),
        };
        let name = real
            .file_name()
            .map_or_else(|| field.into(), |n| n.to_owned());
        let sub = dir.path().join(field);
        let staged = sub.join(name);
        std::fs::create_dir_all(&sub)
            .and_then(|()| std::fs::write(&staged, &bytes))
            .map_err(|e| ToolError::refused("io", format!("cannot stage {field}: {e}")))?;
        Ok(Input::File {
            staged,
            sha256: hex(&Sha256::digest(&bytes)),
        })
    }

    fn roots_text(&self) -> String {
        self.roots
            .iter()
            .map(|r| r.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Builds and checks the request (nothing is sent), and its default
    /// idempotency key: a hash of the model, the prompt and the inputs'
    /// identities.
    pub fn request(
        &self,
        video: &super::tools::VideoArgs,
    ) -> Result<(AvatarRequest, String, Staged), ToolError> {
        let mut staged = Staged(None);
        let image = self.input("image", &video.image, &mut staged)?;
        let audio = self.input("audio", &video.audio, &mut staged)?;
        let mut builder = AvatarRequest::builder()
            .image(image.as_builder_text().as_str())
            .audio(audio.as_builder_text().as_str())
            .prompt(video.prompt.clone().unwrap_or_default());
        if let Some(model) = &video.model {
            let model = crate::cli::parse_model(model).map_err(|reason| {
                ToolError::refused("invalid_input", format!("model {model:?}: {reason}"))
                    .with("field", "model")
            })?;
            builder = builder.model(model);
        }
        let request = builder.build().map_err(|e| ToolError::sdk(&e, false))?;
        let identity = serde_json::json!({
            "model": self.ctx.client.model_for(&request).to_string(),
            "prompt": request.prompt(),
            "image": image.identity(),
            "audio": audio.identity(),
        });
        let key = format!("req-{}", &hex(&Sha256::digest(identity.to_string()))[..32]);
        Ok((request, key, staged))
    }
}
