//! The batch journal: an append-only JSONL file in the output directory,
//! synced to disk after every event, from which a rerun rebuilds each job's
//! state. The intent to submit is recorded *before* createTask and the task id
//! after it, so a crash in between leaves a job whose outcome is unknown —
//! which a rerun reports instead of paying for it twice. A createTask the
//! service certainly did not take is recorded too (`notTaken`), so that job is
//! simply to do again on the next run.
//!
//! Damage never blocks a resume and never costs a whole event: a torn line (a
//! crash or a full disk mid-write) or a line that is not UTF-8 is skipped and
//! counted; a torn tail is closed with a newline before anything is appended,
//! and a failed append is cut back off the file, so the next event always
//! starts a line of its own.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use serde_json::Value;

use crate::atomic::sync_dir;

/// The journal's file name in the output directory.
pub const JOURNAL: &str = "journal.jsonl";
/// The results file's name in the output directory.
pub const RESULTS: &str = "results.jsonl";

/// One event.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "event", rename_all = "camelCase")]
pub enum Event {
    /// About to send createTask for this input.
    #[serde(rename_all = "camelCase")]
    Intent {
        id: String,
        input: String,
        /// The nonce in its callBackUrl (webhook mode, `--listen`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nonce: Option<String>,
        /// The service the task is created on (its base URL, shown safely;
        /// `kling --sim` for the embedded simulator): a rerun against
        /// another service would find none of these tasks and pay again.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        service: Option<String>,
        at: u64,
    },
    /// createTask answered with this task.
    #[serde(rename_all = "camelCase")]
    Submitted {
        id: String,
        task_id: String,
        at: u64,
    },
    /// createTask's outcome is unknown: the task may exist.
    #[serde(rename_all = "camelCase")]
    Unknown { id: String, error: String, at: u64 },
    /// After an unknown outcome, the task's callback (on the intent's nonce)
    /// named the task: it exists, once.
    #[serde(rename_all = "camelCase")]
    Recovered {
        id: String,
        task_id: String,
        at: u64,
    },
    /// createTask was certainly not taken (no connection, 429/433/455, no
    /// credits, cancelled before it was sent): no task exists, and the job is
    /// to do again on the next run.
    #[serde(rename_all = "camelCase")]
    NotTaken {
        id: String,
        kind: String,
        message: String,
        /// The submit tries again (after its backoff): the job is still this
        /// run's, only no task exists for it yet.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        retrying: bool,
        at: u64,
    },
    /// An earlier intent's task, whose answer was never recorded, named by
    /// its callback (on that intent's nonce) while the job went on without
    /// it (`--resubmit-ambiguous`): it exists and is paid for. Recorded with
    /// the job's tasks; the job's own state does not change.
    #[serde(rename_all = "camelCase")]
    Found {
        id: String,
        task_id: String,
        nonce: String,
        at: u64,
    },
    /// The job was refused before any task existed (by a check or the service).
    #[serde(rename_all = "camelCase")]
    Rejected {
        id: String,
        kind: String,
        message: String,
        /// The line's inputs (absent in journals written before 0.2).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        input: Option<String>,
        at: u64,
    },
    /// The task ended: a result line is due in results.jsonl.
    #[serde(rename_all = "camelCase")]
    Finished {
        id: String,
        /// A [`ResultLine`](super::ResultLine), kept as written: a line an earlier version
        /// journaled is given back as it was.
        result: Value,
        at: u64,
    },
}

