//! Byte budgets for received frames, per peer and in total (ARCHITECTURE.md: every resource a peer can
//! make us hold is bounded in bytes).
//!
//! A frame's bytes are reserved from its 4-byte header, before the body buffer is allocated, and stay
//! reserved until whoever consumes the frame drops it. So a peer that announces large frames on many
//! streams, or whose frames wait for a busy application, holds at most its per-peer budget; all peers
//! together hold at most the global one. A frame past a budget waits for earlier ones to be released:
//! the stream is not read meanwhile, and QUIC's flow control pushes back on the sender.
//!
//! **Each connection's floor.** A few connections can hold the whole global budget: four from one IP,
//! each announcing two frames of the largest size on two streams and never sending their bodies,
//! hold 32 MiB for the body's deadline, and announce again. Every other peer's frames then waited on
//! the global budget, the honest peers' writers passed their own deadlines, and their connections
//! closed as stalled. So each connection also has a floor of its own, [`FRAME_FLOOR_BYTES`], outside the
//! global budget: a frame that small takes the floor when the shared budgets are short, whatever
//! other peers hold. Messages of every protocol but block sync fit it, so they keep flowing; a large
//! frame still waits for the shared budgets. What all peers hold is then at most the global budget
//! plus a floor per connection.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::Limits;

/// A connection's own floor (module docs): frames this small never wait on other peers' frames.
pub const FRAME_FLOOR_BYTES: u32 = 64 * 1024;

/// The budget a connection's streams reserve frame bytes from: its own and the transport's.
#[derive(Clone, Debug)]
pub(crate) struct FrameBudget {
    peer: Arc<Semaphore>,
    peer_bytes: u32,
    global: Arc<Semaphore>,
    global_bytes: u32,
    /// The connection's floor, outside the global budget.
    floor: Arc<Semaphore>,
    /// How long a frame's body may take once its header is read.
    pub(crate) deadline: Duration,
}

/// A budget size in semaphore permits (one per byte; tokio caps a single acquire at `u32::MAX`).
fn permits(bytes: u64) -> u32 {
    u32::try_from(bytes).unwrap_or(u32::MAX).clamp(1, u32::MAX >> 3)
}

/// The transport-wide budget every connection shares.
#[derive(Clone, Debug)]
pub(crate) struct GlobalBudget {
    global: Arc<Semaphore>,
    global_bytes: u32,
    peer_bytes: u32,
    deadline: Duration,
}

impl GlobalBudget {
    pub(crate) fn new(limits: &Limits, deadline: Duration) -> Self {
        let global_bytes = permits(limits.max_frame_bytes);
        Self {
            global: Arc::new(Semaphore::new(global_bytes as usize)),
            global_bytes,
            peer_bytes: permits(limits.max_frame_bytes_per_peer),
            deadline,
        }
    }

    /// A fresh per-peer budget for a new connection, drawing on this global one.
    pub(crate) fn for_connection(&self) -> FrameBudget {
        FrameBudget {
            peer: Arc::new(Semaphore::new(self.peer_bytes as usize)),
            peer_bytes: self.peer_bytes,
            global: self.global.clone(),
            global_bytes: self.global_bytes,
            floor: Arc::new(Semaphore::new(FRAME_FLOOR_BYTES as usize)),
            deadline: self.deadline,
        }
    }
}

/// Bytes reserved for one frame; released when dropped.
#[derive(Debug)]
pub struct Reserved {
    /// From the per-peer and the global budget,
    _shared: Option<(OwnedSemaphorePermit, OwnedSemaphorePermit)>,
    /// or from the connection's floor.
    _floor: Option<OwnedSemaphorePermit>,
}

impl FrameBudget {
    /// Reserves `len` bytes, waiting while the budgets are short: the per-peer and the global one,
    /// or for a frame of at most [`FRAME_FLOOR_BYTES`] the connection's floor, whichever has room first.
    /// A frame larger than a whole budget reserves all of it (it then arrives alone). `None` only if
    /// a budget was closed, which never happens.
    pub(crate) async fn reserve(&self, len: usize) -> Option<Reserved> {
        let len = u32::try_from(len).unwrap_or(u32::MAX);
        if len > FRAME_FLOOR_BYTES {
            return self.reserve_shared(len).await;
        }
        let floor = self.floor.clone().acquire_many_owned(len.max(1));
        // Whichever comes first; the other's wait (and a per-peer permit it holds) is dropped.
        tokio::select! {
            biased;
            shared = self.reserve_shared(len) => shared,
            floor = floor => Some(Reserved {
                _shared: None,
                _floor: Some(floor.ok()?),
            }),
        }
    }

    /// Reserves `len` bytes from the per-peer and the global budget.
    async fn reserve_shared(&self, len: u32) -> Option<Reserved> {
        // Peer first: a peer waiting on its own budget must not hold global bytes meanwhile.
        let peer = self
            .peer
            .clone()
            .acquire_many_owned(len.clamp(1, self.peer_bytes))
            .await;
        let global = self
            .global
            .clone()
            .acquire_many_owned(len.clamp(1, self.global_bytes))
            .await;
        Some(Reserved {
            _shared: Some((peer.ok()?, global.ok()?)),
            _floor: None,
        })
    }
}
