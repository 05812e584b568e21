//! The spending ledger: what each paid request was counted at against the
//! daily budget, shared by every `kling` process on this machine (`generate`,
//! `batch`, `mcp`), in `ledger.jsonl` in the state directory (mode 0600).
//!
//! A paid request is *reserved* before anything is uploaded, at its
//! estimate (or its cap when the estimate is unknown), under an exclusive
//! lock on the file: the check "spent today + this ≤ budget" and the
//! reservation are one step, so calls made in parallel, from one process or
//! several, cannot slip past the budget together. The reservation is later
//! *settled*: at 0 when the service certainly did not take the request, at
//! `creditsConsumed` when the task ends and the service reports it, else at
//! what it was reserved at (0 for a failed task: the service charges nothing
//! for one).
//! Until then the estimate counts. The day is the UTC day. Lines are
//! appended, never rewritten; a damaged line is skipped.
//!
//! The ledger also remembers each request's idempotency key, so that a
//! repeated identical call gets the first task instead of paying again.

// Idempotency keys are `kling mcp`'s (the `mcp` feature).
#![cfg_attr(not(feature = "mcp"), allow(dead_code))]

use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The ledger's file name in the state directory.
pub const FILE: &str = "ledger.jsonl";

const DAY_MS: u64 = 86_400_000;

/// One line of the ledger.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(
    tag = "event",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
enum Line {
    /// Counted before anything is sent.
    Reserve {
        id: String,
        at: u64,
        service: String,
        credits: f64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key: Option<String>,
        by: String,
    },
    /// createTask answered: the task this reservation paid for.
    Task { id: String, task_id: String },
    /// The final figure.
    Settle {
        id: String,
        credits: f64,
        source: String,
    },
}

/// A reservation, as the ledger's lines fold into it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// The reservation's id.
    pub id: String,
    /// When it was made (ms since the epoch).
    pub at: u64,
    pub service: String,
    /// What it counts now: the settled figure, else the reservation.
    pub credits: f64,
    pub key: Option<String>,
    pub by: String,
    pub task_id: Option<String>,
    /// How it was settled (`creditsConsumed`, `reserved`, `notTaken`,
    /// `failed`), or `None` while it runs.
    pub settled: Option<String>,
}

/// Why the ledger refused or could not count.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The call would pass the daily budget.
    #[error(
        "the daily budget of {budget} credits would be passed: {spent} spent or reserved today (UTC), this call {credits}; nothing was sent"
    )]
    OverBudget {
        budget: f64,
        spent: f64,
        credits: f64,
    },
    /// A daily budget is set but the call's cost is not known.
    #[error(
        "the cost is not known (the audio's length is not known), so it cannot be counted against the daily budget of {budget} credits; give a cap (--max-credits, or max_credits) to count it at; nothing was sent"
    )]
    UnknownCost { budget: f64 },
    /// A daily budget is set but there is no state directory to count in.
    #[error(
        "a daily budget is set but there is no state directory to keep its ledger in (set KLING_STATE_DIR or HOME); nothing was sent"
    )]
    NoPlace,
    /// The ledger's file could not be read or written.
    #[error("the spending ledger {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl LedgerError {
    /// The stable name of its kind (`--json`'s `error.kind`, the MCP
    /// tools' `error.code`).
    pub fn kind(&self) -> &'static str {
        match self {
            LedgerError::OverBudget { .. } => "over_budget",
            LedgerError::UnknownCost { .. } => "cost_unknown",
            LedgerError::NoPlace => "no_ledger",
            LedgerError::Io { .. } => "io",
        }
    }
}

/// The ledger in a state directory.
#[derive(Clone, Debug)]
pub struct Ledger {
    path: PathBuf,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A fresh reservation id: random enough to join a request's lines.
fn new_id() -> String {
    format!("{:016x}", fastrand::u64(..))
}

impl Ledger {
    /// The ledger in `dir` (created with the first line).
    pub fn in_dir(dir: &Path) -> Ledger {
        Ledger {
            path: dir.join(FILE),
        }
    }

    fn io(&self) -> impl Fn(std::io::Error) -> LedgerError + '_ {
        |source| LedgerError::Io {
            path: self.path.clone(),
            source,
        }
    }

