//! Serving one accepted connection: stamping each request with its arrival
//! time, closing idle connections, capping how many are open, and closing them
//! gracefully on shutdown.
//!
//! hyper closes an idle HTTP/1 connection by its header read timeout, but an
//! HTTP/2 connection with no open stream stays up for ever; thousands of them
//! exhaust file descriptors and lock out the API server and the kubelet. So
//! every connection here is watched: when no request is in flight for the idle
//! timeout it is shut down gracefully (HTTP/2 GOAWAY), whatever the protocol.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

/// When a request's head was read: its deadline counts from here, so time it
/// spent queued behind other work is not free.
#[derive(Debug, Clone, Copy)]
pub(super) struct Arrived(pub Instant);

/// How connections are served.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Most connections open at once on the review port (the health port has a small cap of its own).
    pub max_connections: u32,
    /// A connection with no request in flight for this long is closed.
    pub idle_timeout: Duration,
    /// A TLS handshake or an HTTP/1 request head must arrive within this.
    pub handshake_timeout: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_connections: 1024,
            idle_timeout: Duration::from_secs(30),
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// Connections over the cap are answered with a 503 on at most this many
/// connections at once (a refusal costs a TLS handshake); beyond it they are
/// closed unanswered.
const REFUSAL_SLOTS: usize = 8;
/// HTTP/2 keep-alive: ping an idle peer this often, and drop it when a ping is
/// not answered in time, so a vanished client does not hold a slot.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(20);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(10);
/// Streams per HTTP/2 connection: the API server opens a handful; a client
/// that opens more waits for its own streams, not for other clients.
const MAX_CONCURRENT_STREAMS: u32 = 256;

/// The open connections, their cap, and the shutdown signal they watch.
pub(super) struct Connections {
    limits: ConnectionLimits,
    slots: Arc<Semaphore>,
    refusals: Arc<Semaphore>,
    shutdown: watch::Sender<bool>,
    open: prometheus_client::metrics::gauge::Gauge,
    refused: prometheus_client::metrics::counter::Counter,
    builder: auto::Builder<TokioExecutor>,
}

/// What to do with a newly accepted connection.
pub(super) enum Admit {
    /// Serve it; the permit is its slot.
    Serve(OwnedSemaphorePermit),
    /// Over the cap: answer it with a 503 and close.
    Refuse(OwnedSemaphorePermit),
    /// Over the cap and no refusal slot free: close it now.
    Drop,
}

