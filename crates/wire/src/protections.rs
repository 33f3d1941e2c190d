//! [`Protections`]: which peers are protected from the connection manager, and by whom.

use std::collections::BTreeMap;

use meshwork_identity::PeerId;

/// The peers that some of up to 64 holders protect ([`Output::Protect`](crate::Output::Protect)), with
/// a bit per holder: a peer is protected while any holder protects it. The holders are a composite's
/// children ([`Links`](crate::Links)) or the protocols of a node (its connection manager).
///
/// Ordered by peer id, so a composite that walks it produces the same outputs in every run (the
/// simulator replays a seed exactly).
#[derive(Clone, Debug, Default)]
pub struct Protections {
    holders: BTreeMap<PeerId, u64>,
}

impl Protections {
    /// The most holders; one numbered past them cannot protect a peer.
    pub const MAX_HOLDERS: usize = 64;

    /// Holder number `holder` protects `peer`, or stops protecting it. Returns whether that changed if
    /// the peer is protected at all: the first holder to protect it, or the last to stop.
    pub fn set(&mut self, peer: PeerId, holder: usize, protect: bool) -> bool {
        let Some(bit) = u32::try_from(holder).ok().and_then(|h| 1u64.checked_shl(h)) else {
            return false;
        };
        let before = self.holders.contains_key(&peer);
        if protect {
            *self.holders.entry(peer).or_default() |= bit;
        } else if let Some(bits) = self.holders.get_mut(&peer) {
            *bits &= !bit;
            if *bits == 0 {
                self.holders.remove(&peer);
            }
        }
        before != self.holders.contains_key(&peer)
    }

    /// Whether some holder protects `peer`.
    pub fn contains(&self, peer: &PeerId) -> bool {
        self.holders.contains_key(peer)
    }

    /// How many peers are protected.
    pub fn len(&self) -> usize {
        self.holders.len()
    }

    /// Whether no peer is protected.
    pub fn is_empty(&self) -> bool {
        self.holders.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use meshwork_identity::Keypair;

    use super::*;

    #[test]
    fn a_peer_is_protected_while_any_holder_protects_it() {
        let p = Keypair::from_seed([3; 32]).peer_id();
        let mut protections = Protections::default();
        assert!(protections.set(p, 0, true), "the first holder protects it");
        assert!(!protections.set(p, 63, true), "already protected");
        assert!(!protections.set(p, 0, false), "holder 63 still protects it");
        assert!(!protections.set(p, 5, false), "holder 5 never protected it");
        assert!(protections.contains(&p));
        assert!(protections.set(p, 63, false), "the last holder stops");
        assert!(!protections.contains(&p) && protections.is_empty());
        // A holder past the 64th cannot protect, so it cannot pin a peer forever either.
        assert!(!protections.set(p, 64, true));
        assert!(!protections.contains(&p));
    }
}
