//! The history of paid requests: every createTask this CLI sends, recorded
//! before it is sent (the intent) and after (its task id, or why there is
//! none), in `history.jsonl` in the state directory. After "outcome unknown"
//! it is what the user has to find the task on the dashboard: when, which
//! inputs, which service. It never holds the key, and URLs lose their query.
//!
//! `kling history` reads it back, newest first. Appends are single writes
//! to a file opened in append mode, so concurrent `kling` processes do not
//! tear each other's lines; a damaged line is skipped. Trouble writing it is
//! said once and never stops a job.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kling_api_ext::request::MediaSource;
use kling_api_ext::{AvatarRequest, Error, TaskId};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::output::Out;

/// The history's file name in the state directory.
pub const FILE: &str = "history.jsonl";

/// Where the CLI keeps what it remembers: `$KLING_STATE_DIR`, else
/// `$XDG_STATE_HOME/kling`, else `~/.local/state/kling`.
pub fn state_dir() -> Option<PathBuf> {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    var("KLING_STATE_DIR")
        .map(PathBuf::from)
        .or_else(|| var("XDG_STATE_HOME").map(|d| PathBuf::from(d).join("kling")))
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".local/state/kling")))
}

/// One line of the history.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum Entry {
    /// About to send createTask.
    #[serde(rename_all = "camelCase")]
    Intent {
        #[serde(rename = "ref")]
        reference: String,
        at: u64,
        base_url: String,
        model: String,
        image: String,
        audio: String,
        output: Option<String>,
        /// `generate`, `submit`, or `batch JOB_ID`.
        by: String,
        /// The nonce in its callBackUrl (webhook mode, `--listen`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nonce: Option<String>,
    },
    /// createTask's answer was lost, and the task's callback named it.
    #[serde(rename_all = "camelCase")]
    Recovered {
        #[serde(rename = "ref")]
        reference: String,
        at: u64,
        task_id: String,
    },
    /// After a lost answer, callbacks on the intent's URL named these tasks,
    /// but none could be read to confirm it was this request's.
    #[serde(rename_all = "camelCase")]
    Named {
        #[serde(rename = "ref")]
        reference: String,
        at: u64,
        task_ids: Vec<String>,
        error: String,
    },
    /// A task of an earlier intent, whose answer was never recorded, named
    /// by its callback later (a rerun listening on that intent's nonce).
    #[serde(rename_all = "camelCase")]
    Found {
        #[serde(rename = "ref")]
        reference: String,
        at: u64,
        base_url: String,
        by: String,
        task_id: String,
        nonce: String,
        /// Why it could not be read to confirm it (an outage): the callback
        /// named it, the service did not confirm it yet.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unconfirmed: Option<String>,
    },
    /// createTask answered with a task.
    #[serde(rename_all = "camelCase")]
    Submitted {
        #[serde(rename = "ref")]
        reference: String,
        at: u64,
        task_id: String,
    },
    /// Nobody knows whether a task exists.
    #[serde(rename_all = "camelCase")]
    Unknown {
        #[serde(rename = "ref")]
        reference: String,
        at: u64,
        error: String,
    },
    /// Certainly no task.
    #[serde(rename_all = "camelCase")]
    NotTaken {
        #[serde(rename = "ref")]
        reference: String,
        at: u64,
        error: String,
    },
    /// A state read later (`kling history --refresh`).
    #[serde(rename_all = "camelCase")]
    State {
        #[serde(rename = "ref")]
        reference: String,
        at: u64,
        state: String,
    },
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A media input as the history keeps it: a path, or a URL without its query.
fn shown(source: &MediaSource) -> String {
    source.to_string()
}

/// The history of this process's paid requests (off under `--sim`).
pub struct History {
    path: Option<PathBuf>,
    out: Out,
    warned: AtomicBool,
}

impl History {
    pub fn new(out: Out, enabled: bool) -> History {
        History {
            path: state_dir().filter(|_| enabled).map(|d| d.join(FILE)),
            out,
            warned: AtomicBool::new(false),
        }
    }

    fn append(&self, entry: &Entry) {
        let Some(path) = &self.path else { return };
        let written = (|| {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let mut line = serde_json::to_vec(entry).map_err(std::io::Error::other)?;
            line.push(b'\n');
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            file.write_all(&line)?;
            file.sync_data()
        })();
        if let Err(e) = written
            && !self.warned.swap(true, Ordering::SeqCst)
        {
            self.out.notice(&format!(
                "warning: cannot write the history {}: {e} (the jobs go on)",
                path.display()
            ));
        }
    }

