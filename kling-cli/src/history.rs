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

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use kling_api_ext::request::MediaSource;
use kling_api_ext::{AvatarRequest, Error, TaskId};
use serde::{Deserialize, Serialize};

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

mod read;

pub use read::{Record, created_recently, read, show, unfinished};
