//! results.jsonl: one line per ended job, appended live and rewritten from
//! the journal at the end of every run.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use serde_json::Value;

use super::{JOURNAL, JobState, RESULTS, replay};
use crate::batch::ResultLine;

/// The line results.jsonl holds for a job in `state`, if it has ended.
pub fn result_of(id: &str, state: &JobState) -> Option<Value> {
    match state {
        JobState::Finished { result } => Some(result.clone()),
        JobState::Rejected { kind, message } => {
            Some(ResultLine::rejected(id, kind, message).to_value())
        }
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

/// `rewrite_results_with`, without invalid lines. Returns the number of lines.
#[cfg(test)]
pub fn rewrite_results(dir: &Path) -> std::io::Result<usize> {
    rewrite_results_with(dir, &[])
}

/// Rewrites results.jsonl from the journal (one line per ended job, in the
/// order the jobs first appear in it), then one line per invalid manifest line of this run
/// (`{"line", "status": "invalid", "error"}`), so the file accounts for every
/// line of the manifest.
pub fn rewrite_results_with(dir: &Path, invalid: &[ResultLine]) -> std::io::Result<usize> {
    let bytes = std::fs::read(dir.join(JOURNAL))?;
    let (states, order, _) = replay(&bytes);
    let mut text = Vec::new();
    let mut count = 0;
    let ended = order.iter().filter_map(|id| {
        states
            .get(id)
            .and_then(|record| result_of(id, &record.state))
    });
    for result in ended.chain(invalid.iter().map(ResultLine::to_value)) {
        text.extend(serde_json::to_vec(&result).map_err(std::io::Error::other)?);
        text.push(b'\n');
        count += 1;
    }
    crate::atomic::write(&dir.join(RESULTS), &text, crate::atomic::Access::Shared)?;
    Ok(count)
}
