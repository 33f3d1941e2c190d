//! The node's local API: one typed jsonrpsee trait, `KvRpc`, served over HTTP on a loopback address
//! ([`serve`]) and called by the `kv` CLI through [`KvRpcClient`].
//!
//! The server listens on loopback only, and anyone who can reach it can publish under the node's
//! identity: the same trust as the node's data directory. Values travel as UTF-8 text (the CLI's
//! arguments); the store itself holds bytes.

use std::net::SocketAddr;

use jsonrpsee::core::{RpcResult, async_trait};
use jsonrpsee::proc_macros::rpc;
use jsonrpsee::server::{Server, ServerConfig, ServerHandle};
use jsonrpsee::types::ErrorObjectOwned;
use meshwork_identity::PeerId;
use serde::{Deserialize, Serialize};

use crate::{KvError, KvNode};

/// What a get finds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Found {
    /// The value, as text (bytes that are not UTF-8 are replaced, as `String::from_utf8_lossy` does).
    pub value: String,
    /// Who signed it.
    pub publisher: PeerId,
    /// When it expires unless re-published, in Unix seconds.
    pub expires: u64,
}

/// What a put did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    /// How many of the closest peers stored the record.
    pub stored_at: usize,
    /// The publisher: this node.
    pub publisher: PeerId,
}

/// The error codes of the API, in the range JSON-RPC leaves to servers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorCode {
    /// Another publisher holds the name ([`KvError::Conflict`]); the message names it.
    Conflict,
    /// The value is too large ([`KvError::TooLarge`]).
    TooLarge,
    /// No peer stored the record, or the node knows no peers to ask ([`KvError::NotStored`],
    /// [`KvError::Query`]).
    Unreachable,
    /// The query took too long, the node stopped, or its store failed.
    Failed,
}

impl ErrorCode {
    /// The number on the wire.
    #[must_use]
    pub const fn code(self) -> i32 {
        match self {
            Self::Conflict => -32010,
            Self::TooLarge => -32011,
            Self::Unreachable => -32012,
            Self::Failed => -32013,
        }
    }

    /// The code a failed call came back with, if the node answered with one of its own.
    #[must_use]
    pub fn of(error: &jsonrpsee::core::ClientError) -> Option<Self> {
        let jsonrpsee::core::ClientError::Call(object) = error else {
            return None;
        };
        [Self::Conflict, Self::TooLarge, Self::Unreachable, Self::Failed]
            .into_iter()
            .find(|code| code.code() == object.code())
    }
}

impl From<KvError> for ErrorObjectOwned {
    fn from(error: KvError) -> Self {
        let code = match error {
            KvError::Conflict { .. } => ErrorCode::Conflict,
            KvError::TooLarge { .. } => ErrorCode::TooLarge,
            KvError::NotStored | KvError::Query(_) => ErrorCode::Unreachable,
            _ => ErrorCode::Failed,
        };
        Self::owned(code.code(), error.to_string(), None::<()>)
    }
}

/// The key-value API of a running node.
#[rpc(server, client)]
pub trait KvRpc {
    /// Stores `value` under `name`, signed by the node.
    #[method(name = "put")]
    async fn put(&self, name: String, value: String) -> RpcResult<Stored>;

    /// The value under `name`; `null` when the DHT holds none.
    #[method(name = "get")]
    async fn get(&self, name: String) -> RpcResult<Option<Found>>;
}

#[async_trait]
impl KvRpcServer for KvNode {
    async fn put(&self, name: String, value: String) -> RpcResult<Stored> {
        let stored_at = Self::put(self, &name, value.into_bytes()).await?;
        Ok(Stored {
            stored_at,
            publisher: self.peer_id(),
        })
    }

    async fn get(&self, name: String) -> RpcResult<Option<Found>> {
        Ok(Self::get(self, &name).await?.map(|entry| Found {
            value: String::from_utf8_lossy(&entry.value).into_owned(),
            publisher: entry.publisher,
            expires: entry.expires_unix_secs,
        }))
    }
}

/// Why the API could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address is not a loopback address: the API publishes under the node's identity.
    #[error("the API serves loopback only, not {0}")]
    NotLoopback(SocketAddr),
    /// The socket.
    #[error("api: {0}")]
    Io(#[from] std::io::Error),
}

/// Serves `node`'s API at `addr` (a loopback address); returns where it listens and its handle (drop
/// or `stop` it to end).
pub async fn serve(node: KvNode, addr: SocketAddr) -> Result<(SocketAddr, ServerHandle), ServeError> {
    if !addr.ip().is_loopback() {
        return Err(ServeError::NotLoopback(addr));
    }
    let config = ServerConfig::builder()
        .max_connections(16)
        .max_request_body_size(64 * 1024)
        .http_only()
        .build();
    let server = Server::builder().set_config(config).build(addr).await?;
    let addr = server.local_addr()?;
    Ok((addr, server.start(node.into_rpc())))
}
