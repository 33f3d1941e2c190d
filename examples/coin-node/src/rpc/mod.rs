//! The JSON-RPC server (jsonrpsee over HTTP) and the cookie check in front of it.
//!
//! The methods are one typed trait, `CoinRpc` (`methods.rs`), which jsonrpsee turns into
//! [`CoinRpcServer`], implemented over [`NodeApi`], and [`CoinRpcClient`], which clients call.
//!
//! Like Bitcoin Core, the node writes a random token to `<datadir>/.cookie` (owner-only) at start; a
//! request must carry `Authorization: Bearer <token>` or it gets HTTP 401 before any JSON is read.
//!
//! Limits: batches of at most [`MAX_BATCH`] calls, [`MAX_CONNECTIONS`] connections, bodies of
//! [`MAX_REQUEST_BYTES`], headers within [`HEADER_TIMEOUT`], connections for [`CONNECTION_LIFETIME`].
//! The server listens on loopback unless the operator says otherwise (`coin-node run
//! --rpc-allow-remote`): the cookie travels in clear over HTTP.

mod methods;

pub use methods::{
    Balance, BlockRef, BlockView, CoinRpcClient, CoinRpcServer, ErrorCode, PeerView, Status, SubmitResult,
    SubmitStatus, Tip, TxStatus, TxView, Utxo,
};

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use jsonrpsee::core::BoxError;
use jsonrpsee::server::{
    BatchRequestConfig, HttpBody, HttpRequest, HttpResponse, Methods, Server, ServerConfig, ServerHandle,
    StopHandle,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::api::NodeApi;

/// The largest request body accepted (a transaction is at most a few hundred KiB).
pub const MAX_REQUEST_BYTES: u32 = 1024 * 1024;
/// Calls in one JSON-RPC batch: a larger batch is refused whole, so one POST cannot hold the node's
/// task for seconds (2,000 `balance` calls in one batch once took 13 s).
pub const MAX_BATCH: u32 = 16;
/// HTTP connections served at once; one more is refused.
pub const MAX_CONNECTIONS: u32 = 32;
/// How long a client may take to send a request's headers (a slow-headers client holds a connection
/// slot no longer).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one connection stays open, busy or idle; a client simply opens another.
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(60);

/// Why the RPC server could not start.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// The cookie file or the socket.
    #[error("rpc: {0}")]
    Io(#[from] std::io::Error),
    /// A method could not be registered (a bug).
    #[error("rpc: {0}")]
    Register(#[from] jsonrpsee::core::RegisterMethodError),
    /// The address is not loopback and remote access was not allowed: over plain HTTP the cookie
    /// would travel in clear.
    #[error(
        "rpc: {0} is not a loopback address; the cookie would travel in clear (allow it with \
         --rpc-allow-remote, behind a TLS proxy or a private network)"
    )]
    Remote(SocketAddr),
}

/// A running HTTP server of the node: the RPC server, or the explorer.
#[derive(Debug)]
pub struct HttpServer {
    addr: SocketAddr,
    handle: ServerHandle,
}

/// The running RPC server.
pub type RpcServer = HttpServer;

impl HttpServer {
    /// Binds nothing itself: `addr` is where `accept_loop` listens, `handle` stops it.
    pub(crate) fn new(addr: SocketAddr, handle: ServerHandle) -> Self {
        Self { addr, handle }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops it.
    pub async fn stop(self) {
        let _ = self.handle.stop();
        self.handle.stopped().await;
    }
}

/// Writes a fresh random cookie to `path`, readable by its owner only, and returns it.
pub fn write_cookie(path: &Path) -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    let token = hex::encode(bytes);
    let _ = std::fs::remove_file(path);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(token.as_bytes())?;
    Ok(token)
}

/// The tower layer refusing requests without the cookie.
#[derive(Clone, Debug)]
pub struct CookieLayer {
    token: Arc<str>,
}

impl<S> tower::Layer<S> for CookieLayer {
    type Service = CookieService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        CookieService {
            inner,
            token: self.token.clone(),
        }
    }
}

