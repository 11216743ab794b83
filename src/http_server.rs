//! The HTTP listener: accepts connections and serves the router over
//! HTTP/1.1 and HTTP/2 with bounds a client cannot talk its way past. This is
//! `axum::serve` with the two hyper settings it does not expose:
//!
//! - `server.header_read_timeout_secs`: a request's head must arrive within
//!   this time, or the connection is closed, so a client sending its headers
//!   a byte at a time holds a connection for seconds, not forever;
//! - `server.max_header_bytes`: the largest request head read (HTTP/1 read
//!   buffer, HTTP/2 header list); past it the request is refused
//!   (431 on HTTP/1).
//!
//! Each connection gets the peer's address (`ConnectInfo<SocketAddr>`),
//! which the admin rule and the relay limits use. On shutdown the listener
//! stops accepting, every connection finishes its requests in flight and
//! closes; the returned future resolves when the last one has.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::ServiceExt as _;

/// What a client may not exceed while sending a request's head.
#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    /// Time to receive a request's head.
    pub read_timeout: Duration,
    /// Bytes of a request's head.
    pub max_bytes: usize,
}

/// hyper's smallest HTTP/1 read buffer; a smaller bound is raised to it.
const MIN_HTTP1_BUFFER: usize = 8192;

/// Serves `router` on `listener` until `shutdown` resolves, then lets open
/// connections finish; resolves when the last one has closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HeadLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Connections watch `stop`; each holds a `done` receiver, so
    // `done_tx.closed()` resolves once they all ended.
    let (stop_tx, stop_rx) = watch::channel(false);
    let (done_tx, done_rx) = watch::channel(());
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.read_timeout)
        .max_buf_size(limits.max_bytes.max(MIN_HTTP1_BUFFER));
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(limits.max_bytes).unwrap_or(u32::MAX));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait, do not spin.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service =
            router
                .clone()
                .map_request(move |mut request: hyper::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    request.map(axum::body::Body::new)
                });
        let service = TowerToHyperService::new(service.map_err(|never: Infallible| match never {}));
        let builder = builder.clone();
        let mut stop = stop_rx.clone();
        let done = done_rx.clone();
        tokio::spawn(async move {
            let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => log_end(result),
                () = async { let _ = stop.wait_for(|stopped| *stopped).await; } => {
                    connection.as_mut().graceful_shutdown();
                    log_end(connection.await);
                }
            }
            drop(done);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(done_rx);
    done_tx.closed().await;
    Ok(())
}

fn log_end(result: Result<(), Box<dyn std::error::Error + Send + Sync>>) {
    if let Err(error) = result {
        // A client going away or timing out is routine; never an error here.
        tracing::trace!(%error, "connection ended");
    }
}
