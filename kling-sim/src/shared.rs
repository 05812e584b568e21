//! What the server and every handler share: the configuration, the state,
//! the faults in force, and each connection's control.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::config::SimConfig;
use crate::state::SimState;

/// Lets a handler close its connection without answering (the reset faults).
#[derive(Default)]
pub(crate) struct ConnControl {
    pub(crate) kill: Notify,
    pub(crate) reset: AtomicBool,
}

impl ConnControl {
    /// Closes the connection with a TCP reset, now.
    pub(crate) fn reset(&self) {
        self.reset.store(true, Ordering::SeqCst);
        self.kill.notify_one();
    }
}

/// What every handler shares.
pub(crate) struct Shared {
    pub config: SimConfig,
    /// The faults in force: `config.faults` at start, replaceable while running
    /// ([`Simulator::set_faults`]).
    pub faults: std::sync::RwLock<crate::config::FaultConfig>,
    pub base_url: String,
    pub state: Mutex<SimState>,
    pub fault_rng: Mutex<fastrand::Rng>,
    pub http: reqwest::Client,
    pub cancel: CancellationToken,
    /// Woken after each callback is sent (reordered callbacks wait for one).
    pub callback_sent: Notify,
}

impl Shared {
    /// The faults in force now.
    pub fn faults(&self) -> crate::config::FaultConfig {
        self.faults
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, SimState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Whether `url` names this machine (an IP loopback address or `localhost`):
/// the simulator fetches and calls back only such URLs unless told otherwise.
pub(crate) fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}
