//! The node's JSON-RPC methods as one typed trait, `CoinRpc`.
//!
//! jsonrpsee's `#[rpc(server, client)]` macro turns the trait into two: [`CoinRpcServer`], which the node
//! implements over [`NodeApi`], and [`CoinRpcClient`], which every jsonrpsee client implements (the CLI,
//! the bench and the tests call it through [`RpcClient`](crate::client::RpcClient)). A request or an
//! answer that changes shape is then a compile error on both sides, not a key that silently reads as a
//! default.
//!
//! Identifiers (block and transaction ids, addresses) travel as the strings their `Display` prints,
//! and parse back on the way in: a malformed one is refused as [`ErrorCode::InvalidParams`] before the
//! method runs. Statuses are enums ([`TxStatus`], [`SubmitStatus`]) that serialise to the lowercase
//! words a script matches on. Every error carries an [`ErrorCode`].
//!
//! ```no_run
//! # async fn example(addr: std::net::SocketAddr, cookie: &str) -> Result<(), Box<dyn std::error::Error>> {
//! use coin_node::client::RpcClient;
//! use coin_node::rpc::{BlockRef, CoinRpcClient};
//!
//! let client = RpcClient::new(addr, Some(cookie))?;
//! let tip = client.tip().await?;
//! let block = client.block(BlockRef::Height(tip.height)).await?;
//! assert_eq!(block.map(|b| b.id), Some(tip.id));
//! # Ok(())
//! # }
//! ```

use std::net::SocketAddr;

use jsonrpsee::core::{RpcResult, async_trait};
use jsonrpsee::proc_macros::rpc;
use jsonrpsee::types::ErrorObjectOwned;
use meshwork_coin::Submitted;
use meshwork_identity::PeerId;
use meshwork_ledger::{BlockId, Transfer, TxId};
use serde::{Deserialize, Serialize};

use crate::api::{ApiError, NodeApi};
pub use crate::api::{BlockView, Status, TxStatus, TxView};

/// The error codes the node answers with. The JSON-RPC 2.0 ones keep their standard values; the
/// node's own follow Bitcoin Core's where one exists, and otherwise sit in the range JSON-RPC leaves to
/// servers (-32000 to -32099).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The method does not exist (JSON-RPC -32601).
    MethodNotFound,
    /// The parameters did not parse: a wrong count or type, a malformed id, address or hex, or a
    /// transaction that does not decode (JSON-RPC -32602).
    InvalidParams,
    /// The node failed: it is stopping, or its store failed (JSON-RPC -32603).
    Internal,
    /// The mempool refused the transaction; the message says why (Bitcoin Core's
    /// `RPC_VERIFY_REJECTED`, -26).
    Rejected,
    /// The node is busy; the same call may succeed if made again (-32001): the chain kept moving while
    /// the node read it, or, for a submission, the node's send queues to most of its gossip neighbours
    /// are full (it relays what it holds before it takes more).
    Busy,
}

impl ErrorCode {
    /// The number on the wire.
    #[must_use]
    pub const fn code(self) -> i32 {
        match self {
            Self::MethodNotFound => -32601,
            Self::InvalidParams => -32602,
            Self::Internal => -32603,
            Self::Rejected => -26,
            Self::Busy => -32001,
        }
    }

    /// The code for a number on the wire, if it is one of the node's.
    #[must_use]
    pub const fn from_code(code: i32) -> Option<Self> {
        Some(match code {
            -32601 => Self::MethodNotFound,
            -32602 => Self::InvalidParams,
            -32603 => Self::Internal,
            -26 => Self::Rejected,
            -32001 => Self::Busy,
            _ => return None,
        })
    }

    /// The code a failed call came back with: `None` when the call failed before the node answered (the
    /// connection, HTTP 401 for a wrong cookie, a timeout) or with a code the node does not use.
    #[must_use]
    pub fn of(error: &jsonrpsee::core::ClientError) -> Option<Self> {
        match error {
            jsonrpsee::core::ClientError::Call(object) => Self::from_code(object.code()),
            _ => None,
        }
    }

    /// An error object with this code.
    pub(crate) fn with(self, message: impl Into<String>) -> ErrorObjectOwned {
        ErrorObjectOwned::owned(self.code(), message.into(), None::<()>)
    }
}

impl From<ApiError> for ErrorObjectOwned {
    fn from(error: ApiError) -> Self {
        let code = match &error {
            ApiError::Rejected(_) => ErrorCode::Rejected,
            ApiError::Busy | ApiError::LinksFull { .. } => ErrorCode::Busy,
            ApiError::Node(_) | ApiError::Chain(_) | ApiError::Store(_) => ErrorCode::Internal,
        };
        match error {
            // The reason alone, as Bitcoin Core words a rejection.
            ApiError::Rejected(reason) => code.with(reason),
            error => code.with(error.to_string()),
        }
    }
}

/// Which block [`CoinRpcClient::block`] asks for: on the wire, a height (a number) or an id (a string).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum BlockRef {
    /// The block at this height on the best chain.
    Height(u64),
    /// The block with this id, on the best chain or not.
    Id(BlockId),
}

/// The tip of the node's best chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tip {
    /// Its height.
    pub height: u64,
    /// Its id.
    pub id: BlockId,
}

/// A connected peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerView {
    /// Its identity.
    pub peer_id: PeerId,
    /// The address of its connection.
    pub addr: SocketAddr,
}

/// The confirmed balance of an address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    /// The address.
    pub address: PeerId,
    /// The balance in coins, as people read it (`"12.5"`).
    pub balance: String,
    /// The same in units, for scripts.
    pub units: u64,
}

/// A confirmed coin of an address that no mempool transaction spends yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Utxo {
    /// The transaction that created it.
    pub txid: TxId,
    /// Its output index there.
    pub index: u32,
    /// Its value in units.
    pub units: u64,
}