/// The service [`CookieLayer`] wraps around jsonrpsee's.
#[derive(Clone, Debug)]
pub struct CookieService<S> {
    inner: S,
    token: Arc<str>,
}

/// Compares without an early exit, so the time taken does not tell how much of a guess was right.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl<S, B> tower::Service<HttpRequest<B>> for CookieService<S>
where
    S: tower::Service<HttpRequest<B>, Response = HttpResponse, Error = BoxError>,
    S::Future: Send + 'static,
{
    type Response = HttpResponse;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: HttpRequest<B>) -> Self::Future {
        let presented = request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .unwrap_or_default();
        if same(presented.as_bytes(), self.token.as_bytes()) {
            Box::pin(self.inner.call(request))
        } else {
            let mut response = HttpResponse::new(HttpBody::from(
                "cookie required: Authorization: Bearer <datadir/.cookie>\n",
            ));
            *response.status_mut() = http::StatusCode::UNAUTHORIZED;
            Box::pin(async move { Ok(response) })
        }
    }
}

/// Writes the cookie and serves the API at `addr`: a loopback address, unless `allow_remote`.
pub async fn serve(
    api: NodeApi,
    addr: SocketAddr,
    cookie: &Path,
    allow_remote: bool,
) -> Result<RpcServer, RpcError> {
    if !addr.ip().is_loopback() {
        if !allow_remote {
            return Err(RpcError::Remote(addr));
        }
        tracing::warn!(%addr, "JSON-RPC on a non-loopback address: the cookie travels in clear over HTTP");
    }
    let token: Arc<str> = write_cookie(cookie)?.into();
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let config = ServerConfig::builder()
        .max_request_body_size(MAX_REQUEST_BYTES)
        .max_response_body_size(16 * MAX_REQUEST_BYTES)
        .set_batch_request_config(BatchRequestConfig::Limit(MAX_BATCH))
        .http_only()
        .build();
    let services = Server::builder()
        .set_config(config)
        .set_http_middleware(tower::ServiceBuilder::new().layer(CookieLayer { token }))
        .to_service_builder();
    let methods: Methods = api.into_rpc().into();
    let (stop, handle) = jsonrpsee::server::stop_channel();
    let stopping = stop.clone();
    tokio::spawn(accept_loop(listener, stop, move || {
        services.clone().build(methods.clone(), stopping.clone())
    }));
    Ok(HttpServer::new(addr, handle))
}

/// Accepts HTTP connections on `listener` until `stop`, serving each with a service from `make`: at
/// most [`MAX_CONNECTIONS`] at once, each within the deadlines of [`serve_connection`]. The RPC server
/// and the explorer share it.
pub(crate) async fn accept_loop<S>(listener: TcpListener, stop: StopHandle, make: impl Fn() -> S)
where
    S: tower::Service<HttpRequest<Incoming>, Response = HttpResponse, Error = BoxError>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS as usize));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.clone().shutdown() => return,
        };
        let socket = match accepted {
            Ok((socket, _)) => socket,
            Err(err) => {
                // Out of file descriptors, say: wait instead of spinning.
                tracing::debug!(%err, "accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        // Past the cap the socket is dropped at once: a client holding connections costs its own.
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            continue;
        };
        tokio::spawn(serve_connection(socket, make(), stop.clone(), slot));
    }
}

/// Serves one HTTP/1 connection: its headers within [`HEADER_TIMEOUT`], the whole connection within
/// [`CONNECTION_LIFETIME`] (then it is closed after its request in progress), and a graceful close when
/// the server stops.
async fn serve_connection<S>(socket: TcpStream, service: S, stop: StopHandle, _slot: OwnedSemaphorePermit)
where
    S: tower::Service<HttpRequest<Incoming>, Response = HttpResponse, Error = BoxError>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let service = TowerToHyperService::new(service);
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(socket), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        () = stop.shutdown() => {}
        () = tokio::time::sleep(CONNECTION_LIFETIME) => {}
    }
    conn.as_mut().graceful_shutdown();
    // A request in progress gets its answer; one that takes longer than a lifetime is cut.
    let _ = tokio::time::timeout(CONNECTION_LIFETIME, conn).await;
}
