//! Webhook mode (`--listen`): the callback receiver running in this process,
//! the per-intent nonces in each job's `callBackUrl`, and the wait options
//! that end on callbacks.

// The receiver's setup is used only with the `webhooks` feature.
#![cfg_attr(not(feature = "webhooks"), allow(dead_code))]

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use kling_api_ext::WaitOptions;
use kling_api_ext::wait::SafetyPoll;
#[cfg(feature = "webhooks")]
use kling_fleet::receiver::{ReceiverConfig, ServeOptions, hub_router, serve};
use kling_fleet::{CallbackHub, callback_url};
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

/// The webhook key: `--webhook-key`, `--webhook-key-file` or `APIKLEY_WEBHOOK_KEY`,
/// in that order.
fn key(out: &Out, args: &WebhookArgs) -> Result<Option<String>, CliError> {
    let key = match (&args.webhook_key, &args.webhook_key_file) {
        (Some(key), _) => {
            out.warn("--webhook-key on the command line can be seen by other users of this machine (ps, shell history); prefer APIKLEY_WEBHOOK_KEY or --webhook-key-file");
            Some(key.trim().to_owned())
        }
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                invalid(
                    "--webhook-key-file",
                    format!("{} cannot be read: {e}", path.display()),
                )
            })?;
            Some(text.trim().to_owned())
        }
        (None, None) => std::env::var("APIKLEY_WEBHOOK_KEY")
            .ok()
            .map(|key| key.trim().to_owned()),
    };
    match key {
        Some(key) if key.is_empty() => Err(invalid(
            "--webhook-key",
            "the webhook key is empty: anyone could sign with it; give the account's key, or none to accept unsigned callbacks",
        )),
        other => Ok(other),
    }
}

/// Whether a URL's host is this machine.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(name)) => name.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.to_canonical().is_loopback(),
        None => false,
    }
}

/// Whether the internet at large cannot reach `ip` (a private, shared or
/// link-local range): a service on another network cannot call it.
fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => {
            ip.is_private()
                || ip.is_link_local()
                // 100.64.0.0/10, carrier-grade NAT
                || (ip.octets()[0] == 100 && (ip.octets()[1] & 0xc0) == 64)
        }
        // fc00::/7 unique local, fe80::/10 link-local
        IpAddr::V6(ip) => {
            (ip.segments()[0] & 0xfe00) == 0xfc00 || (ip.segments()[0] & 0xffc0) == 0xfe80
        }
    }
}

