//! A stand-in OTLP/HTTP collector: it accepts every export at once and counts
//! it, and keeps the bodies when asked (the trace tests decode them). The load
//! harness uses it so its traced scenarios measure bouncer's side of tracing
//! (spans built, batched, encoded and sent), not a backend's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;

/// A running sink on a loopback port, on a thread of its own.
pub(crate) struct Sink {
    /// Its OTLP/HTTP base URL (bouncer appends `/v1/traces`).
    pub(crate) url: String,
    exports: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
    kept: Option<Arc<Mutex<Vec<Bytes>>>>,
}

impl Sink {
    /// Exports received and their body bytes so far.
    pub(crate) fn received(&self) -> (u64, u64) {
        (
            self.exports.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
        )
    }

    /// The export bodies received so far (protobuf `ExportTraceServiceRequest`s),
    /// when started with `keep`.
    pub(crate) fn bodies(&self) -> Vec<Bytes> {
        self.kept
            .as_ref()
            .map(|kept| kept.lock().expect("bodies").clone())
            .unwrap_or_default()
    }
}

/// Starts a sink; `keep`: remember each body, for [`Sink::bodies`].
pub(crate) fn start(keep: bool) -> Sink {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    listener.set_nonblocking(true).expect("non-blocking");
    let url = format!("http://{}", listener.local_addr().expect("its address"));
    let (exports, bytes) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let kept = keep.then(|| Arc::new(Mutex::new(Vec::new())));
    let counts = (exports.clone(), bytes.clone(), kept.clone());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("a listener");
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let counts = counts.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |request: hyper::Request<hyper::body::Incoming>| {
                            let counts = counts.clone();
                            async move {
                                let body = request.into_body().collect().await?.to_bytes();
                                counts.0.fetch_add(1, Ordering::Relaxed);
                                counts.1.fetch_add(body.len() as u64, Ordering::Relaxed);
                                if let Some(kept) = &counts.2 {
                                    kept.lock().expect("bodies").push(body);
                                }
                                let response = hyper::Response::builder()
                                    .header("content-type", "application/x-protobuf")
                                    .body(Full::new(Bytes::new()))
                                    .expect("a response of constant parts");
                                Ok::<_, hyper::Error>(response)
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
    });
    Sink {
        url,
        exports,
        bytes,
        kept,
    }
}
