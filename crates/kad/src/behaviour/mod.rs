//! The Kademlia [`meshwork_wire::Protocol`]: the routing table, lookups and the record store wired
//! together.

mod queries;
pub(crate) mod state;
mod timers;
pub(crate) mod types;
