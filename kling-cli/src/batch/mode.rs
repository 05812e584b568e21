//! Which mode holds an output directory: the journal (`DIR/journal.jsonl`)
//! or a fleet's job store (`DIR/store.json`, naming the store and the
//! batch). A directory one mode wrote is never run by the other: its records
//! are elsewhere, so the other would pay for every job again. The run is
//! refused instead (exit 2, nothing sent), with the command that goes on.

// The fleet's half is used only with the `postgres` feature.
#![cfg_attr(not(feature = "postgres"), allow(dead_code))]

use std::path::{Path, PathBuf};

use kling_api_ext::Field;
use serde::{Deserialize, Serialize};

use super::journal::JOURNAL;
use crate::cli::BatchArgs;
use crate::error::CliError;
use crate::output::shell_quote;

/// The fleet's mark in an output directory.
pub const STORE_MARK: &str = "store.json";

/// What `DIR/store.json` says: the directory belongs to this batch of this
/// store.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StoreMark {
    /// The store's URL as it may be shown (no password).
    pub store: String,
    /// The store's identity (`kling.identity`).
    pub store_id: String,
    /// The batch's key in the store.
    pub batch: String,
    /// The manifest the batch was run from.
    pub manifest: String,
}

/// The directory's store mark, if a fleet ran into it.
pub fn read_mark(dir: &Path) -> Result<Option<StoreMark>, CliError> {
    let path = dir.join(STORE_MARK);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            CliError::Invalid {
                field: Field::File,
                subject: Some(path.display().to_string()),
                reason: format!(
                    "this file marks the directory as a fleet batch's, and it cannot be read ({e}); nothing was sent"
                ),
            }
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(CliError::local(&path, e)),
    }
}

/// Marks `dir` as this batch's (synced: it must outlive a crash).
pub fn write_mark(dir: &Path, mark: &StoreMark) -> Result<(), CliError> {
    let path = dir.join(STORE_MARK);
    let mut bytes = serde_json::to_vec_pretty(mark)
        .map_err(|e| CliError::local(&path, std::io::Error::other(e)))?;
    bytes.push(b'\n');
    crate::atomic::write(&path, &bytes, crate::atomic::Access::Shared)
        .map_err(|e| CliError::local(&path, e))
}

/// Whether a journal run has recorded anything in `dir`.
pub fn journal_holds(dir: &Path) -> bool {
    std::fs::read(dir.join(JOURNAL))
        .is_ok_and(|bytes| bytes.iter().any(|b| !b.is_ascii_whitespace()))
}

/// Whether `DIR/results.jsonl` names a task (a line with a `taskId`).
pub fn results_name_tasks(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join(super::journal::RESULTS)).is_ok_and(|text| {
        text.lines().any(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .is_ok_and(|v| v.get("taskId").is_some_and(|t| !t.is_null()))
        })
    })
}

/// The `--store` words of a printed command: the URL itself when it holds
/// no secret and was typed, else `"$KLING_STORE"` (which runs as printed
/// where it is set, and shows no password).
pub fn store_words(args: &BatchArgs) -> String {
    let url = args.store.as_deref().unwrap_or_default();
    if args.store_from_env || kling_api_ext::redact(url) != url {
        "--store \"$KLING_STORE\"".to_owned()
    } else {
        format!("--store {}", shell_quote(url))
    }
}

/// The note after a printed command that uses `$KLING_STORE` when the
/// variable is not where the command came from.
pub fn store_note(args: &BatchArgs) -> &'static str {
    if args.store.is_some() && !args.store_from_env && store_words(args).contains("$KLING_STORE") {
        ": set it to the store's URL, password included, to run them (the password is never printed)"
    } else {
        ""
    }
}

/// The command that resumes this batch, as it may be printed.
pub fn resume_command(args: &BatchArgs) -> String {
    let mut words = vec![
        "kling batch".to_owned(),
        shell_quote(&args.manifest.display().to_string()),
        format!(
            "--out-dir {}",
            shell_quote(&args.out_dir().display().to_string())
        ),
    ];
    if args.store.is_some() {
        words.push(store_words(args));
        if let Some(name) = &args.batch_name {
            words.push(format!("--batch-name {}", shell_quote(name)));
        }
    }
    words.join(" ")
}

/// Where a store URL came from, for the banner.
pub fn store_origin(args: &BatchArgs) -> &'static str {
    if args.store_from_env {
        " (KLING_STORE, from the environment)"
    } else {
        ""
    }
}

