//! The webhook flags of `generate` and `batch`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

/// Receiving callbacks in this process.
#[derive(Debug, Args, Clone, Default)]
#[command(next_help_heading = "Webhooks")]
pub struct WebhookArgs {
    /// Receive the service's callbacks in this process, on ADDR (e.g.
    /// 127.0.0.1:8080; port 0 picks a free one): a callback ends a job's wait
    /// after one confirming status request, and names the task of a createTask
    /// whose answer was lost
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// How the service reaches --listen (a tunnel, a load balancer): each
    /// job's callBackUrl is URL/NONCE (default: http://ADDR, when ADDR is a
    /// specific address)
    #[arg(long, value_name = "URL", requires = "listen")]
    pub public_url: Option<String>,
    /// The account's webhook HMAC key: callbacks must be signed with it (401
    /// otherwise). Without one, callbacks are accepted unsigned, and each is
    /// confirmed with the service before it counts. On the command line it
    /// can be seen by other users (ps): prefer --webhook-key-file or
    /// APIKLEY_WEBHOOK_KEY, which is read only with --listen
    // The environment variable is read by hand (`webhook::key`), not by clap:
    // clap counts a value from the environment as given, so `requires =
    // "listen"` would refuse every run without --listen once it is exported.
    #[arg(
        long,
        value_name = "KEY",
        conflicts_with = "webhook_key_file",
        requires = "listen"
    )]
    pub webhook_key: Option<String>,
    /// Read the webhook HMAC key from a file (it takes precedence over
    /// APIKLEY_WEBHOOK_KEY)
    #[arg(long, value_name = "FILE", requires = "listen")]
    pub webhook_key_file: Option<PathBuf>,
    /// With --listen, the first status request when nothing says how long the
    /// task takes (it catches a callback that never comes); then every 30 s,
    /// growing to 2 min
    #[arg(long, value_name = "DURATION", value_parser = super::parse_duration, default_value = "30s", requires = "listen")]
    pub safety_poll: Duration,
}
