//! The batch journal: an append-only JSONL file in the output directory,
//! synced to disk after every event, from which a rerun rebuilds each job's
//! state. The intent to submit is recorded *before* createTask and the task id
//! after it, so a crash in between leaves a job whose outcome is unknown —
//! which a rerun reports instead of paying for it twice.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::Value;

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
    Intent { id: String, input: String, at: u64 },
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
    /// The job was refused before any task existed (by a check or the service).
    #[serde(rename_all = "camelCase")]
    Rejected {
        id: String,
        kind: String,
        message: String,
        at: u64,
    },
    /// The task ended: a result line is due in results.jsonl.
    #[serde(rename_all = "camelCase")]
    Finished { id: String, result: Value, at: u64 },
}

impl Event {
    pub fn id(&self) -> &str {
        match self {
            Event::Intent { id, .. }
            | Event::Submitted { id, .. }
            | Event::Unknown { id, .. }
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
    /// Nothing recorded.
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

/// Each job's state, by id.
pub type States = BTreeMap<String, JobState>;

pub struct Journal {
    path: PathBuf,
    file: Mutex<File>,
}

impl Journal {
    /// Opens (or creates) the journal in `dir` and replays it.
    pub fn open(dir: &Path) -> std::io::Result<(Journal, States, usize)> {
        let path = dir.join(JOURNAL);
        let mut states = States::new();
        let mut torn = 0usize;
        if path.exists() {
            for line in BufReader::new(File::open(&path)?).lines() {
                let line = line?;
                if line.trim().is_empty() {
                    continue;
                }
                // A crash may tear the last line: it is skipped (its event was
                // never acted on, since the event is written before acting).
                let Ok(event) = serde_json::from_str::<Event>(&line) else {
                    torn += 1;
                    continue;
                };
                let id = event.id().to_owned();
                states.insert(id, apply(event));
            }
        }
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        Ok((
            Journal {
                path,
                file: Mutex::new(file),
            },
            states,
            torn,
        ))
    }

    /// Appends an event and syncs it to disk before returning.
    pub fn record(&self, event: &Event) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(event).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        file.write_all(&line)?;
        file.sync_data()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The state an event leaves its job in (each event replaces the last).
fn apply(event: Event) -> JobState {
    match event {
        Event::Intent { input, .. } => JobState::Interrupted { input },
        Event::Submitted { task_id, .. } => JobState::Submitted { task_id },
        Event::Unknown { error, .. } => JobState::Unknown { error },
        Event::Rejected { kind, message, .. } => JobState::Rejected { kind, message },
        Event::Finished { result, .. } => JobState::Finished { result },
    }
}

/// The line results.jsonl holds for a job in `state`, if it has ended.
pub fn result_of(id: &str, state: &JobState) -> Option<Value> {
    match state {
        JobState::Finished { result } => Some(result.clone()),
        JobState::Rejected { kind, message } => Some(
            serde_json::json!({"id": id, "status": "rejected", "error": {"kind": kind, "message": message}}),
        ),
        _ => None,
    }
}

/// The results file. Lines are appended as jobs end (to follow a run live);
/// at the end of every run the file is rewritten from the journal, atomically,
/// with exactly one line per ended job (its latest outcome), so a crash, a
/// retried job or a torn append never leaves duplicates or gaps for long.
pub struct Results {
    file: Mutex<File>,
}

impl Results {
    pub fn open(dir: &Path) -> std::io::Result<Results> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(RESULTS))?;
        Ok(Results {
            file: Mutex::new(file),
        })
    }

    pub fn append(&self, result: &Value) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(result).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        file.write_all(&line)?;
        file.sync_data()
    }
}

/// Rewrites results.jsonl from the journal: one line per ended job, in the order
/// the jobs first appear in the journal. Returns the number of lines.
pub fn rewrite_results(dir: &Path) -> std::io::Result<usize> {
    let (journal, states, _) = Journal::open(dir)?;
    drop(journal);
    let mut order: Vec<String> = Vec::new();
    for line in BufReader::new(File::open(dir.join(JOURNAL))?).lines() {
        if let Ok(event) = serde_json::from_str::<Event>(&line?)
            && !order.iter().any(|id| id == event.id())
        {
            order.push(event.id().to_owned());
        }
    }
    let mut text = Vec::new();
    let mut count = 0;
    for id in &order {
        if let Some(result) = states.get(id).and_then(|state| result_of(id, state)) {
            text.extend(serde_json::to_vec(&result).map_err(std::io::Error::other)?);
            text.push(b'\n');
            count += 1;
        }
    }
    let temp = dir.join(format!(".{RESULTS}.tmp"));
    {
        let mut file = File::create(&temp)?;
        file.write_all(&text)?;
        file.sync_all()?;
    }
    std::fs::rename(&temp, dir.join(RESULTS))?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn replay_rebuilds_each_jobs_state_and_skips_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (journal, states, _) = Journal::open(dir.path()).unwrap();
            assert!(states.is_empty());
            for event in [
                Event::Intent {
                    id: "a".into(),
                    input: "ia".into(),
                    at: 1,
                },
                Event::Submitted {
                    id: "a".into(),
                    task_id: "t-a".into(),
                    at: 2,
                },
                Event::Intent {
                    id: "b".into(),
                    input: "ib".into(),
                    at: 3,
                },
                Event::Intent {
                    id: "c".into(),
                    input: "ic".into(),
                    at: 4,
                },
                Event::Unknown {
                    id: "c".into(),
                    error: "reset".into(),
                    at: 5,
                },
                Event::Rejected {
                    id: "d".into(),
                    kind: "rejected".into(),
                    message: "bad".into(),
                    at: 6,
                },
                Event::Intent {
                    id: "e".into(),
                    input: "ie".into(),
                    at: 7,
                },
                Event::Submitted {
                    id: "e".into(),
                    task_id: "t-e".into(),
                    at: 8,
                },
                Event::Finished {
                    id: "e".into(),
                    result: json!({"id": "e", "status": "done"}),
                    at: 9,
                },
            ] {
                journal.record(&event).unwrap();
            }
        }
        // A crash mid-write.
        let mut file = OpenOptions::new()
            .append(true)
            .open(dir.path().join(JOURNAL))
            .unwrap();
        file.write_all(b"{\"event\":\"submitted\",\"id\":\"b\",\"tas")
            .unwrap();
        let (_, states, torn) = Journal::open(dir.path()).unwrap();
        assert_eq!(torn, 1);
        assert_eq!(
            states["a"],
            JobState::Submitted {
                task_id: "t-a".into()
            }
        );
        assert_eq!(states["b"], JobState::Interrupted { input: "ib".into() });
        assert_eq!(
            states["c"],
            JobState::Unknown {
                error: "reset".into()
            }
        );
        assert!(matches!(states["d"], JobState::Rejected { .. }));
        assert!(matches!(states["e"], JobState::Finished { .. }));
    }

    #[test]
    fn results_are_rebuilt_with_one_line_per_ended_job() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _, _) = Journal::open(dir.path()).unwrap();
        for event in [
            Event::Rejected {
                id: "a".into(),
                kind: "insufficient_credits".into(),
                message: "no".into(),
                at: 1,
            },
            Event::Intent {
                id: "b".into(),
                input: "ib".into(),
                at: 2,
            },
            Event::Submitted {
                id: "b".into(),
                task_id: "t".into(),
                at: 3,
            },
            Event::Finished {
                id: "b".into(),
                result: json!({"id": "b", "status": "done"}),
                at: 4,
            },
            Event::Intent {
                id: "c".into(),
                input: "ic".into(),
                at: 5,
            },
            // Retried after the rejection: the later outcome wins.
            Event::Intent {
                id: "a".into(),
                input: "ia".into(),
                at: 6,
            },
            Event::Submitted {
                id: "a".into(),
                task_id: "t2".into(),
                at: 7,
            },
            Event::Finished {
                id: "a".into(),
                result: json!({"id": "a", "status": "done"}),
                at: 8,
            },
        ] {
            journal.record(&event).unwrap();
        }
        let results = Results::open(dir.path()).unwrap();
        results
            .append(&json!({"id": "a", "status": "rejected"}))
            .unwrap();
        results
            .append(&json!({"id": "a", "status": "done"}))
            .unwrap();
        assert_eq!(rewrite_results(dir.path()).unwrap(), 2);
        let text = std::fs::read_to_string(dir.path().join(RESULTS)).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            lines,
            [
                json!({"id": "a", "status": "done"}),
                json!({"id": "b", "status": "done"})
            ]
        );
    }
}