/// What became of a submitted transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubmitStatus {
    /// In the mempool, and relayed.
    Accepted,
    /// Held until its parents arrive (relayed or in a block): not yet checked against them, and
    /// relayed only then.
    Orphan,
}

/// The answer to [`CoinRpcClient::submit_transaction`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitResult {
    /// The transaction's id.
    pub txid: TxId,
    /// What became of it.
    pub status: SubmitStatus,
}

/// The node's JSON-RPC interface. Method names and JSON keys are stable: scripts rely on them.
#[rpc(server, client)]
pub trait CoinRpc {
    /// A summary of the node.
    #[method(name = "status")]
    async fn status(&self) -> RpcResult<Status>;

    /// The peers it is connected to.
    #[method(name = "peers")]
    async fn peers(&self) -> RpcResult<Vec<PeerView>>;

    /// The tip of its best chain.
    #[method(name = "tip")]
    async fn tip(&self) -> RpcResult<Tip>;

    /// A block by height (best chain) or id; `null` when the node has none.
    #[method(name = "block")]
    async fn block(&self, at: BlockRef) -> RpcResult<Option<BlockView>>;

    /// A transaction from the mempool or the last
    /// [`TX_SCAN_DEPTH`](crate::api::TX_SCAN_DEPTH) blocks; `null` when not found there.
    #[method(name = "transaction")]
    async fn transaction(&self, txid: TxId) -> RpcResult<Option<TxView>>;

    /// The confirmed balance of `address`.
    #[method(name = "balance")]
    async fn balance(&self, address: PeerId) -> RpcResult<Balance>;

    /// The coins of `address` a new transaction may spend.
    #[method(name = "utxos")]
    async fn utxos(&self, address: PeerId) -> RpcResult<Vec<Utxo>>;

    /// Submits a transaction (postcard, hex) and answers its id, as Bitcoin Core does: an orphan counts
    /// as sent. A refusal is [`ErrorCode::Rejected`]; [`ErrorCode::Busy`] asks to submit it again
    /// shortly.
    #[method(name = "send_raw_transaction")]
    async fn send_raw_transaction(&self, raw: String) -> RpcResult<TxId>;

    /// Submits a transaction (postcard, hex) and says what became of it. A refusal is
    /// [`ErrorCode::Rejected`], with the reason; [`ErrorCode::Busy`] asks to submit it again shortly.
    #[method(name = "submit_transaction")]
    async fn submit_transaction(&self, raw: String) -> RpcResult<SubmitResult>;
}

/// Decodes a transaction given as hex of its postcard encoding.
fn raw_transaction(raw: &str) -> RpcResult<Transfer> {
    let invalid = |what: &str, err: &dyn std::fmt::Display| {
        ErrorCode::InvalidParams.with(format!("invalid params: {what}: {err}"))
    };
    let bytes = hex::decode(raw.trim()).map_err(|err| invalid("not hex", &err))?;
    meshwork_wire::decode(&bytes).map_err(|err| invalid("not a transaction", &err))
}

#[async_trait]
impl CoinRpcServer for NodeApi {
    async fn status(&self) -> RpcResult<Status> {
        Ok(Self::status(self).await?)
    }

    async fn peers(&self) -> RpcResult<Vec<PeerView>> {
        let peers = self.node().peers().await.map_err(ApiError::from)?;
        Ok(peers
            .into_iter()
            .map(|(peer_id, addr)| PeerView { peer_id, addr })
            .collect())
    }

    async fn tip(&self) -> RpcResult<Tip> {
        let (height, id) = Self::tip(self).await?;
        Ok(Tip { height, id })
    }

    async fn block(&self, at: BlockRef) -> RpcResult<Option<BlockView>> {
        Ok(match at {
            BlockRef::Height(height) => self.block_at(height).await?,
            BlockRef::Id(id) => Self::block(self, id).await?,
        })
    }

    async fn transaction(&self, txid: TxId) -> RpcResult<Option<TxView>> {
        Ok(Self::transaction(self, txid).await?)
    }

    async fn balance(&self, address: PeerId) -> RpcResult<Balance> {
        let amount = Self::balance(self, address).await?;
        Ok(Balance {
            address,
            balance: amount.to_string(),
            units: amount.units(),
        })
    }

    async fn utxos(&self, address: PeerId) -> RpcResult<Vec<Utxo>> {
        let coins = self.spendable(address).await?;
        Ok(coins
            .into_iter()
            .map(|(point, amount)| Utxo {
                txid: point.txid,
                index: point.index,
                units: amount.units(),
            })
            .collect())
    }

    async fn send_raw_transaction(&self, raw: String) -> RpcResult<TxId> {
        Ok(self.submit_tx(raw_transaction(&raw)?).await?)
    }

    async fn submit_transaction(&self, raw: String) -> RpcResult<SubmitResult> {
        Ok(match self.submit(raw_transaction(&raw)?).await? {
            Submitted::Accepted(txid) => SubmitResult {
                txid,
                status: SubmitStatus::Accepted,
            },
            Submitted::Orphan(txid) => SubmitResult {
                txid,
                status: SubmitStatus::Orphan,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_whose_links_are_full_answers_busy_with_the_counts() {
        let error = ErrorObjectOwned::from(ApiError::LinksFull {
            full: 3,
            neighbours: 4,
        });
        assert_eq!(ErrorCode::from_code(error.code()), Some(ErrorCode::Busy));
        assert!(error.message().contains("3 of 4"), "{}", error.message());
        let rejected = ErrorObjectOwned::from(ApiError::Rejected("fee too low".into()));
        assert_eq!(rejected.code(), ErrorCode::Rejected.code());
    }
}
