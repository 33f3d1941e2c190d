//! The block explorer: one HTML page (`page.html`, served at `/`) and the read-only JSON it reads.
//!
//! `coin-node run --explorer ADDR` serves it (the devnet serves one for its first node and prints the
//! address). It shows the tip and the recent blocks, a block with its transactions, a transaction with
//! its confirmations, an address's balance and coins, the peers and the mempool; the front page asks
//! for [`Summary`] every second, so it follows new blocks as they arrive.
//!
//! Routes, all `GET`:
//! - `/`: the page;
//! - `/api/summary`: [`Summary`];
//! - `/api/block/<height or id>`: a [`BlockView`];
//! - `/api/tx/<txid>`: a [`TxPage`];
//! - `/api/address/<address>`: an [`AddressPage`].
//!
//! An unknown block or transaction is 404; a malformed id 400. It needs no cookie, since it only
//! reads public chain data, and listens on loopback unless the operator gives another address. It
//! shares the RPC server's connection limits and deadlines.

use std::net::SocketAddr;

use http::{Method, StatusCode, header};
use hyper::body::Incoming;
use jsonrpsee::core::BoxError;
use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};
use jsonrpsee::types::ErrorObjectOwned;
use meshwork_identity::PeerId;
use meshwork_ledger::{BlockId, TxId};
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use crate::api::NodeApi;
use crate::rpc::{
    Balance, BlockRef, BlockView, CoinRpcServer, HttpServer, PeerView, Status, TxStatus, TxView, Utxo,
};

/// The page, with its script and styles inline.
const PAGE: &str = include_str!("page.html");
/// Blocks on the front page.
pub const RECENT_BLOCKS: u64 = 10;
/// Mempool transactions listed on the front page (the count is always the whole pool's).
pub const MEMPOOL_LISTED: usize = 50;

/// The front page: the node, its latest blocks, its mempool and its peers.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Summary {
    /// The node and its tip.
    pub status: Status,
    /// The last [`RECENT_BLOCKS`] blocks of the best chain, newest first.
    pub blocks: Vec<BlockView>,
    /// Up to [`MEMPOOL_LISTED`] transactions waiting in the mempool.
    pub mempool: Vec<TxId>,
    /// The connected peers.
    pub peers: Vec<PeerView>,
}

/// A transaction and how deep it is.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TxPage {
    /// The transaction.
    pub tx: TxView,
    /// Blocks on top of the one holding it, that one included (0 in the mempool).
    pub confirmations: u64,
}

/// An address: its balance and the coins it may spend.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AddressPage {
    /// The confirmed balance.
    pub balance: Balance,
    /// Its coins that no mempool transaction spends yet.
    pub utxos: Vec<Utxo>,
}

/// A running explorer.
pub type ExplorerServer = HttpServer;

/// Serves the explorer of `api` at `addr`.
pub async fn serve(api: NodeApi, addr: SocketAddr) -> std::io::Result<ExplorerServer> {
    if !addr.ip().is_loopback() {
        tracing::warn!(%addr, "explorer on a non-loopback address: anyone who reaches it reads the chain");
    }
    let listener = TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (stop, handle) = jsonrpsee::server::stop_channel();
    let service = tower::service_fn(move |request: HttpRequest<Incoming>| {
        let api = api.clone();
        async move { Ok::<_, BoxError>(respond(&api, &request).await) }
    });
    tokio::spawn(crate::rpc::accept_loop(listener, stop, move || service.clone()));
    Ok(HttpServer::new(addr, handle))
}

/// Why a request got no page.
enum Refusal {
    /// 400, with what was wrong.
    BadRequest(String),
    /// 404.
    NotFound,
    /// 405: only `GET` is served.
    Method,
    /// 500: the node failed.
    Node(ErrorObjectOwned),
}

impl From<ErrorObjectOwned> for Refusal {
    fn from(error: ErrorObjectOwned) -> Self {
        Self::Node(error)
    }
}

fn response(status: StatusCode, content_type: &str, body: String) -> HttpResponse {
    let mut response = HttpResponse::new(HttpBody::from(body));
    *response.status_mut() = status;
    if let Ok(value) = header::HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

async fn respond(api: &NodeApi, request: &HttpRequest<Incoming>) -> HttpResponse {
    let answer = if request.method() == Method::GET {
        route(api, request.uri().path()).await
    } else {
        Err(Refusal::Method)
    };
    match answer {
        Ok(Page::Html) => response(StatusCode::OK, "text/html; charset=utf-8", PAGE.to_owned()),
        Ok(Page::Json(body)) => response(StatusCode::OK, "application/json", body),
        Err(refusal) => {
            let (status, message) = match refusal {
                Refusal::BadRequest(why) => (StatusCode::BAD_REQUEST, why),
                Refusal::NotFound => (StatusCode::NOT_FOUND, "not found".to_owned()),
                Refusal::Method => (StatusCode::METHOD_NOT_ALLOWED, "only GET".to_owned()),
                Refusal::Node(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.message().to_owned()),
            };
            let body = serde_json::json!({ "error": message }).to_string();
            response(status, "application/json", body)
        }
    }
}

/// What a route answers.
enum Page {
    Html,
    Json(String),
}

fn json(value: &impl Serialize) -> Result<Page, Refusal> {
    serde_json::to_string(value)
        .map(Page::Json)
        .map_err(|e| Refusal::BadRequest(e.to_string()))
}

fn parse<T: std::str::FromStr>(text: &str, what: &str) -> Result<T, Refusal> {
    text.parse()
        .map_err(|_| Refusal::BadRequest(format!("not {what}: {text}")))
}

async fn route(api: &NodeApi, path: &str) -> Result<Page, Refusal> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    match parts[..] {
        [""] | ["index.html"] => Ok(Page::Html),
        ["api", "summary"] => json(&summary(api).await?),
        ["api", "block", at] => {
            let at = match at.parse::<u64>() {
                Ok(height) => BlockRef::Height(height),
                Err(_) => BlockRef::Id(parse::<BlockId>(at, "a height or a block id")?),
            };
            json(&CoinRpcServer::block(api, at).await?.ok_or(Refusal::NotFound)?)
        }
        ["api", "tx", txid] => {
            let txid: TxId = parse(txid, "a transaction id")?;
            let tx = CoinRpcServer::transaction(api, txid)
                .await?
                .ok_or(Refusal::NotFound)?;
            let tip = CoinRpcServer::tip(api).await?;
            let confirmations = match (tx.status, tx.height) {
                (TxStatus::Confirmed, Some(height)) => (tip.height + 1).saturating_sub(height),
                _ => 0,
            };
            json(&TxPage { tx, confirmations })
        }
        ["api", "address", address] => {
            let address: PeerId = parse(address, "an address")?;
            let balance = CoinRpcServer::balance(api, address).await?;
            let utxos = CoinRpcServer::utxos(api, address).await?;
            json(&AddressPage { balance, utxos })
        }
        _ => Err(Refusal::NotFound),
    }
}

async fn summary(api: &NodeApi) -> Result<Summary, Refusal> {
    let status = CoinRpcServer::status(api).await?;
    let blocks = api
        .recent_blocks(RECENT_BLOCKS)
        .await
        .map_err(ErrorObjectOwned::from)?;
    let mempool = api
        .mempool(MEMPOOL_LISTED)
        .await
        .map_err(ErrorObjectOwned::from)?;
    let peers = CoinRpcServer::peers(api).await?;
    Ok(Summary {
        status,
        blocks,
        mempool,
        peers,
    })
}
