//! [`serve`]: the receiver on a public port, its connections bounded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;

/// How [`serve`] bounds its connections.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServeOptions {
    /// A connection that has not sent a request's headers within this long
    /// is closed (default 10 s), so a slow client holds nothing for long.
    pub header_timeout: Duration,
    /// At most this many connections served at once (default 256); more
    /// wait for a slot.
    pub max_connections: usize,
    /// At most this many connections from one address served at once
    /// (default 8): idle or slow connections from one place cannot take the
    /// slots the service's callbacks need. Counted after accept.
    pub max_per_address: usize,
    /// At most this many more connections from one address may wait for its
    /// slots (default 64); past that, its new connections are closed at once.
    pub max_waiting_per_address: usize,
    /// Whether loopback peers are capped per address too (default `false`):
    /// a local tunnel or proxy (`cloudflared`, `ngrok`, nginx on this host)
    /// brings every callback from one loopback address, so capping it would
    /// let a few idle connections through the tunnel block all of them. Limit
    /// connections at such a proxy instead.
    pub cap_loopback: bool,
}

setters!(ServeOptions {
    header_timeout: Duration => "How long a connection may take to send a request's headers.",
    max_connections: usize => "At most this many connections served at once.",
    max_per_address: usize => "At most this many connections from one address served at once.",
    max_waiting_per_address: usize => "At most this many more connections from one address waiting.",
    cap_loopback: bool => "Whether loopback peers (a local tunnel or proxy) are capped per address too.",
});

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            header_timeout: Duration::from_secs(10),
            max_connections: 256,
            max_per_address: 8,
            max_waiting_per_address: 64,
            cap_loopback: false,
        }
    }
}

/// The connections each address has, served or waiting.
#[derive(Default)]
struct PerAddress {
    slots: HashMap<std::net::IpAddr, (Arc<tokio::sync::Semaphore>, usize)>,
}

/// One connection's place in its address's count; given back when dropped.
struct Counted {
    table: Arc<Mutex<PerAddress>>,
    address: std::net::IpAddr,
}

impl Drop for Counted {
    fn drop(&mut self) {
        let mut table = self.table.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, count)) = table.slots.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                table.slots.remove(&self.address);
            }
        }
    }
}

/// The address a peer is counted as: an IPv4 peer seen through an IPv6
/// socket is that IPv4 address; an IPv6 peer counts as its /64 (one host
/// usually holds a whole /64).
fn canonical(address: std::net::IpAddr) -> std::net::IpAddr {
    match address {
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => std::net::IpAddr::V4(v4),
            None if v6.is_loopback() => std::net::IpAddr::V6(v6),
            None => {
                let s = v6.segments();
                std::net::IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// Serves `app` (a [`router`](super::router) or [`hub_router`](super::hub_router)) on `listener` until the
/// future is dropped, HTTP/1.1 without keep-alive (one callback per
/// connection: nothing idles between requests), with the limits of
/// `options`: what `axum::serve` leaves open on a public port. Connections
/// are always accepted, then counted per address: one address holds at most
/// [`ServeOptions::max_per_address`] slots, so a flood of idle connections
/// from one place delays nobody else's callback.
///
/// ```no_run
/// use kling_fleet::CallbackHub;
/// use kling_fleet::receiver::{ReceiverConfig, ServeOptions, hub_router, serve};
///
/// # async fn demo() -> std::io::Result<()> {
/// let hub = CallbackHub::new();
/// let app = hub_router(ReceiverConfig::unsigned(), hub.clone());
/// let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
/// tokio::spawn(serve(listener, app, ServeOptions::default()));
/// # Ok(()) }
/// ```
pub async fn serve(listener: tokio::net::TcpListener, app: Router, options: ServeOptions) {
    let slots = Arc::new(tokio::sync::Semaphore::new(options.max_connections.max(1)));
    let table: Arc<Mutex<PerAddress>> = Arc::default();
    let per_address = options.max_per_address.max(1);
    let most = per_address + options.max_waiting_per_address;
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: pause, do not spin.
                tracing::warn!(%error, "the callback receiver could not accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let address = canonical(peer.ip());
        if address.is_loopback() && !options.cap_loopback {
            // A local tunnel or proxy: every callback comes from it.
            let (app, slots) = (app.clone(), slots.clone());
            let header_timeout = options.header_timeout;
            tokio::spawn(async move {
                let Ok(_slot) = slots.acquire_owned().await else {
                    return;
                };
                serve_one(stream, app, header_timeout).await;
            });
            continue;
        }
        let own = {
            let mut table = table.lock().unwrap_or_else(|p| p.into_inner());
            let (own, count) = table
                .slots
                .entry(address)
                .or_insert_with(|| (Arc::new(tokio::sync::Semaphore::new(per_address)), 0));
            if *count >= most {
                None
            } else {
                *count += 1;
                Some(own.clone())
            }
        };
        let Some(own) = own else {
            tracing::debug!(%address, "too many connections from one address: closed");
            drop(stream);
            continue;
        };
        let counted = Counted {
            table: table.clone(),
            address,
        };
        let (app, slots) = (app.clone(), slots.clone());
        let header_timeout = options.header_timeout;
        tokio::spawn(async move {
            let _counted = counted;
            // Its address's slot first, then one of all: an address over its
            // share waits on itself, never on everyone's slots. A connection
            // that waits past the header limit is closed unread.
            let acquired = tokio::time::timeout(header_timeout, async {
                let own = own.acquire_owned().await.ok()?;
                let all = slots.acquire_owned().await.ok()?;
                Some((own, all))
            })
            .await;
            let Ok(Some(_permits)) = acquired else {
                return;
            };
            serve_one(stream, app, header_timeout).await;
        });
    }
}

/// One connection, one request (no keep-alive), headers within the limit.
async fn serve_one(stream: tokio::net::TcpStream, app: Router, header_timeout: Duration) {
    let service =
        hyper::service::service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
            let mut app = app.clone();
            async move { tower_service::Service::call(&mut app, request).await }
        });
    let connection = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout)
        .keep_alive(false)
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    if let Err(error) = connection.await {
        tracing::debug!(%error, "a callback connection ended with an error");
    }
}
