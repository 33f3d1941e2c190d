//! What crosses [`CoinApp`](crate::CoinApp)'s boundary: its wire messages (its children's, on their own
//! channels), its timers, the commands it takes and the events it emits.

use meshwork_consensus::{bft, sync};
use meshwork_gossip::{Gossip, TopicId};
use meshwork_identity::PeerId;
use meshwork_kad::{Address, Kademlia, PeerInfo};
use meshwork_ledger::{Block, MempoolError, Transfer, TxId};

meshwork_wire::wire_enum! {
    /// What a coin node sends and receives: each child's messages on the child's own channel
    /// (`/meshwork/gossip/4`, `/meshwork/sync/1`, `/meshwork/kad/2`, `/meshwork/simplex/1`), encoded as the
    /// child encodes them.
    pub enum CoinMessage {
        /// Transaction relay.
        Gossip(meshwork_gossip::Message),
        /// Headers-first sync and block relay.
        Sync(sync::Message),
        /// Peer discovery.
        Kad(meshwork_kad::Message),
        /// BFT consensus between validators (`/meshwork/simplex/1`), on chains that run it.
        Bft(bft::Message),
    }
}

/// The child number of each sub-protocol (its channel index, its bit in [`meshwork_wire::Links`]).
pub(crate) const GOSSIP: usize = 0;
pub(crate) const SYNC: usize = 1;
pub(crate) const KAD: usize = 2;
pub(crate) const BFT: usize = 3;
pub(crate) const CHILDREN: usize = 4;

/// A timer of the app or of one of its children.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CoinTimer {
    /// Gossip's.
    Gossip(<Gossip as meshwork_wire::Protocol>::Timer),
    /// Sync's.
    Sync(sync::Timer),
    /// Kademlia's.
    Kad(<Kademlia as meshwork_wire::Protocol>::Timer),
    /// The BFT engine's.
    Bft(bft::Timer),
    /// Top up connections, repair the overlay, re-bootstrap now and then.
    Discover,
    /// Publish again the local transactions still waiting in the mempool.
    Rebroadcast,
    /// Judge the relayed transactions gathered for one batch ([`AppConfig::validation_delay`]).
    ///
    /// [`AppConfig::validation_delay`]: crate::AppConfig::validation_delay
    Validate,
}

/// What the application (the node's wallet, miner, RPC) asks of [`CoinApp`](crate::CoinApp).
#[derive(Clone, Debug)]
pub enum CoinCommand {
    /// Join the network through these contacts (Kademlia bootstrap, gossip join).
    Join(Vec<PeerInfo>),
    /// A local transaction (wallet, RPC): into the mempool, published, rebroadcast until mined. Use
    /// [`CoinApp::submit_local_tx`](crate::CoinApp::submit_local_tx) to learn the outcome; unlike it,
    /// the command is never held back while the node's links are full (a refusal would be silent).
    SubmitTx(Transfer),
    /// A block from the local miner: connected and announced to sync peers.
    SubmitBlock(Block),
    /// The driver observed `peer` at `addr` (Kademlia counts observed addresses for its prefix limits).
    PeerAddress {
        /// The peer.
        peer: PeerId,
        /// Where its connection comes from.
        addr: Address,
    },
    /// The driver measured a round trip of `rtt` to `peer` (the node runtime's `on_round_trip` hook,
    /// from the QUIC handshake). Gossip learns its graft wait from it, and a node without a tree of its
    /// own borrows the tree of its nearest lender ([`meshwork_gossip::Trees::Borrow`]).
    PeerRoundTrip {
        /// The peer.
        peer: PeerId,
        /// The measured round trip.
        rtt: std::time::Duration,
    },
}

/// What [`CoinApp`](crate::CoinApp) tells the application.
#[derive(Debug)]
#[non_exhaustive]
pub enum CoinEvent {
    /// A transaction relayed by `from` entered the mempool (and is forwarded).
    TxAccepted {
        /// Its id.
        txid: TxId,
        /// The peer that relayed it.
        from: PeerId,
    },
    /// A relayed transaction was refused by the mempool.
    TxRejected {
        /// Its id.
        txid: TxId,
        /// The peer that relayed it.
        from: PeerId,
        /// Why.
        error: MempoolError,
    },
    /// Sync's news: tip changes, blocks accepted or rejected, peers faulted, store failures.
    Sync(sync::Event),
    /// Gossip's news about the overlay: neighbours up and down, bans, failed publications.
    Gossip(meshwork_gossip::Event),
    /// Kademlia's answers and news.
    Kad(meshwork_kad::Event),
    /// The BFT engine's news: views, notarized and final blocks, faults with their evidence.
    Bft(bft::Event),
    /// The chain refused what the BFT engine or a relayed certificate asked of it (a store failure, or
    /// a certificate that conflicts with the final block: more than a third of the validators faulty).
    Consensus(meshwork_consensus::ChainError),
    /// A finality certificate moved this node's final block (certified chains).
    Finalized {
        /// The final block.
        block: meshwork_ledger::BlockId,
        /// Its height.
        height: u64,
    },
}

/// The gossip topic of finality certificates on certified chains: a validator publishes the
/// certificate of each block it proposed once it is final, so that nodes outside the validator set
/// learn what is final.
pub fn final_topic() -> TopicId {
    TopicId::from_name("meshwork-coin/final/1")
}

/// The gossip topic of transactions (blocks travel by sync alone: one block relay path).
pub fn tx_topic() -> TopicId {
    TopicId::from_name("meshwork-coin/tx/1")
}
