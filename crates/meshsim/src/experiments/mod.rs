//! One module per experiment (see the crate docs for how to add one).

pub(crate) mod bft;
pub(crate) mod bft_net;
pub(crate) mod coin;
pub(crate) mod coin_net;
pub(crate) mod coin_report;
pub(crate) mod flood;
pub(crate) mod gossip;
pub(crate) mod gossip_load;
pub(crate) mod gossip_net;
pub(crate) mod gossip_spam;
pub(crate) mod gossip_spam_node;
pub(crate) mod kad_churn;
pub(crate) mod kad_lookup;
mod kad_measure;
pub(crate) mod kad_net;
pub(crate) mod kad_node;
pub(crate) mod pow;
pub(crate) mod pow_net;
pub(crate) mod pow_partition;
pub(crate) mod sybil_gossip;
pub(crate) mod sybil_gossip_node;
pub(crate) mod sybil_kad;
pub(crate) mod sync;
