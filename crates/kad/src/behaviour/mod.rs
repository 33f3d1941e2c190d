//! The Kademlia [`meshwork_wire::Protocol`]: the routing table, lookups and the record store wired
//! together.

pub(crate) mod anchors;
mod answers;
mod connections;
mod deadlines;
mod find_peer;
mod inbound;
mod join;
mod queries;
pub(crate) mod state;
pub(crate) mod stats;
mod timers;
pub(crate) mod types;
mod values;
