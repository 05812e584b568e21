//! The batch manifest: one JSON object per line.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use kling_api_ext::{AvatarRequest, Error, Model};
use serde::Deserialize;

/// One line, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Line {
    id: String,
    image: String,
    audio: String,
    #[serde(default)]
    prompt: String,
    callback_url: Option<String>,
    model: Option<String>,
}

/// A valid job.
#[derive(Debug, Clone)]
pub struct Job {
    pub line: usize,
    pub id: String,
    /// The line's inputs, canonically: recorded in the journal.
    pub input: String,
    pub request: AvatarRequest,
}

/// A line that cannot run, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct BadLine {
    pub line: usize,
    pub reason: String,
}

/// Names Windows reserves in any directory, with any extension (`CON.mp4` is
/// the console, not a file).
const RESERVED: &[&str] = &[
    "con", "prn", "aux", "nul", "com0", "com1", "com2", "com3", "com4", "com5", "com6", "com7",
    "com8", "com9", "lpt0", "lpt1", "lpt2", "lpt3", "lpt4", "lpt5", "lpt6", "lpt7", "lpt8", "lpt9",
];

/// Ids become file names (`ID.mp4`): letters, digits, `.`, `_`, `-`; not
/// starting with a dot; at most 128 characters; not a name Windows reserves.
/// So no id can name a file outside the output directory, or a device.
pub fn check_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.len() > 128 {
        return Err("the id must have 1 to 128 characters".into());
    }
    if id.starts_with('.') {
        return Err("the id cannot start with a dot".into());
    }
    if let Some(c) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "._-".contains(*c)))
    {
        return Err(format!(
            "the id has {c:?}; use letters, digits, '.', '_' and '-'"
        ));
    }
    let stem = id.split('.').next().unwrap_or(id).to_ascii_lowercase();
    if RESERVED.contains(&stem.as_str()) {
        return Err(format!(
            "{stem:?} is a device name on Windows ({stem}.mp4 could not be written there); choose another id"
        ));
    }
    Ok(())
}

/// Relative paths in a manifest are relative to the manifest's directory.
fn resolve(base: &Path, source: &str) -> String {
    if source.contains("://") || Path::new(source).is_absolute() {
        return source.to_owned();
    }
    base.join(source).display().to_string()
}