impl Connections {
    /// Connection handling per `limits`, counted in `metrics`.
    pub(super) fn new(limits: ConnectionLimits, metrics: &super::metrics::Metrics) -> Self {
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.handshake_timeout);
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(KEEP_ALIVE_INTERVAL)
            .keep_alive_timeout(KEEP_ALIVE_TIMEOUT)
            .max_concurrent_streams(MAX_CONCURRENT_STREAMS);
        Self {
            limits,
            slots: Arc::new(Semaphore::new(limits.max_connections as usize)),
            refusals: Arc::new(Semaphore::new(REFUSAL_SLOTS)),
            shutdown: watch::channel(false).0,
            open: metrics.connections_open.clone(),
            refused: metrics.connections_refused.clone(),
            builder,
        }
    }

    /// The limits in force.
    pub(super) fn limits(&self) -> ConnectionLimits {
        self.limits
    }

    /// Takes a slot for a new connection, or says how to refuse it.
    pub(super) fn admit(&self) -> Admit {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Admit::Serve(permit);
        }
        self.refused.inc();
        match self.refusals.clone().try_acquire_owned() {
            Ok(permit) => Admit::Refuse(permit),
            Err(_) => Admit::Drop,
        }
    }

    /// Asks every connection to finish its in-flight requests and close.
    pub(super) fn shut_down(&self) {
        self.shutdown.send_replace(true);
    }

    /// Waits until every connection has closed.
    pub(super) async fn drained(&self) {
        let all = self.limits.max_connections;
        // The semaphore is never closed, so acquiring can only wait.
        let _ = self.slots.acquire_many(all).await;
    }

    /// Serves `io` with `service` until the peer closes, it idles past the
    /// idle timeout, or shutdown is asked for; `slot` is held until then.
    pub(super) async fn serve<I, S>(&self, io: I, service: S, slot: OwnedSemaphorePermit)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        S: tower::Service<
                hyper::Request<Incoming>,
                Response = axum::response::Response,
                Error = std::convert::Infallible,
            > + Clone
            + Send
            + 'static,
        S::Future: Send + 'static,
    {
        self.open.inc();
        let activity = Arc::new(Activity::default());
        let stamped = {
            let activity = activity.clone();
            hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                request.extensions_mut().insert(Arrived(Instant::now()));
                let busy = activity.start();
                let response = tower::ServiceExt::oneshot(service.clone(), request);
                async move {
                    let response = response.await;
                    drop(busy);
                    response
                }
            })
        };
        let connection = self
            .builder
            .serve_connection(TokioIo::new(io), stamped)
            .into_owned();
        tokio::pin!(connection);
        let mut shutdown = self.shutdown.subscribe();
        let idle = self.limits.idle_timeout;
        let mut closing = *shutdown.borrow();
        if closing {
            connection.as_mut().graceful_shutdown();
        }
        loop {
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "connection ended with an error");
                    }
                    break;
                }
                Ok(()) = shutdown.changed(), if !closing => {
                    closing = true;
                    connection.as_mut().graceful_shutdown();
                }
                () = tokio::time::sleep(activity.idle_left(idle)), if !closing => {
                    if activity.idle_for() >= idle {
                        tracing::debug!("closing an idle connection");
                        closing = true;
                        connection.as_mut().graceful_shutdown();
                    }
                }
            }
        }
        self.open.dec();
        drop(slot);
    }

    /// Answers one request on `io` with 503 and closes.
    pub(super) async fn refuse<I>(&self, io: I, permit: OwnedSemaphorePermit)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let max = self.limits.max_connections;
        let refusal = hyper::service::service_fn(move |_request: hyper::Request<Incoming>| {
            let text = format!(
                "bouncer is at its connection limit ({max} open connections); retry, or raise --max-connections\n"
            );
            async move {
                let mut response =
                    hyper::Response::new(http_body_util::Full::new(hyper::body::Bytes::from(text)));
                *response.status_mut() = hyper::StatusCode::SERVICE_UNAVAILABLE;
                response.headers_mut().insert(
                    hyper::header::CONNECTION,
                    hyper::header::HeaderValue::from_static("close"),
                );
                Ok::<_, std::convert::Infallible>(response)
            }
        });
        let connection = self.builder.serve_connection(TokioIo::new(io), refusal);
        tokio::pin!(connection);
        let deadline = tokio::time::sleep(self.limits.handshake_timeout);
        tokio::select! {
            _ = connection.as_mut() => {}
            () = deadline => {}
        }
        // One answer per refused connection: close after the first response.
        drop(permit);
    }
}

/// Requests in flight on one connection and when the last one ended.
#[derive(Default)]
struct Activity {
    in_flight: AtomicUsize,
    /// Milliseconds since `epoch` when the connection last became idle.
    idle_since: AtomicU64,
    epoch: std::sync::OnceLock<Instant>,
}

impl Activity {
    fn epoch(&self) -> Instant {
        *self.epoch.get_or_init(Instant::now)
    }

    fn start(self: &Arc<Self>) -> Busy {
        self.epoch();
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        Busy(self.clone())
    }

    fn idle_for(&self) -> Duration {
        if self.in_flight.load(Ordering::SeqCst) > 0 {
            return Duration::ZERO;
        }
        let since = Duration::from_millis(self.idle_since.load(Ordering::SeqCst));
        self.epoch().elapsed().saturating_sub(since)
    }

    /// How long until the connection would have idled for `idle`.
    fn idle_left(&self, idle: Duration) -> Duration {
        idle.saturating_sub(self.idle_for())
            .max(Duration::from_millis(100))
    }
}

/// One request in flight; dropping it marks the end of the request.
struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        let now = u64::try_from(self.0.epoch().elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.idle_since.store(now, Ordering::SeqCst);
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}
