//! HTTP endpoint stage, serving: the accept loop (bounded connections, optional TLS), each
//! connection's lifetime, and the routes /metrics, /inventory, /healthz and /. Must never block
//! the pipeline, read a request body, or log anything from a request above `debug`.
use std::convert::Infallible;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Body as _, Bytes, Incoming};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::sync::{watch, Semaphore};
use tracing::debug;

use super::auth::Auth;
use super::{Provider, ServeStats, CONNECTION_LIMIT, DRAIN_LIMIT, HEADER_TIMEOUT, MAX_CONNECTIONS, ROUTES};

const MAX_REQUEST_HEAD: usize = 16 * 1024;

/// What every connection shares: the provider, the counters and the credentials.
pub(super) struct Shared {
    pub(super) provider: Arc<dyn Provider>,
    pub(super) stats: Arc<ServeStats>,
    pub(super) auth: Option<Auth>,
}

pub(super) async fn accept_loop(
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break,
            r = listener.accept() => r,
        };
        let stream = match accepted {
            Ok((stream, _peer)) => stream,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                debug!(error = %e, "HTTP endpoint: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            shared.stats.refused.fetch_add(1, Relaxed);
            debug!("HTTP endpoint: connection refused, {MAX_CONNECTIONS} open");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let (tls, shared, stop) = (tls.clone(), shared.clone(), stop.clone());
        tokio::spawn(async move {
            let _slot = slot;
            match tls {
                None => serve_connection(TokioIo::new(stream), shared, stop).await,
                Some(acceptor) => match tokio::time::timeout(HEADER_TIMEOUT, acceptor.accept(stream)).await {
                    Ok(Ok(tls_stream)) => serve_connection(TokioIo::new(tls_stream), shared, stop).await,
                    Ok(Err(e)) => {
                        shared.stats.tls_failures.fetch_add(1, Relaxed);
                        debug!(error = %e, "HTTP endpoint: TLS handshake failed");
                    }
                    Err(_) => {
                        shared.stats.tls_failures.fetch_add(1, Relaxed);
                        debug!("HTTP endpoint: TLS handshake timed out");
                    }
                },
            }
        });
    }
    drop(listener);
    // Connections saw the stop too and drain; wait for their slots, bounded.
    let _ = tokio::time::timeout(DRAIN_LIMIT, slots.acquire_many(MAX_CONNECTIONS as u32)).await;
}

async fn serve_connection<I>(io: I, shared: Arc<Shared>, mut stop: watch::Receiver<bool>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |req| {
        let response = respond(&shared, &req);
        async move { Ok::<_, Infallible>(response) }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT).max_buf_size(MAX_REQUEST_HEAD).max_headers(64);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = async { tokio::select! {
            _ = stop.wait_for(|s| *s) => {},
            _ = tokio::time::sleep(CONNECTION_LIMIT) => {},
        } } => {
            conn.as_mut().graceful_shutdown();
            match tokio::time::timeout(DRAIN_LIMIT, conn.as_mut()).await {
                Ok(r) => r,
                Err(_) => return debug!("HTTP endpoint: connection closed after the drain limit"),
            }
        }
    };
    if let Err(e) = result {
        debug!(error = %e, "HTTP endpoint: connection ended with an error");
    }
}

pub(super) fn route_of(path: &str) -> usize {
    match path {
        "/metrics" => 0,
        "/inventory" => 1,
        "/healthz" => 2,
        "/" => 3,
        _ => 4,
    }
}

fn respond(shared: &Shared, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let route = route_of(req.uri().path());
    let (code, content_type, body) = answer(shared, req, route);
    shared.stats.count(route, code);
    debug!(route = ROUTES[route], code, "HTTP endpoint: request");
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    match code {
        401 => {
            h.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"tlsmon\""));
        }
        405 => {
            h.insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        }
        _ => {}
    }
    // Bodies are never read: close rather than drain one of unknown size.
    if !req.body().is_end_stream() {
        h.insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

const TEXT: &str = "text/plain; charset=utf-8";

fn answer(shared: &Shared, req: &Request<Incoming>, route: usize) -> (u16, &'static str, String) {
    if route != 2 {
        if let Some(auth) = &shared.auth {
            let ok = match req.headers().get(header::AUTHORIZATION) {
                None => false,
                Some(v) => {
                    let ok = auth.check(v.as_bytes());
                    if !ok {
                        shared.stats.auth_failures.fetch_add(1, Relaxed);
                    }
                    ok
                }
            };
            if !ok {
                return (401, TEXT, "authentication required\n".into());
            }
        }
    }
    if route != 4 && req.method() != Method::GET && req.method() != Method::HEAD {
        return (405, TEXT, "only GET and HEAD\n".into());
    }
    let p = &shared.provider;
    match route {
        0 => (200, "text/plain; version=0.0.4; charset=utf-8", p.metrics()),
        1 => (200, "application/json", p.inventory()),
        2 => match p.health() {
            Ok(body) => (200, TEXT, body),
            Err(body) => (503, TEXT, body),
        },
        3 => (
            200,
            TEXT,
            "tlsmon\n/metrics    Prometheus metrics\n/inventory  posture inventory (JSON)\n/healthz    health check\n"
                .into(),
        ),
        _ => (404, TEXT, "not found; try /metrics, /inventory or /healthz\n".into()),
    }
}