fn refused(dir: &Path, reason: String) -> CliError {
    CliError::Invalid {
        field: Field::File,
        subject: Some(dir.display().to_string()),
        reason,
    }
}

/// A journal run into a directory a fleet ran into: refused.
pub fn refuse_journal_in_fleet_dir(args: &BatchArgs, mark: &StoreMark) -> CliError {
    let shown_whole = kling_api_ext::redact(&mark.store) == mark.store
        && !mark.store.contains("***")
        && !mark.store.contains("[redacted]");
    let go_on = if shown_whole {
        format!(
            "{} --store {}",
            resume_command(args),
            shell_quote(&mark.store)
        )
    } else {
        format!(
            "{} --store \"$KLING_STORE\" (with KLING_STORE set to {}, password included)",
            resume_command(args),
            mark.store
        )
    };
    refused(
        args.out_dir(),
        format!(
            "this directory holds a fleet batch ({STORE_MARK} names batch {:?} in the job store {}): its jobs are recorded there, not in a journal, and a run without the store would pay for them again; nothing was sent. Go on with: {go_on}",
            mark.batch, mark.store,
        ),
    )
}

/// A fleet run into a directory a journal run wrote: refused.
pub fn refuse_fleet_in_journal_dir(args: &BatchArgs) -> CliError {
    let plain = format!(
        "kling batch {} --out-dir {}",
        shell_quote(&args.manifest.display().to_string()),
        shell_quote(&args.out_dir().display().to_string())
    );
    let go_on = if args.store_from_env {
        format!(
            "env -u KLING_STORE {plain} (KLING_STORE is set in this environment, which makes every batch a fleet run)"
        )
    } else {
        plain
    };
    refused(
        args.out_dir(),
        format!(
            "this directory holds a journal batch ({}): its jobs are recorded there, not in the job store, and a fleet run would pay for them again; nothing was sent. Go on without the store: {go_on}; or give the fleet another --out-dir",
            PathBuf::from(args.out_dir()).join(JOURNAL).display()
        ),
    )
}

/// A fleet run into a directory of another store's batch: refused.
pub fn refuse_other_store(args: &BatchArgs, mark: &StoreMark) -> CliError {
    refused(
        args.out_dir(),
        format!(
            "this directory holds batch {:?} of another job store ({}): running it from this store would pay for its jobs again; nothing was sent. Give that store (--store), or another --out-dir",
            mark.batch, mark.store
        ),
    )
}

/// A manifest whose jobs two batches hold equally: refused.
pub fn refuse_ambiguous_batch(args: &BatchArgs, candidates: &[(String, i64)]) -> CliError {
    let names: Vec<String> = candidates
        .iter()
        .map(|(name, n)| format!("{name:?} ({n} job(s))"))
        .collect();
    CliError::Invalid {
        field: Field::File,
        subject: Some(args.manifest.display().to_string()),
        reason: format!(
            "the manifest's jobs are in several batches of the store: {}; nothing was sent. Say which with --batch-name",
            names.join(", ")
        ),
    }
}

/// A journal run into a directory with a fleet's results but no mark (a
/// fleet of an earlier version wrote it): refused.
pub fn refuse_journal_in_unmarked_fleet_dir(args: &BatchArgs) -> CliError {
    refused(
        args.out_dir(),
        format!(
            "this directory holds {} but no journal: a fleet run (--store) wrote it, and its jobs are recorded in that store; a run without the store would pay for them again; nothing was sent. Go on with: {} --store \"$KLING_STORE\" (with KLING_STORE set to that store's URL); or, to start over here, delete {}",
            super::journal::RESULTS,
            resume_command(args),
            args.out_dir().join(super::journal::RESULTS).display()
        ),
    )
}

/// Tasks created on another service (another --base-url or profile, or the
/// embedded simulator) are found on none here: their jobs would be taken as
/// ended, or paid for again. Refused.
pub fn check_service(
    args: &BatchArgs,
    service: &str,
    states: &super::journal::States,
) -> Result<(), CliError> {
    match states
        .values()
        .filter_map(|r| r.service.as_deref())
        .find(|s| *s != service)
    {
        Some(other) => Err(refused(
            args.out_dir(),
            format!(
                "this directory's tasks were created on {other}, and this run talks to {service}: none of them exists there, and its jobs would be skipped as ended or paid for again; nothing was sent. Run it against {other} (its --base-url or --profile), or give another --out-dir"
            ),
        )),
        None => Ok(()),
    }
}
