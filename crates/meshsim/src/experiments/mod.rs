//! One module per experiment (see the crate docs for how to add one).

pub(crate) mod flood;
pub(crate) mod gossip;