    /// Records the intent to create a task for `request`; returns its reference.
    pub fn intent(
        &self,
        base_url: &str,
        request: &AvatarRequest,
        output: Option<String>,
        by: String,
        nonce: Option<&str>,
    ) -> String {
        // Random enough to join a request's lines (std's hasher keys are random).
        let reference = {
            use std::hash::{BuildHasher as _, Hasher as _};
            let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
            hasher.write_u64(now_ms());
            format!("{:016x}", hasher.finish())
        };
        self.append(&Entry::Intent {
            reference: reference.clone(),
            at: now_ms(),
            // A base URL may carry a user and password (a proxy's): never kept.
            base_url: kling_api_ext::redact(base_url),
            model: request.model().cloned().unwrap_or_default().to_string(),
            image: shown(request.image().source()),
            audio: shown(request.audio().source()),
            output,
            by,
            nonce: nonce.map(str::to_owned),
        });
        reference
    }

    /// Records the task a lost createTask answer left, as its callback named it.
    pub fn recovered(&self, reference: &str, task_id: &str) {
        self.append(&Entry::Recovered {
            reference: reference.to_owned(),
            at: now_ms(),
            task_id: task_id.to_owned(),
        });
    }

    /// Records a task an earlier intent's callback named (see [`Entry::Found`]).
    /// `unconfirmed`: why it could not be read (it is recorded all the same:
    /// it may be a paid task).
    pub fn found(
        &self,
        base_url: &str,
        by: &str,
        task_id: &str,
        nonce: &str,
        unconfirmed: Option<&str>,
    ) {
        self.append(&Entry::Found {
            reference: format!("found-{nonce}-{task_id}"),
            at: now_ms(),
            base_url: kling_api_ext::redact(base_url),
            by: by.to_owned(),
            task_id: task_id.to_owned(),
            nonce: nonce.to_owned(),
            unconfirmed: unconfirmed.map(str::to_owned),
        });
    }

    /// Records the tasks callbacks named for a lost answer, unconfirmed.
    pub fn named(&self, reference: &str, task_ids: &[String], error: &str) {
        self.append(&Entry::Named {
            reference: reference.to_owned(),
            at: now_ms(),
            task_ids: task_ids.to_vec(),
            error: error.to_owned(),
        });
    }

    /// Records what createTask answered.
    pub fn outcome(&self, reference: &str, created: &Result<TaskId, Error>) {
        let reference = reference.to_owned();
        let at = now_ms();
        self.append(&match created {
            Ok(task_id) => Entry::Submitted {
                reference,
                at,
                task_id: task_id.to_string(),
            },
            Err(e) if e.is_not_taken() => Entry::NotTaken {
                reference,
                at,
                error: e.to_string(),
            },
            Err(e) => Entry::Unknown {
                reference,
                at,
                error: e.to_string(),
            },
        });
    }

    /// Records a state read later.
    pub fn state(&self, reference: &str, state: &str) {
        self.append(&Entry::State {
            reference: reference.to_owned(),
            at: now_ms(),
            state: state.to_owned(),
        });
    }
}

/// One request, its events folded: what `kling history` shows.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    #[serde(rename = "ref")]
    pub reference: String,
    /// When the request was sent (RFC 3339).
    pub at: String,
    #[serde(skip)]
    pub at_ms: u64,
    /// `submitted`, `recovered` (the answer was lost, the callback named the
    /// task), a task state read later, `outcome unknown`, `interrupted` (no
    /// answer was recorded), or `not taken`.
    pub state: String,
    pub task_id: Option<String>,
    pub error: Option<String>,
    pub base_url: String,
    pub model: String,
    pub image: String,
    pub audio: String,
    pub output: Option<String>,
    pub by: String,
}

/// Whether this machine's history says `task_id` was created in the last
/// minute (so it may not be visible on the service yet).
pub fn created_recently(task_id: &str) -> bool {
    let now = now_ms();
    read()
        .iter()
        .any(|r| r.task_id.as_deref() == Some(task_id) && now.saturating_sub(r.at_ms) < 60_000)
}

