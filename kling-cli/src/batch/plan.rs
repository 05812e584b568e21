//! What each job's record says to do on this run: the one set of rules for
//! the journal and for the fleet's store.

use super::ResultLine;
use super::journal::{JobRecord, JobState};
use super::manifest::Job;
use super::report::{Counts, add};
use crate::cli::BatchArgs;

/// How a job that ended in an earlier run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    Done,
    Failed,
    Rejected,
}

/// What to do with one job.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Submit it; `note` says why a job that ran before is submitted again.
    Submit { note: Option<String> },
    /// Its task exists: wait for it.
    Wait(String),
    /// It ended in an earlier run: skipped.
    Ended(Ended),
    /// The line changed while a task is at stake: left as it was (`note` says so).
    Changed { note: String },
    /// Its earlier submit's outcome is unknown: left alone.
    Ambiguous,
}

/// The rules: a finished job is skipped, a task that exists is waited for, a
/// job whose task may exist is never submitted again unless asked, and a
/// changed line is reported rather than taken for the old one.
pub fn decide(job: &Job, record: Option<&JobRecord>, args: &BatchArgs) -> Decision {
    let state = record.map_or(JobState::New, |r| r.state.clone());
    let changed = record
        .and_then(|r| r.input.as_deref())
        .is_some_and(|input| input != job.input);
    // Only where a task exists or may exist: a line fixed after a refusal
    // has nothing to protect and simply runs.
    let task_at_stake = matches!(
        state,
        JobState::Interrupted { .. }
            | JobState::Unknown { .. }
            | JobState::Submitted { .. }
            | JobState::Finished { .. }
    );
    if changed && matches!(state, JobState::Rejected { .. }) {
        return Decision::Submit {
            note: Some(format!(
                "job {} (line {}): the line changed since it was refused: submitting it",
                job.id, job.line
            )),
        };
    }
    if changed && task_at_stake {
        let tasks = record.map(|r| r.task_ids.join(", ")).unwrap_or_default();
        let tasks = if tasks.is_empty() {
            String::new()
        } else {
            format!(" (task {tasks})")
        };
        if !args.rerun_changed {
            return Decision::Changed {
                note: format!(
                    "job {} (line {}): the line changed since the job was submitted{tasks}: left as it was; rerun with --rerun-changed to submit the new version (a new, paid task)",
                    job.id, job.line
                ),
            };
        }
        return Decision::Submit {
            note: Some(format!(
                "job {} (line {}): the line changed: submitting the new version as a new task; the earlier one{tasks} is not replaced on the service",
                job.id, job.line
            )),
        };
    }
    match state {
        JobState::Interrupted { .. } | JobState::Unknown { .. } if !args.resubmit_ambiguous => {
            Decision::Ambiguous
        }
        JobState::Finished { result }
            if args.retry_failed && ResultLine::read(&result).is_some_and(|r| r.is_failed()) =>
        {
            Decision::Submit {
                note: Some(format!(
                    "job {} (line {}): its task failed; submitting it again (a new task, paid if it succeeds)",
                    job.id, job.line
                )),
            }
        }
        JobState::Finished { result } => {
            if ResultLine::read(&result).is_some_and(|r| r.is_done()) {
                Decision::Ended(Ended::Done)
            } else {
                Decision::Ended(Ended::Failed)
            }
        }
        JobState::Rejected { .. } if !args.retry_rejected => Decision::Ended(Ended::Rejected),
        JobState::Submitted { task_id } => Decision::Wait(task_id),
        _ => Decision::Submit { note: None },
    }
}

/// What planning tells and counts of the jobs it leaves as they are, the
/// same for the journal and for the fleet's store.
pub struct Tally<'a> {
    pub counts: &'a Counts,
    /// Jobs left alone: their earlier submit's outcome is unknown.
    pub ambiguous: Vec<String>,
    /// Jobs that ended in an earlier run.
    pub skipped: usize,
}

impl<'a> Tally<'a> {
    pub fn new(counts: &'a Counts) -> Self {
        Tally {
            counts,
            ambiguous: Vec::new(),
            skipped: 0,
        }
    }

    /// Counts (and says) a job left as it is; gives back a decision that
    /// has the caller act (submit, wait).
    pub fn take(
        &mut self,
        job: &Job,
        decision: Decision,
        out: crate::output::Out,
    ) -> Option<Decision> {
        match decision {
            Decision::Ended(ended) => {
                self.skipped += 1;
                self.counts.ended(ended);
            }
            Decision::Changed { note } => {
                add(&self.counts.changed);
                out.say(&note);
            }
            Decision::Ambiguous => {
                self.ambiguous.push(job.id.clone());
                add(&self.counts.ambiguous);
            }
            act => return Some(act),
        }
        None
    }
}
