//! The generation speed learned by earlier runs, kept between them.
//!
//! The SDK polls near a task's expected end once it knows how many seconds of
//! generation a second of audio takes, which it learns from the tasks it waited
//! for. A one-off `kling generate` waits for a single task, so without this file
//! every run would start knowing nothing. The file holds a few numbers per
//! service (base URL), nothing else: no key, no task ids, no paths.
//!
//! Where: `$KLING_STATE_DIR/generation-speed.json`, else
//! `$XDG_STATE_HOME/kling/…`, else `~/.local/state/kling/…`. Any trouble reading
//! or writing it is logged at debug level and otherwise ignored.

use std::collections::BTreeMap;
use std::path::PathBuf;

use kling_api_ext::Client;
use serde::{Deserialize, Serialize};

const FILE: &str = "generation-speed.json";

/// Services remembered at most (the most recently used are kept).
const KEEP_SERVICES: usize = 16;

#[derive(Default, Serialize, Deserialize)]
struct Stored {
    /// Per base URL.
    services: BTreeMap<String, Service>,
}

#[derive(Serialize, Deserialize)]
struct Service {
    /// Seconds of generation per second of audio, oldest first.
    samples: Vec<f64>,
    /// When it was last written, Unix ms.
    updated_ms: u64,
}

fn path() -> Option<PathBuf> {
    Some(crate::history::state_dir()?.join(FILE))
}

fn read(path: &std::path::Path) -> Stored {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            tracing::debug!(path = %path.display(), error = %e, "generation speed file unreadable; starting afresh");
            Stored::default()
        }),
        Err(_) => Stored::default(),
    }
}

/// Gives the client what earlier runs learned about its service.
pub fn load(client: &Client) {
    let Some(path) = path() else { return };
    let stored = read(&path);
    if let Some(service) = stored.services.get(client.base_url().as_str()) {
        tracing::debug!(
            samples = service.samples.len(),
            "generation speed from earlier runs"
        );
        client
            .duration_model()
            .extend_samples(service.samples.iter().copied());
    }
}

/// Keeps what the client knows now for the next run (replaced whole, so a
/// crash never leaves half a file).
pub fn save(client: &Client) {
    let samples = client.duration_model().samples();
    if samples.is_empty() {
        return;
    }
    let Some(path) = path() else { return };
    let mut stored = read(&path);
    let updated_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    stored.services.insert(
        client.base_url().as_str().to_owned(),
        Service {
            samples,
            updated_ms,
        },
    );
    while stored.services.len() > KEEP_SERVICES {
        let oldest = stored
            .services
            .iter()
            .min_by_key(|(_, s)| s.updated_ms)
            .map(|(url, _)| url.clone())
            .expect("not empty");
        stored.services.remove(&oldest);
    }
    let result = (|| -> std::io::Result<()> {
        let dir = path.parent().expect("a file in a directory");
        std::fs::create_dir_all(dir)?;
        let bytes = serde_json::to_vec_pretty(&stored)?;
        crate::atomic::write(&path, &bytes, crate::atomic::Access::Shared)
    })();
    if let Err(e) = result {
        tracing::debug!(path = %path.display(), error = %e, "generation speed not saved");
    }
}
