//! Recent uploads of local files, reused by later submits of the same file:
//! a batch of a hundred videos with one portrait uploads it once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::OnceCell;
use url::Url;

/// Identifies a local file's content cheaply: the same path, size and
/// modification time are taken to be the same file.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct UploadKey {
    path: PathBuf,
    len: u64,
    modified: SystemTime,
}

impl UploadKey {
    /// The key of the file at `path`, if its metadata can be read.
    pub(crate) fn of(path: &Path) -> Option<UploadKey> {
        let metadata = std::fs::metadata(path).ok()?;
        Some(UploadKey {
            path: std::fs::canonicalize(path).ok()?,
            len: metadata.len(),
            modified: metadata.modified().ok()?,
        })
    }
}

/// One file's upload, shared by every submit that uses the file.
struct UploadSlot {
    url: Arc<OnceCell<Url>>,
    created: Instant,
}

/// The uploads a client made, by file.
#[derive(Default)]
pub(crate) struct UploadCache {
    slots: Mutex<HashMap<UploadKey, UploadSlot>>,
}

impl UploadCache {
    /// How long an upload is reused. The service keeps uploads for 3 days
    /// (some report about 24 h); an hour stays well inside either.
    const REUSE: Duration = Duration::from_secs(3600);

    /// The slot for a file's upload: the first caller uploads, concurrent ones
    /// wait for its URL (a failed upload leaves the slot empty for a retry).
    pub(crate) fn slot(&self, key: UploadKey) -> Arc<OnceCell<Url>> {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        slots.retain(|_, slot| slot.created.elapsed() < Self::REUSE);
        slots
            .entry(key)
            .or_insert_with(|| UploadSlot {
                url: Arc::new(OnceCell::new()),
                created: Instant::now(),
            })
            .url
            .clone()
    }
}
