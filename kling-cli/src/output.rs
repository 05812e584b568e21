//! Everything the CLI writes: stdout (the result: text or one JSON document),
//! stderr (messages, progress), and how errors end the process.
//!
//! Writes ignore a closed pipe (`kling status ID | head -1` must not panic).

use std::io::{IsTerminal, Write};

use kling_api_ext::{ApiErrorKind, Error};

use crate::error::{CliError, code};
use kling_api_ext::redact;
use serde_json::{Value, json};

/// A command's failure: the error and, once a task exists, the exact command
/// that picks it up again.
#[derive(Debug)]
pub struct Failure {
    pub error: CliError,
    pub resume: Option<String>,
    /// The task cannot be picked up by any command (`--sim`): no hint says so.
    pub unresumable: bool,
}

impl From<CliError> for Failure {
    fn from(error: CliError) -> Failure {
        Failure {
            error,
            resume: None,
            unresumable: false,
        }
    }
}

impl From<Error> for Failure {
    fn from(error: Error) -> Failure {
        Failure::from(CliError::Sdk(error))
    }
}

impl Failure {
    /// The failure of a step after `task_id` was created: the error names the
    /// task, and `resume` is the command to run.
    /// `resume` is `None` where no command can pick the task up (the
    /// simulator of `--sim` ends with the process).
    pub fn after_submit(
        error: impl Into<CliError>,
        task_id: &kling_api_ext::TaskId,
        resume: Option<String>,
    ) -> Failure {
        let error = error.into().with_task_id(task_id);
        let unresumable = resume.is_none();
        // A failed task has nothing to resume, nor has one the service says
        // it does not know.
        let resume = resume.filter(|_| {
            !matches!(
                error.sdk(),
                Some(
                    Error::GenerationFailed { .. }
                        | Error::Api {
                            kind: ApiErrorKind::NotFound,
                            ..
                        }
                )
            )
        });
        Failure {
            error,
            resume,
            unresumable,
        }
    }
}

/// Where output goes and how.
#[derive(Clone, Copy, Debug)]
pub struct Out {
    pub json: bool,
    pub quiet: bool,
}

impl Out {
    pub fn new(json: bool, no_json: bool, quiet: bool) -> Out {
        let json = json || (!no_json && !std::io::stdout().is_terminal());
        Out { json, quiet }
    }

    /// Whether progress bars and status lines may be drawn.
    pub fn interactive(&self) -> bool {
        !self.quiet && std::io::stderr().is_terminal()
    }

    /// The result, in text mode.
    #[allow(clippy::print_stdout)]
    pub fn text(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{text}");
        let _ = out.flush();
    }

    /// The result, in JSON mode: one document.
    pub fn document(&self, value: &Value) {
        let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
        self.text(&text);
    }

    /// A message for a person, on stderr (not with `--quiet`).
    #[allow(clippy::print_stderr)]
    pub fn say(&self, text: &str) {
        if !self.quiet {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{}", redact(text));
        }
    }

    /// A warning, on stderr (even with `--quiet`? no: quiet means errors only).
    pub fn warn(&self, text: &str) {
        self.say(&format!("warning: {text}"));
    }

