//! Ctrl-C and SIGTERM, handled so that no request already sent is dropped.
//!
//! The first signal cancels a token: commands stop starting new work (no new
//! upload, no new createTask), stop waiting, and let every createTask already
//! on the wire finish (bounded by the request timeout) so its task id is
//! printed or journaled. A second signal exits at once with 130.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use kling_api_ext::CancellationToken;

use crate::error::code;
use crate::output::Out;

/// The process's interrupt state.
#[derive(Clone)]
pub struct Interrupt {
    token: CancellationToken,
    /// createTask requests on the wire (for what the messages say).
    in_flight: Arc<AtomicUsize>,
}

impl Interrupt {
    /// Starts watching for Ctrl-C and SIGTERM. Without `graceful` (a command
    /// that sends nothing paid and watches no token), the first one exits.
    pub fn install(out: Out, graceful: bool) -> Interrupt {
        let interrupt = Interrupt {
            token: CancellationToken::new(),
            in_flight: Arc::new(AtomicUsize::new(0)),
        };
        let watcher = interrupt.clone();
        tokio::spawn(async move {
            signal().await;
            if !graceful {
                std::process::exit(i32::from(code::INTERRUPTED));
            }
            watcher.token.cancel();
            let sending = watcher.in_flight.load(Ordering::SeqCst);
            if sending > 0 {
                out.say(&format!("kling: interrupted: starting nothing new; waiting for the answers to {sending} createTask request(s) already sent (Ctrl-C again to quit at once)"));
            } else {
                out.say("kling: interrupted (Ctrl-C again to quit at once)");
            }
            signal().await;
            let sending = watcher.in_flight.load(Ordering::SeqCst);
            if sending > 0 {
                out.notice(&format!("kling: quitting now: {sending} createTask request(s) still on the wire may create tasks whose ids are not recorded"));
            }
            std::process::exit(i32::from(code::INTERRUPTED));
        });
        interrupt
    }

    /// Cancelled on the first signal.
    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    /// Marks a createTask as possibly on the wire until the guard is dropped.
    pub fn sending(&self) -> Sending {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        Sending(self.in_flight.clone())
    }
}

/// A createTask possibly on the wire; see [`Interrupt::sending`].
pub struct Sending(Arc<AtomicUsize>);

impl Drop for Sending {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The next Ctrl-C or SIGTERM.
async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