/// The URL the service at `service` is told to call, for a receiver bound
/// to `bound`.
fn public_url(
    out: &Out,
    args: &WebhookArgs,
    bound: SocketAddr,
    service: &Url,
) -> Result<Url, CliError> {
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
            // It is printed, logged, journaled and sent with every task.
            if !url.username().is_empty() || url.password().is_some() {
                return Err(invalid(
                    "--public-url",
                    "no user name or password: the URL is printed, journaled and sent with every task; protect the receiver with a webhook key (--webhook-key-file) instead",
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
        // A service elsewhere cannot call this machine's loopback: every
        // callback would be lost and each wait left to the safety poll.
        None if bound.ip().is_loopback() && !is_loopback(service) => Err(invalid(
            "--listen",
            format!(
                "the service at {} cannot call {bound} on this machine: say how it reaches the receiver (a tunnel, a load balancer) with --public-url",
                service.origin().ascii_serialization()
            ),
        )),
        None => {
            let url = Url::parse(&format!("http://{bound}/")).map_err(|e| {
                invalid(
                    "--listen",
                    format!("{bound} cannot be put in a URL ({e}): say how the service reaches it with --public-url"),
                )
            })?;
            if is_private(bound.ip()) && !is_loopback(service) {
                out.warn(&format!(
                    "{bound} is a private address: callbacks arrive only if the service at {} can reach it (else --public-url)",
                    service.origin().ascii_serialization()
                ));
            }
            Ok(url)
        }
    }
}

/// Starts the receiver when `--listen` is given. `callback_url` is the
/// `--callback-url` of the command, which cannot go with it; `service` is
/// the API's base URL, which must be able to call the receiver.
pub async fn start(
    out: &Out,
    args: &WebhookArgs,
    callback_url: Option<&str>,
    service: &Url,
) -> Result<Option<Webhooks>, CliError> {
    let Some(listen) = args.listen else {
        return Ok(None);
    };
    receive(out, args, listen, callback_url, service)
        .await
        .map(Some)
}

/// `start` in a build without the receiver (main refuses `--listen` first).
#[cfg(not(feature = "webhooks"))]
async fn receive(
    _out: &Out,
    _args: &WebhookArgs,
    _listen: std::net::SocketAddr,
    _callback_url: Option<&str>,
    _service: &Url,
) -> Result<Webhooks, CliError> {
    Err(CliError::missing_feature("--listen", "webhooks"))
}

#[cfg(feature = "webhooks")]
async fn receive(
    out: &Out,
    args: &WebhookArgs,
    listen: std::net::SocketAddr,
    callback_url: Option<&str>,
    service: &Url,
) -> Result<Webhooks, CliError> {
    if callback_url.is_some() {
        return Err(invalid(
            "--callback-url",
            "not with --listen: each job's callBackUrl is --public-url with the job's nonce",
        ));
    }
    let key = key(out, args)?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| invalid("--listen", format!("cannot listen on {listen}: {e}")))?;
    let bound = listener
        .local_addr()
        .map_err(|e| invalid("--listen", format!("{listen}: {e}")))?;
    let public = public_url(out, args, bound, service)?;
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
    Ok(Webhooks {
        hub,
        public,
        safety_first: args.safety_poll,
        server,
    })
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
        // Expected by the hub from now on: callbacks on nonces this process
        // never issued are answered and forgotten.
        let nonce = self.hub.issue_nonce();
        let url = callback_url(&self.public, &nonce);
        (nonce, url)
    }

    /// After a recovery that could not read the task its callback named:
    /// every task named on `nonce`'s URL, and a sentence that says them (the
    /// task may be the paid one: its id is never dropped with the error).
    pub fn unconfirmed(&self, nonce: &str, error: &kling_api_ext::Error) -> (Vec<String>, String) {
        let named: Vec<String> = self
            .hub
            .tasks_for_nonce(nonce)
            .iter()
            .map(ToString::to_string)
            .collect();
        let said = format!(
            "a callback on its URL named task {}, which could not be read to confirm it: {error}; check it with `kling status {}`",
            named.join(", task "),
            named.first().map_or("TASK_ID", String::as_str)
        );
        (named, said)
    }

    /// `options` ending on this task's callback, with the safety poll.
    pub fn wait_options(&self, options: WaitOptions) -> WaitOptions {
        options
            .callbacks(self.hub.clone())
            .safety_poll(SafetyPoll::default().cold_first(self.safety_first))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(public: Option<&str>) -> WebhookArgs {
        WebhookArgs {
            public_url: public.map(str::to_owned),
            ..WebhookArgs::default()
        }
    }

    fn url_for(public: Option<&str>, bound: &str, service: &str) -> Result<Url, String> {
        let out = Out {
            json: false,
            quiet: true,
        };
        public_url(
            &out,
            &args(public),
            bound.parse().unwrap(),
            &Url::parse(service).unwrap(),
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn a_service_elsewhere_cannot_call_loopback_without_a_public_url() {
        let err = url_for(None, "127.0.0.1:8080", "https://api.apikley.example").unwrap_err();
        assert!(
            err.contains("--listen") && err.contains("--public-url"),
            "{err}"
        );
        assert!(err.contains("https://api.apikley.example"), "{err}");
        // The same port, told how the service reaches it.
        let url = url_for(
            Some("https://hooks.example.com/k"),
            "127.0.0.1:8080",
            "https://api.apikley.example",
        )
        .unwrap();
        assert_eq!(url.as_str(), "https://hooks.example.com/k");
        // A service on this machine (the simulator, a local proxy) can.
        for service in [
            "http://127.0.0.1:9000",
            "http://localhost:9000",
            "http://[::ffff:127.0.0.1]:9",
        ] {
            assert_eq!(
                url_for(None, "127.0.0.1:8080", service).unwrap().as_str(),
                "http://127.0.0.1:8080/",
                "{service}"
            );
        }
    }

    #[test]
    fn a_public_url_with_a_user_or_password_is_refused_without_echoing_it() {
        for public in [
            "https://user:s3cret@hooks.example.com/k",
            "https://user@hooks.example.com/k",
        ] {
            let err = url_for(Some(public), "127.0.0.1:8080", "http://127.0.0.1:9").unwrap_err();
            assert!(
                err.contains("--public-url") && err.contains("user name or password"),
                "{err}"
            );
            assert!(!err.contains("s3cret"), "{err}");
        }
    }

    #[test]
    fn a_scoped_ipv6_listen_address_is_an_error_not_a_panic() {
        let err = url_for(None, "[fe80::1%2]:8080", "http://127.0.0.1:9").unwrap_err();
        assert!(
            err.contains("--listen") && err.contains("--public-url"),
            "{err}"
        );
    }
}
