//! Running the simulator: a loopback listener, a connection loop that can cut
//! connections on purpose (faults), and the [`Simulator`] handle.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tower_service::Service as _;

use crate::config::SimConfig;
use crate::handlers;
use crate::shared::{ConnControl, Shared};
use crate::state::SimState;
use crate::stats::Stats;

/// How long a request's headers may take to arrive.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// A TCP stream that ends with RST instead of FIN when its connection is reset.
struct Conn {
    inner: TcpStream,
    control: Arc<ConnControl>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        if self.control.reset.load(Ordering::SeqCst) {
            // SO_LINGER 0: close sends RST, as a crashed or cut connection would.
            let _ = socket2::SockRef::from(&self.inner).set_linger(Some(Duration::ZERO));
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Builds a [`Simulator`].
#[derive(Debug, Default)]
pub struct SimulatorBuilder {
    config: SimConfig,
    port: u16,
}

impl SimulatorBuilder {
    /// All settings at once.
    pub fn config(mut self, config: SimConfig) -> Self {
        self.config = config;
        self
    }

    /// The port on 127.0.0.1 (default 0: a free one).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Accept this API key (replacing the default `sim-key`).
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.config.api_keys = vec![key.into()];
        self
    }

    /// The callback signing key.
    pub fn webhook_hmac_key(mut self, key: impl Into<String>) -> Self {
        self.config.webhook_hmac_key = Some(key.into());
        self
    }

    /// Changes the config in place.
    pub fn with(mut self, change: impl FnOnce(&mut SimConfig)) -> Self {
        change(&mut self.config);
        self
    }

    /// Binds 127.0.0.1 (never another interface) and starts serving.
    pub async fn start(self) -> io::Result<Simulator> {
        self.config
            .check()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        if self.config.api_keys.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the simulator needs at least one API key",
            ));
        }
        let listener =
            TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, self.port))).await?;
        let addr = listener.local_addr()?;
        let base_url = format!("http://{addr}");
        let cancel = CancellationToken::new();
        // reqwest is built without a default rustls provider (see kling-api).
        // ring on purpose (no C toolchain, a faster build); rustls 0.23.48
        // deprecates it only for lacking post-quantum key exchange.
        #[allow(deprecated)]
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .user_agent(concat!("kling-sim/", env!("CARGO_PKG_VERSION")))
            // Only the first URL is checked for loopback: a redirect from it
            // could lead a URL upload or a signed callback off the machine.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(io::Error::other)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(SimState::new(
                &self.config.api_keys,
                self.config.credits,
                self.config.lifecycle.seed,
            )),
            fault_rng: Mutex::new(fastrand::Rng::with_seed(self.config.faults.seed)),
            faults: std::sync::RwLock::new(self.config.faults.clone()),
            config: self.config,
            base_url: base_url.clone(),
            http,
            cancel: cancel.clone(),
            callback_sent: tokio::sync::Notify::new(),
        });
        let router = handlers::router(shared.clone());
        tokio::spawn(accept_loop(listener, router, cancel.clone()));
        tracing::info!(%base_url, "simulator listening");
        Ok(Simulator {
            shared,
            addr,
            cancel,
        })
    }
}

async fn accept_loop(listener: TcpListener, router: axum::Router, cancel: CancellationToken) {
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = cancel.cancelled() => return,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let cancel = cancel.clone();
        tokio::spawn(async move {
            let control = Arc::new(ConnControl::default());
            let for_requests = control.clone();
            let service = hyper::service::service_fn(
                move |mut request: hyper::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(for_requests.clone());
                    let mut router = router.clone();
                    async move { router.call(request).await }
                },
            );
            let io = TokioIo::new(Conn {
                inner: stream,
                control: control.clone(),
            });
            // A client that never finishes its headers is cut off, as the
            // service's proxy would: it holds no connection forever.
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(io, service);
            tokio::select! {
                _ = connection => {}
                // Dropping the connection closes the socket (with RST: see Conn).
                _ = control.kill.notified() => {}
                _ = cancel.cancelled() => {}
            }
        });
    }
}

/// A running simulator on 127.0.0.1. Stops when dropped.
///
/// ```no_run
/// # async fn demo() -> std::io::Result<()> {
/// let sim = kling_sim::Simulator::builder().api_key("test-key").start().await?;
/// println!("API {} uploads {}", sim.base_url(), sim.upload_base_url());
/// // ... point the client at it, then:
/// assert!(sim.stats().duplicate_inputs().is_empty());
/// # Ok(()) }
/// ```
pub struct Simulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    cancel: CancellationToken,
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Simulator {
    /// A builder with the default config.
    pub fn builder() -> SimulatorBuilder {
        SimulatorBuilder::default()
    }

    /// The API base URL (`http://127.0.0.1:PORT`).
    pub fn base_url(&self) -> &str {
        &self.shared.base_url
    }

    /// The upload base URL (`http://127.0.0.1:PORT/file-upload`).
    pub fn upload_base_url(&self) -> String {
        format!("{}/file-upload", self.shared.base_url)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The first accepted API key.
    pub fn api_key(&self) -> &str {
        &self.shared.config.api_keys[0]
    }

    /// The config it runs with.
    pub fn config(&self) -> &SimConfig {
        &self.shared.config
    }

    /// Counters and records so far.
    pub fn stats(&self) -> Stats {
        let now = tokio::time::Instant::now();
        self.shared.lock().stats(now, self.api_key())
    }

    /// Replaces the faults in force from the next request on, e.g. a
    /// maintenance window that opens and closes during a test. Refused like a
    /// config, if the simulator could not honour it.
    pub fn set_faults(&self, faults: crate::config::FaultConfig) -> Result<(), String> {
        let mut check = self.shared.config.clone();
        check.faults = faults.clone();
        check.check()?;
        *self
            .shared
            .faults
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = faults;
        Ok(())
    }

    /// Sets the balance of every accepted key's account (a top-up).
    pub fn set_credits(&self, credits: f64) {
        let mut state = self.shared.lock();
        for balance in state.credits.values_mut() {
            *balance = credits;
        }
    }

    /// Stops serving (also done on drop).
    pub fn shutdown(&self) {
        self.cancel.cancel();
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