/// Reads the history, newest first.
pub fn read() -> Vec<Record> {
    let Some(path) = state_dir().map(|d| d.join(FILE)) else {
        return Vec::new();
    };
    let bytes = std::fs::read(path).unwrap_or_default();
    let mut records: BTreeMap<String, Record> = BTreeMap::new();
    for line in bytes.split(|b| *b == b'\n') {
        let Ok(entry) = serde_json::from_slice::<Entry>(line) else {
            continue;
        };
        match entry {
            Entry::Intent {
                reference,
                at,
                base_url,
                model,
                image,
                audio,
                output,
                by,
                ..
            } => {
                let when = UNIX_EPOCH + Duration::from_millis(at);
                records.insert(
                    reference.clone(),
                    Record {
                        reference,
                        at: humantime::format_rfc3339_seconds(when).to_string(),
                        at_ms: at,
                        state: "interrupted".into(),
                        task_id: None,
                        error: None,
                        base_url,
                        model,
                        image,
                        audio,
                        output,
                        by,
                    },
                );
            }
            Entry::Found {
                reference,
                at,
                base_url,
                by,
                task_id,
                unconfirmed,
                ..
            } => {
                let when = UNIX_EPOCH + Duration::from_millis(at);
                records.insert(
                    reference.clone(),
                    Record {
                        reference,
                        at: humantime::format_rfc3339_seconds(when).to_string(),
                        at_ms: at,
                        state: if unconfirmed.is_some() {
                            "found, unconfirmed".into()
                        } else {
                            "found".into()
                        },
                        task_id: Some(task_id),
                        error: unconfirmed,
                        base_url,
                        model: String::new(),
                        image: String::new(),
                        audio: String::new(),
                        output: None,
                        by,
                    },
                );
            }
            Entry::Submitted {
                reference, task_id, ..
            } => {
                if let Some(r) = records.get_mut(&reference) {
                    r.state = "submitted".into();
                    r.task_id = Some(task_id);
                }
            }
            Entry::Recovered {
                reference, task_id, ..
            } => {
                if let Some(r) = records.get_mut(&reference) {
                    r.state = "recovered".into();
                    r.task_id = Some(task_id);
                }
            }
            Entry::Unknown {
                reference, error, ..
            } => {
                if let Some(r) = records.get_mut(&reference) {
                    r.state = "outcome unknown".into();
                    r.error = Some(error);
                }
            }
            Entry::Named {
                reference,
                task_ids,
                error,
                ..
            } => {
                if let Some(r) = records.get_mut(&reference) {
                    let before = r.error.take().unwrap_or_default();
                    r.error = Some(format!(
                        "{before}; its callback named task {} but it could not be read ({error}): check with `kling status`",
                        task_ids.join(", task ")
                    ));
                }
            }
            Entry::NotTaken {
                reference, error, ..
            } => {
                if let Some(r) = records.get_mut(&reference) {
                    r.state = "not taken".into();
                    r.error = Some(error);
                }
            }
            Entry::State {
                reference, state, ..
            } => {
                if let Some(r) = records.get_mut(&reference) {
                    r.state = state;
                }
            }
        }
    }
    let mut records: Vec<Record> = records.into_values().collect();
    records.sort_by_key(|r| std::cmp::Reverse(r.at_ms));
    records
}

/// Whether a record's task may still change state (worth a refresh).
pub fn unfinished(record: &Record) -> bool {
    record.task_id.is_some() && !matches!(record.state.as_str(), "success" | "fail")
}

/// The records as `kling history` prints them.
pub fn show(out: &Out, records: &[Record]) {
    // Lines written before every message was redacted are shown safely too.
    let records: Vec<Record> = records
        .iter()
        .cloned()
        .map(|mut r| {
            r.error = r.error.as_deref().map(kling_api_ext::redact);
            r.base_url = kling_api_ext::redact(&r.base_url);
            r
        })
        .collect();
    let records = records.as_slice();
    if out.json {
        out.document(&json!(records));
        return;
    }
    if records.is_empty() {
        out.say("no paid request recorded yet");
        return;
    }
    for r in records {
        let task = r.task_id.as_deref().unwrap_or("-");
        let output = r
            .output
            .as_deref()
            .map(|o| format!(" -> {o}"))
            .unwrap_or_default();
        out.text(&format!(
            "{}  {:<16} {task}  {} {} + {}{output}  ({}, {})",
            r.at, r.state, r.model, r.image, r.audio, r.by, r.base_url
        ));
        if let Some(error) = &r.error {
            out.text(&format!("      {error}"));
        }
    }
}