impl Event {
    pub fn id(&self) -> &str {
        match self {
            Event::Intent { id, .. }
            | Event::Submitted { id, .. }
            | Event::Unknown { id, .. }
            | Event::Recovered { id, .. }
            | Event::Found { id, .. }
            | Event::NotTaken { id, .. }
            | Event::Rejected { id, .. }
            | Event::Finished { id, .. } => id,
        }
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Where a job stands, from its events.
#[derive(Clone, Debug, PartialEq)]
pub enum JobState {
    /// Nothing recorded, or nothing that created a task: to do.
    New,
    /// An intent with no answer: the process stopped while createTask was out.
    Interrupted { input: String },
    /// A task exists.
    Submitted { task_id: String },
    /// The submit's outcome is unknown.
    Unknown { error: String },
    /// Refused; no task exists.
    Rejected { kind: String, message: String },
    /// Ended, with its result line.
    Finished { result: Value },
}

/// A job's state and what it was asked to make.
#[derive(Clone, Debug, PartialEq)]
pub struct JobRecord {
    pub state: JobState,
    /// The manifest line's inputs when the job was last submitted (or refused).
    pub input: Option<String>,
    /// Every task created for the job, oldest first.
    pub task_ids: Vec<String>,
    /// The nonce of its last intent (webhook mode).
    pub nonce: Option<String>,
    /// The nonces of every intent whose outcome is still unknown (no answer,
    /// no callback found its task), oldest first: their tasks may exist.
    pub open_nonces: Vec<String>,
    /// When its last intent was recorded (ms since the Unix epoch), if known.
    pub intent_at: Option<u64>,
    /// The service its last intent was for, if recorded.
    pub service: Option<String>,
    /// The nonce of an intent not answered yet by a later event.
    pub pending: Option<String>,
}

impl JobRecord {
    fn new() -> JobRecord {
        JobRecord {
            state: JobState::New,
            input: None,
            task_ids: Vec::new(),
            nonce: None,
            open_nonces: Vec::new(),
            intent_at: None,
            service: None,
            pending: None,
        }
    }

    /// The last intent was answered either way: its nonce is no longer open.
    fn close_last(&mut self) {
        if let Some(nonce) = self.pending.take() {
            self.open_nonces.retain(|n| *n != nonce);
        }
    }

    /// Applies one event (each replaces the state before it).
    fn apply(&mut self, event: Event) {
        self.state = match event {
            Event::Intent {
                input,
                nonce,
                service,
                at,
                ..
            } => {
                if service.is_some() {
                    self.service = service;
                }
                self.input = Some(input.clone());
                if let Some(nonce) = &nonce
                    && !self.open_nonces.contains(nonce)
                {
                    self.open_nonces.push(nonce.clone());
                }
                self.pending.clone_from(&nonce);
                self.nonce = nonce;
                self.intent_at = Some(at);
                JobState::Interrupted { input }
            }
            Event::Recovered { ref task_id, .. } => {
                // Its nonce is the last intent's (left open by `unknown`): the
                // callback on it named this task, so it is closed.
                if let Some(nonce) = &self.nonce {
                    self.open_nonces.retain(|n| n != nonce);
                }
                self.pending = None;
                if !self.task_ids.contains(task_id) {
                    self.task_ids.push(task_id.clone());
                }
                JobState::Submitted {
                    task_id: task_id.clone(),
                }
            }
            Event::Submitted { task_id, .. } => {
                self.close_last();
                if !self.task_ids.contains(&task_id) {
                    self.task_ids.push(task_id.clone());
                }
                JobState::Submitted { task_id }
            }
            Event::Found { task_id, nonce, .. } => {
                self.open_nonces.retain(|n| *n != nonce);
                if !self.task_ids.contains(&task_id) {
                    self.task_ids.push(task_id);
                }
                return;
            }
            Event::Unknown { error, .. } => {
                // Left open: its task may exist.
                self.pending = None;
                JobState::Unknown { error }
            }
            Event::NotTaken { .. } => {
                self.close_last();
                JobState::New
            }
            Event::Rejected {
                kind,
                message,
                input,
                ..
            } => {
                self.close_last();
                if input.is_some() {
                    self.input = input;
                }
                JobState::Rejected { kind, message }
            }
            Event::Finished { result, .. } => JobState::Finished { result },
        };
    }
}

/// Each job's record, by id.
pub type States = BTreeMap<String, JobRecord>;

/// What replaying the journal had to skip.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Damage {
    /// Lines that are not a whole event (torn by a crash or a full disk).
    pub torn: usize,
    /// Lines that are not UTF-8.
    pub not_utf8: usize,
    /// Their line numbers (1-based), for the warning.
    pub lines: Vec<usize>,
}

impl Damage {
    pub fn is_empty(&self) -> bool {
        self.torn == 0 && self.not_utf8 == 0
    }
}

struct Appender {
    file: File,
    /// The file's length after the last whole event: a failed append is cut
    /// back to it.
    good_len: u64,
    /// The cut failed too: the next event starts with a newline.
    needs_newline: bool,
}

pub struct Journal {
    path: PathBuf,
    appender: Mutex<Appender>,
}

/// Replays journal bytes into each job's record.
pub fn replay(bytes: &[u8]) -> (States, Vec<String>, Damage) {
    let mut states = States::new();
    let mut order = Vec::new();
    let mut damage = Damage::default();
    for (index, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let Ok(text) = std::str::from_utf8(line) else {
            damage.not_utf8 += 1;
            damage.lines.push(index + 1);
            continue;
        };
        // A crash may tear a line: it is skipped (its event was never acted
        // on, since each event is written before acting).
        let Ok(event) = serde_json::from_str::<Event>(text) else {
            damage.torn += 1;
            damage.lines.push(index + 1);
            continue;
        };
        let id = event.id().to_owned();
        if !states.contains_key(&id) {
            order.push(id.clone());
        }
        states.entry(id).or_insert_with(JobRecord::new).apply(event);
    }
    (states, order, damage)
}

impl Journal {
    /// Opens (or creates, synced with its directory) the journal in `dir` and
    /// replays it. Returns the journal, each job's record, and what was skipped.
    pub fn open(dir: &Path) -> std::io::Result<(Journal, States, Damage)> {
        let path = dir.join(JOURNAL);
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        if !existed {
            file.sync_all()?;
            sync_dir(dir)?;
        }
        let (states, _, damage) = replay(&bytes);
        if bytes.last().is_some_and(|b| *b != b'\n') {
            // A torn tail: close its line, so the next event is not glued to it.
            file.write_all(b"\n")?;
            file.sync_data()?;
            bytes.push(b'\n');
        }
        Ok((
            Journal {
                path,
                appender: Mutex::new(Appender {
                    file,
                    good_len: bytes.len() as u64,
                    needs_newline: false,
                }),
            },
            states,
            damage,
        ))
    }

    /// Appends an event and syncs it to disk before returning. On failure
    /// nothing of the event stays in the file (or, if even that fails, the
    /// next event starts on a new line).
    pub fn record(&self, event: &Event) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(event).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut appender = self.appender.lock().unwrap_or_else(|p| p.into_inner());
        if appender.needs_newline {
            line.insert(0, b'\n');
        }
        let written = appender
            .file
            .write_all(&line)
            .and_then(|()| appender.file.sync_data());
        match written {
            Ok(()) => {
                appender.good_len += line.len() as u64;
                appender.needs_newline = false;
                Ok(())
            }
            Err(e) => {
                let good = appender.good_len;
                if appender.file.set_len(good).is_err() {
                    appender.needs_newline = true;
                }
                Err(e)
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    #[cfg(test)]
    fn with_file(path: PathBuf, file: File) -> Journal {
        Journal {
            path,
            appender: Mutex::new(Appender {
                file,
                good_len: 0,
                needs_newline: false,
            }),
        }
    }
}

mod results;
#[cfg(test)]
mod tests;

#[cfg(test)]
pub use results::rewrite_results;
pub use results::{Results, rewrite_results_with};