    /// Opens the file, locked exclusively for as long as the handle lives.
    fn locked(&self) -> Result<File, LedgerError> {
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(self.io())?;
        }
        let mut options = OpenOptions::new();
        options.read(true).append(true).create(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            options.mode(0o600);
        }
        let file = options.open(&self.path).map_err(self.io())?;
        file.lock().map_err(self.io())?;
        Ok(file)
    }

    fn read_all(&self, file: &mut File) -> Result<Vec<Entry>, LedgerError> {
        let mut text = Vec::new();
        file.seek(SeekFrom::Start(0)).map_err(self.io())?;
        file.read_to_end(&mut text).map_err(self.io())?;
        Ok(fold(&text))
    }

    fn append(&self, file: &mut File, line: &Line) -> Result<(), LedgerError> {
        let mut bytes =
            serde_json::to_vec(line).map_err(|e| self.io()(std::io::Error::other(e)))?;
        bytes.push(b'\n');
        // A torn last line (a crash mid-write) is closed first, so this line
        // starts one of its own.
        let len = file.metadata().map_err(self.io())?.len();
        if len > 0 {
            let mut last = [0u8; 1];
            file.seek(SeekFrom::Start(len - 1)).map_err(self.io())?;
            file.read_exact(&mut last).map_err(self.io())?;
            if last[0] != b'\n' {
                bytes.insert(0, b'\n');
            }
        }
        file.write_all(&bytes).map_err(self.io())?;
        file.sync_data().map_err(self.io())
    }

    /// Every reservation, oldest first.
    pub fn entries(&self) -> Result<Vec<Entry>, LedgerError> {
        match std::fs::read(&self.path) {
            Ok(text) => Ok(fold(&text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(self.io()(e)),
        }
    }

    /// What `service` has spent or reserved today (UTC).
    pub fn spent_today(&self, service: &str) -> Result<f64, LedgerError> {
        Ok(spent_on(&self.entries()?, service, now_ms()))
    }

    /// Counts `credits` for a request to `service`, if `budget` (credits a
    /// UTC day) allows it: the check and the reservation hold one lock.
    /// `key`, when given, lets a repeated call find this one
    /// ([`Ledger::find_key`]). Returns the reservation's id.
    pub fn reserve(
        &self,
        service: &str,
        credits: f64,
        budget: Option<f64>,
        key: Option<&str>,
        by: &str,
    ) -> Result<String, LedgerError> {
        let mut file = self.locked()?;
        let entries = match budget {
            Some(_) => self.read_all(&mut file)?,
            None => Vec::new(),
        };
        self.reserve_locked(
            &mut file,
            &entries,
            service,
            credits,
            budget,
            key,
            by,
            now_ms(),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn reserve_locked(
        &self,
        file: &mut File,
        entries: &[Entry],
        service: &str,
        credits: f64,
        budget: Option<f64>,
        key: Option<&str>,
        by: &str,
        now: u64,
    ) -> Result<String, LedgerError> {
        if let Some(budget) = budget {
            let spent = spent_on(entries, service, now);
            if spent + credits > budget + 1e-9 {
                return Err(LedgerError::OverBudget {
                    budget,
                    spent: round(spent),
                    credits: round(credits),
                });
            }
        }
        let id = new_id();
        self.append(
            file,
            &Line::Reserve {
                id: id.clone(),
                at: now,
                service: service.to_owned(),
                credits,
                key: key.map(str::to_owned),
                by: by.to_owned(),
            },
        )?;
        Ok(id)
    }

    /// Records the task a reservation paid for.
    pub fn task(&self, id: &str, task_id: &str) -> Result<(), LedgerError> {
        let mut file = self.locked()?;
        self.append(
            &mut file,
            &Line::Task {
                id: id.to_owned(),
                task_id: task_id.to_owned(),
            },
        )
    }

    /// Settles a reservation at its final figure.
    pub fn settle(&self, id: &str, credits: f64, source: &str) -> Result<(), LedgerError> {
        let mut file = self.locked()?;
        self.append(
            &mut file,
            &Line::Settle {
                id: id.to_owned(),
                credits,
                source: source.to_owned(),
            },
        )
    }

    /// Settles the open reservation that paid for `task_id`, once it ended:
    /// `creditsConsumed` when given, else the estimate for a success and 0
    /// for a failure. Does nothing when there is none or it is settled.
    pub fn settle_task(
        &self,
        task_id: &str,
        succeeded: bool,
        consumed: Option<f64>,
    ) -> Result<(), LedgerError> {
        let mut file = self.locked()?;
        let entries = self.read_all(&mut file)?;
        let Some(entry) = entries
            .iter()
            .find(|e| e.task_id.as_deref() == Some(task_id) && e.settled.is_none())
        else {
            return Ok(());
        };
        let (credits, source) = match (consumed, succeeded) {
            (Some(c), _) => (c, "creditsConsumed"),
            // What it was counted at: the estimate, or the cap when the
            // estimate was unknown.
            (None, true) => (entry.credits, "reserved"),
            (None, false) => (0.0, "failed"),
        };
        self.append(
            &mut file,
            &Line::Settle {
                id: entry.id.clone(),
                credits,
                source: source.to_owned(),
            },
        )
    }

    /// The newest reservation made with `key` within `ttl`, that the service
    /// may have taken (not settled as not taken).
    pub fn find_key(
        &self,
        service: &str,
        key: &str,
        ttl: Duration,
    ) -> Result<Option<Entry>, LedgerError> {
        Ok(keyed(&self.entries()?, service, key, ttl, now_ms()))
    }

    /// [`Ledger::reserve`] for a call with an idempotency key, in one locked
    /// step: the newest reservation of `service` with `key` within `ttl`
    /// when there is one (so two processes given the same call pay once),
    /// else a new reservation, if the budget allows it.
    #[allow(clippy::too_many_arguments)]
    pub fn reserve_once(
        &self,
        service: &str,
        credits: f64,
        budget: Option<f64>,
        key: &str,
        ttl: Duration,
        by: &str,
    ) -> Result<Reserve, LedgerError> {
        let mut file = self.locked()?;
        let entries = self.read_all(&mut file)?;
        let now = now_ms();
        if let Some(first) = keyed(&entries, service, key, ttl, now) {
            return Ok(Reserve::Existing(first));
        }
        self.reserve_locked(
            &mut file,
            &entries,
            service,
            credits,
            budget,
            Some(key),
            by,
            now,
        )
        .map(Reserve::New)
    }
}

/// What [`Ledger::reserve_once`] found or made.
#[derive(Debug)]
pub enum Reserve {
    /// A new reservation's id.
    New(String),
    /// An identical earlier call's reservation.
    Existing(Entry),
}

/// The newest reservation of `service` with `key` made within `ttl` of
/// `now` that the service may have taken.
fn keyed(entries: &[Entry], service: &str, key: &str, ttl: Duration, now: u64) -> Option<Entry> {
    let ttl = ttl.as_millis() as u64;
    entries
        .iter()
        .rev()
        .find(|e| {
            e.service == service
                && e.key.as_deref() == Some(key)
                && now.saturating_sub(e.at) < ttl
                && e.settled.as_deref() != Some("notTaken")
        })
        .cloned()
}

fn round(credits: f64) -> f64 {
    (credits * 100.0).round() / 100.0
}

/// Today's (UTC) spending on `service` at `now`.
fn spent_on(entries: &[Entry], service: &str, now: u64) -> f64 {
    let today = now / DAY_MS;
    entries
        .iter()
        .filter(|e| e.service == service && e.at / DAY_MS == today)
        .map(|e| e.credits)
        .sum()
}

/// Folds the ledger's lines into reservations, oldest first; damaged lines
/// and lines about unknown reservations are skipped.
fn fold(text: &[u8]) -> Vec<Entry> {
    let mut entries: Vec<Entry> = Vec::new();
    for line in text.split(|b| *b == b'\n') {
        let Ok(line) = serde_json::from_slice::<Line>(line) else {
            continue;
        };
        match line {
            Line::Reserve {
                id,
                at,
                service,
                credits,
                key,
                by,
            } => entries.push(Entry {
                id,
                at,
                service,
                credits,
                key,
                by,
                task_id: None,
                settled: None,
            }),
            Line::Task { id, task_id } => {
                if let Some(e) = entries.iter_mut().rev().find(|e| e.id == id) {
                    e.task_id = Some(task_id);
                }
            }
            Line::Settle {
                id,
                credits,
                source,
            } => {
                if let Some(e) = entries.iter_mut().rev().find(|e| e.id == id) {
                    e.credits = credits;
                    e.settled = Some(source);
                }
            }
        }
    }
    entries
}

mod budget;
#[cfg(test)]
mod tests;

pub use budget::{Budget, Reservation};