    /// What a person must see even with `--quiet`: a paid task's id that is
    /// recorded nowhere else, a resume command, a record that could not be
    /// written. `-q` silences progress and chatter, never these.
    #[allow(clippy::print_stderr)]
    pub fn notice(&self, text: &str) {
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "{}", redact(text));
    }

    /// An error: one sentence on stderr, and with `--json` also
    /// `{"error": {"kind", "message", "taskId"?}}` on stdout. Returns its exit code.
    pub fn error(&self, error: &CliError) -> u8 {
        self.error_with(error, None, false)
    }

    /// A failure: the error, its task and the resume command on stderr (even
    /// with `--quiet`), and with `--json` the same in
    /// `{"error": {"kind", "message", "exitCode", "taskId"?, "resume"?}}` on
    /// stdout. Returns its exit code.
    pub fn failure(&self, failure: &Failure) -> u8 {
        self.error_with(
            &failure.error,
            failure.resume.as_deref(),
            failure.unresumable,
        )
    }

    #[allow(clippy::print_stderr)]
    fn error_with(&self, error: &CliError, resume: Option<&str>, unresumable: bool) -> u8 {
        let code = error.exit_code();
        // The one boundary every error passes: whatever it quotes (a body, a
        // database's message, a URL) is shown without its secrets.
        let message = redact(&error.to_string());
        let resume = resume.map(redact);
        let resume = resume.as_deref();
        {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "kling: {message}");
            match (resume, error.task_id()) {
                (Some(resume), Some(task_id)) if never_seen(error) => {
                    let _ = writeln!(
                        err,
                        "kling: the service never showed task {task_id}: check the id; if it is right (a new task can take a while to appear), resume with: {resume}"
                    );
                }
                (Some(resume), Some(task_id)) => {
                    let _ = writeln!(err, "kling: task {task_id} exists; resume with: {resume}");
                }
                (Some(resume), None) => {
                    let _ = writeln!(err, "kling: resume with: {resume}");
                }
                (None, Some(_)) if unresumable => {
                    let _ = writeln!(
                        err,
                        "kling: the task lived in this process's simulator (--sim) and ended with it; nothing can resume it"
                    );
                }
                (None, _) => {
                    if let Some(hint) = hint(error) {
                        let _ = writeln!(err, "kling: {hint}");
                    }
                }
            }
        }
        if self.json {
            let mut body = json!({"kind": error.kind(), "message": message, "exitCode": code});
            if let Some(task_id) = error.task_id() {
                body["taskId"] = json!(task_id.as_str());
            }
            if let Some(resume) = resume {
                body["resume"] = json!(resume);
            }
            self.document(&json!({"error": body}));
        }
        code
    }

    /// A problem, one sentence on stderr even with `--quiet` (the caller
    /// chooses the exit code and any JSON).
    #[allow(clippy::print_stderr)]
    pub fn problem(&self, message: &str) {
        let _ = writeln!(std::io::stderr().lock(), "kling: {}", redact(message));
    }

    /// A usage problem found by the CLI itself (not clap): exit 2.
    #[allow(clippy::print_stderr)]
    pub fn usage(&self, message: &str) -> u8 {
        let message = &redact(message);
        let _ = writeln!(std::io::stderr().lock(), "kling: {message}");
        if self.json {
            self.document(
                &json!({"error": {"kind": "usage", "message": message, "exitCode": code::INVALID}}),
            );
        }
        code::INVALID
    }
}

/// A wait that ended before the task was ever visible: nothing says it exists.
fn never_seen(error: &CliError) -> bool {
    match error.sdk() {
        Some(Error::WaitTimedOut {
            last_state: kling_api_ext::State::Unknown(s),
            ..
        }) => s == "not visible",
        _ => false,
    }
}

/// What to do next, for the errors where there is something to do.
fn hint(error: &CliError) -> Option<String> {
    match error.sdk()? {
        Error::WaitTimedOut { task_id, .. } => Some(format!("the task keeps running; resume with: kling wait {task_id}")),
        Error::SubmitOutcomeUnknown { .. } => {
            Some("the task may exist and be charged: `kling history` has what was sent and when, to find it on your dashboard; check there (or `kling credits`) before submitting again".into())
        }
        Error::Api { kind: ApiErrorKind::Unauthorized, .. } => Some("set APIKLEY_API_KEY, or pass --api-key / --api-key-file".into()),
        Error::LinkExpired { .. } => Some("run `kling download TASK_ID --out FILE` soon after the task ends".into()),
        Error::Api { kind: ApiErrorKind::NotFound, task_id: Some(task_id), .. } => Some(format!(
            "the service knows no task {task_id}: check the id (a task created a moment ago may not be visible for a few seconds)"
        )),
        Error::Cancelled { task_id } => Some(format!("the task keeps running on the service; resume with: kling wait {task_id}")),
        Error::Api { kind: ApiErrorKind::Rejected, operation: kling_api_ext::error::Operation::CreateTask, msg, .. }
            if msg.to_ascii_lowercase().contains("model") =>
        {
            let known: Vec<&str> = kling_api_ext::Model::ALL.iter().map(|m| m.as_str()).collect();
            Some(format!(
                "no task was created and nothing was charged: the service does not serve that model id; the ids this version knows are {}",
                known.join(", ")
            ))
        }
        _ => None,
    }
}

/// Log lines go to stderr through [`redact`]: the fmt layer writes each
/// event in one call, so a URL or key is never split across two writes.
pub struct RedactingStderr;

impl Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr()
            .lock()
            .write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

/// A command-line error from clap, said without secrets (clap quotes a
/// rejected value, which may be a `KLING_STORE` URL with its password).
#[allow(clippy::print_stderr, clippy::print_stdout)]
pub fn clap_exit(error: clap::Error) -> ! {
    use clap::error::ErrorKind;
    if matches!(
        error.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    ) {
        error.exit()
    }
    let text = error.render().to_string();
    let _ = write!(std::io::stderr().lock(), "{}", redact(&text));
    std::process::exit(error.exit_code())
}

/// A word as a POSIX shell reads it back: as is when it is plain, else in
/// single quotes (so a printed resume command runs as printed).
pub fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Human sizes: 3.7 KB, 92.0 KB, 9.8 MB.
pub fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1_000_000 => format!("{:.1} MB", b as f64 / 1_000_000.0),
        b if b >= 1_000 => format!("{:.1} KB", b as f64 / 1_000.0),
        b => format!("{b} B"),
    }
}

#[cfg(test)]
mod tests;
