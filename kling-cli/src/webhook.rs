//! Webhook mode (`--listen`): the callback receiver running in this process,
//! the per-intent nonces in each job's `callBackUrl`, and the wait options
//! that end on callbacks.

use std::net::SocketAddr;
use std::time::Duration;

use kling_api_ext::receiver::{ReceiverConfig, ServeOptions, hub_router, serve};
use kling_api_ext::{CallbackHub, SafetyPoll, WaitOptions, callback_url, new_nonce};
use url::Url;

use crate::cli::WebhookArgs;
use crate::error::CliError;
use crate::output::Out;

/// The receiver of this process, while it runs.
pub struct Webhooks {
    /// Where its callbacks go.
    pub hub: CallbackHub,
    /// How the service reaches it; each nonce is one more path segment.
    public: Url,
    /// The first safety look when nothing is expected.
    safety_first: Duration,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Webhooks {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn invalid(flag: &str, reason: impl Into<String>) -> CliError {
    CliError::config(Some(flag.to_owned()), reason)
}

/// The webhook key: `--webhook-key`, `--webhook-key-file` or `APIKLEY_WEBHOOK_KEY`.
fn key(args: &WebhookArgs) -> Result<Option<String>, CliError> {
    let key = match (&args.webhook_key, &args.webhook_key_file) {
        (Some(key), _) => Some(key.trim().to_owned()),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                invalid(
                    "--webhook-key-file",
                    format!("{} cannot be read: {e}", path.display()),
                )
            })?;
            Some(text.trim().to_owned())
        }
        (None, None) => None,
    };
    match key {
        Some(key) if key.is_empty() => Err(invalid(
            "--webhook-key",
            "the webhook key is empty: anyone could sign with it; give the account's key, or none to accept unsigned callbacks",
        )),
        other => Ok(other),
    }
}

/// The URL the service is told to call, for a receiver bound to `bound`.
fn public_url(args: &WebhookArgs, bound: SocketAddr) -> Result<Url, CliError> {
    match &args.public_url {
        Some(text) => {
            let url = Url::parse(text).map_err(|e| {
                invalid(
                    "--public-url",
                    format!("not a URL ({e}); e.g. https://hooks.example.com/kling"),
                )
            })?;
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                return Err(invalid(
                    "--public-url",
                    "an absolute http or https URL the service can reach, e.g. https://hooks.example.com/kling",
                ));
            }
            if url.query().is_some() || url.fragment().is_some() {
                return Err(invalid(
                    "--public-url",
                    "no query or fragment: each job's nonce is added to its path",
                ));
            }
            Ok(url)
        }
        None if bound.ip().is_unspecified() => Err(invalid(
            "--listen",
            format!(
                "{bound} listens on every interface, which is not an address the service can call: say how it reaches this machine with --public-url"
            ),
        )),
        None => {
            Ok(Url::parse(&format!("http://{bound}/")).expect("a socket address is a URL host"))
        }
    }
}

/// Starts the receiver when `--listen` is given. `callback_url` is the
/// `--callback-url` of the command, which cannot go with it.
pub async fn start(
    out: &Out,
    args: &WebhookArgs,
    callback_url: Option<&str>,
) -> Result<Option<Webhooks>, CliError> {
    let Some(listen) = args.listen else {
        return Ok(None);
    };
    if callback_url.is_some() {
        return Err(invalid(
            "--callback-url",
            "not with --listen: each job's callBackUrl is --public-url with the job's nonce",
        ));
    }
    let key = key(args)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| invalid("--listen", format!("cannot listen on {listen}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| invalid("--listen", format!("{listen}: {e}")))?;
    let public = public_url(args, bound)?;
    let config = match &key {
        Some(key) => ReceiverConfig::signed(key.clone())
            .map_err(|e| invalid("--webhook-key", e.to_string()))?,
        None => {
            out.warn("no webhook key (--webhook-key, --webhook-key-file or APIKLEY_WEBHOOK_KEY): callbacks are accepted unsigned; each is confirmed with a status request before it counts");
            ReceiverConfig::unsigned()
        }
    };
    let hub = CallbackHub::new();
    let app = hub_router(config, hub.clone());
    // Headers within 10 s, at most 256 connections: the port may be public.
    let server = tokio::spawn(serve(listener, app, ServeOptions::default()));
    tracing::info!(%bound, public = %public, "receiving callbacks");
    out.say(&format!(
        "  hooks listening on {bound}; callbacks to {}<nonce>",
        with_slash(&public)
    ));
    Ok(Some(Webhooks {
        hub,
        public,
        safety_first: args.safety_poll,
        server,
    }))
}

fn with_slash(url: &Url) -> String {
    let text = url.as_str();
    if text.ends_with('/') {
        text.to_owned()
    } else {
        format!("{text}/")
    }
}

impl Webhooks {
    /// A fresh nonce and the callBackUrl that carries it.
    pub fn new_intent(&self) -> (String, Url) {
        let nonce = new_nonce();
        let url = callback_url(&self.public, &nonce);
        (nonce, url)
    }

    /// `options` ending on this task's callback, with the safety poll.
    pub fn wait_options(&self, options: WaitOptions) -> WaitOptions {
        options
            .callbacks(self.hub.clone())
            .safety_poll(SafetyPoll::default().cold_first(self.safety_first))
    }
}