/// Parses and checks every line: type, size and existence of local files
/// included (nothing is sent).
/// `default_model` is for lines that name no model (`--model`, a profile's model).
pub fn parse(path: &Path, text: &str, default_model: Option<Model>) -> (Vec<Job>, Vec<BadLine>) {
    let base: PathBuf = path.parent().map(Path::to_owned).unwrap_or_default();
    let mut jobs = Vec::new();
    let mut bad = Vec::new();
    let mut ids = BTreeSet::new();
    // Case-insensitive file systems (macOS, Windows) would write `Job.mp4` and
    // `job.mp4` to one file: one video would replace the other.
    let mut folded: std::collections::BTreeMap<String, (String, usize)> = Default::default();
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let reject = |reason: String| BadLine {
            line: number,
            reason,
        };
        let line: Line = match serde_json::from_str(raw) {
            Ok(line) => line,
            Err(e) => {
                bad.push(reject(format!("not a valid job: {e}")));
                continue;
            }
        };
        if let Err(reason) = check_id(&line.id) {
            bad.push(reject(format!("id {:?}: {reason}", line.id)));
            continue;
        }
        if !ids.insert(line.id.clone()) {
            bad.push(reject(format!("id {:?} appears more than once", line.id)));
            continue;
        }
        match folded.get(&line.id.to_lowercase()) {
            Some((other, at)) => {
                bad.push(reject(format!(
                    "id {:?} differs from {other:?} (line {at}) only by case; on macOS and Windows both would be one file: make them differ",
                    line.id
                )));
                continue;
            }
            None => {
                folded.insert(line.id.to_lowercase(), (line.id.clone(), number));
            }
        }
        let mut builder = AvatarRequest::builder()
            .image(resolve(&base, &line.image))
            .audio(resolve(&base, &line.audio))
            .prompt(line.prompt.clone());
        if let Some(url) = &line.callback_url {
            builder = builder.callback_url(url);
        }
        if let Some(model) = &line.model {
            match Model::try_custom(model.as_str()) {
                Ok(model) => builder = builder.model(model),
                Err(e) => {
                    bad.push(reject(format!("id {:?}: {e}", line.id)));
                    continue;
                }
            }
        } else if let Some(model) = &default_model {
            builder = builder.model(model.clone());
        }
        // The model a line runs with is part of what was submitted: changing
        // the default between runs changes the job (the edit check sees it).
        let model = line
            .model
            .clone()
            .or_else(|| default_model.as_ref().map(|m| m.to_string()));
        match builder.build() {
            Ok(request) => jobs.push(Job {
                line: number,
                input: serde_json::json!({
                    "image": line.image, "audio": line.audio, "prompt": line.prompt,
                    "callbackUrl": line.callback_url, "model": model,
                })
                .to_string(),
                id: line.id,
                request,
            }),
            Err(Error::InvalidInput {
                field,
                subject,
                reason,
            }) => {
                let subject = subject.map(|s| format!(" `{s}`")).unwrap_or_default();
                bad.push(reject(format!(
                    "id {:?}: {field}{subject}: {reason}",
                    line.id
                )));
            }
            Err(other) => bad.push(reject(format!("id {:?}: {other}", line.id))),
        }
    }
    (jobs, bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cannot_escape_the_output_directory() {
        for bad in [
            "",
            "../x",
            "a/b",
            ".hidden",
            "a b",
            "x\\y",
            &"x".repeat(129),
        ] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
        for reserved in ["con", "CON", "nul.take2", "Com1", "lpt9.x"] {
            let error = check_id(reserved).unwrap_err();
            assert!(error.contains("device name"), "{reserved}: {error}");
        }
        for good in ["job-1", "Job_2.v3", "a", "console", "con-1", "com10"] {
            assert!(check_id(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn bad_lines_are_reported_with_their_numbers() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/assets");
        let manifest = dir.join("manifest.jsonl");
        let text = [
            r#"{"id": "ok", "image": "face.png", "audio": "hello.wav", "prompt": "hi"}"#,
            "",
            "not json",
            r#"{"id": "ok", "image": "face.png", "audio": "hello.wav"}"#,
            r#"{"id": "../up", "image": "face.png", "audio": "hello.wav"}"#,
            r#"{"id": "gif", "image": "missing.png", "audio": "hello.wav"}"#,
            r#"{"id": "m", "image": "face.png", "audio": "hello.wav", "model": "kling v9"}"#,
            r#"{"id": "extra", "image": "face.png", "audio": "hello.wav", "seed": 1}"#,
            r#"{"id": "url", "image": "https://cdn.example.com/f.png", "audio": "hello.wav"}"#,
            r#"{"id": "OK", "image": "face.png", "audio": "hello.wav"}"#,
            r#"{"id": "aux", "image": "face.png", "audio": "hello.wav"}"#,
        ]
        .join("\n");
        let (jobs, bad) = parse(&manifest, &text, None);
        let ids: Vec<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
        assert_eq!(ids, ["ok", "url"]);
        let lines: Vec<usize> = bad.iter().map(|b| b.line).collect();
        assert_eq!(lines, [3, 4, 5, 6, 7, 8, 10, 11]);
        assert!(
            bad[6]
                .reason
                .contains("differs from \"ok\" (line 1) only by case"),
            "{}",
            bad[6].reason
        );
        assert!(bad[7].reason.contains("device name"), "{}", bad[7].reason);
        assert!(bad[1].reason.contains("more than once"));
        assert!(bad[3].reason.contains("no such file"), "{}", bad[3].reason);
        assert!(
            bad[5].reason.contains("unknown field `seed`"),
            "{}",
            bad[5].reason
        );
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

        /// The fuzz target `manifest`'s checks: any text parses without panic,
        /// every line is either a job or a reported bad line, and every
        /// accepted id is a safe file name.
        #[test]
        fn any_manifest_text(text in "(\\{\"id\": \"[a-z./ _-]{0,6}\", \"image\": \"[a-z:/.]{0,12}\", \"audio\": \"https://x.test/a.mp3\"\\}|.{0,40})(\n.{0,40}){0,4}") {
            let (jobs, bad) = parse(std::path::Path::new("/nonexistent/jobs.jsonl"), &text, None);
            prop_assert_eq!(jobs.len() + bad.len(), text.lines().filter(|l| !l.trim().is_empty()).count());
            for job in &jobs {
                prop_assert!(check_id(&job.id).is_ok());
                prop_assert!(!job.id.contains('/') && !job.id.starts_with('.'));
            }
        }
    }
}
