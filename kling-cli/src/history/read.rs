//! Reading the history back: each request's events folded into one
//! [`Record`], newest first, for `kling history` and for the checks that ask
//! whether a task is new.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use serde::Serialize;
use serde_json::json;

use super::{Entry, FILE, now_ms, state_dir};
use crate::output::Out;

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
