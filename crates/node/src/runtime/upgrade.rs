//! Upgrading a relayed connection: when a direct connection to a peer comes up beside one through a
//! relay circuit (a hole punch got through), the direct one is preferred at once and the relayed one
//! retires after [`UPGRADE_GRACE`]; the protocols keep the peer throughout.

use std::net::SocketAddr;

use meshwork_identity::PeerId;
use meshwork_transport::{CloseReason, Connection, Transport};
use meshwork_wire::relayed::is_relayed;
use tokio::time::Instant as TokioInstant;
use tracing::debug;

use super::peers::preferred;
use super::{Inbox, Runtime, UPGRADE_GRACE};
use crate::connection::{self, Retire};

impl<T: Transport> Runtime<T> {
    /// Whether `peer`'s connections all run through relay circuits and either take messages or
    /// hold what is sent for the next connection: a direct connection now is an upgrade, seamless for
    /// the protocols.
    pub(super) fn relayed_without_loss(&self, peer: &PeerId) -> bool {
        self.peers.get(peer).is_some_and(|conns| {
            !conns.is_empty()
                && conns
                    .iter()
                    .all(|c| is_relayed(&c.conn.remote_addr()) && (c.takes_messages() || c.reopens()))
        })
    }

    /// Whether `peer` is connected, and only through relay circuits: a direct connection would be
    /// an upgrade.
    pub(super) fn only_relayed(&self, peer: &PeerId) -> bool {
        let mut taking = self
            .peers
            .get(peer)
            .into_iter()
            .flatten()
            .filter(|c| c.takes_messages())
            .peekable();
        taking.peek().is_some() && taking.all(|c| is_relayed(&c.conn.remote_addr()))
    }

    /// Retires, gracefully and on both sides, the relayed connections that a direct one replaced at
    /// least [`UPGRADE_GRACE`] ago.
    pub(super) fn retire_upgraded(&mut self, now: TokioInstant) {
        let due: Vec<PeerId> = self
            .upgraded
            .iter()
            .filter(|(_, since)| now.saturating_duration_since(**since) >= UPGRADE_GRACE)
            .map(|(peer, _)| *peer)
            .collect();
        let deadline = self.config.drain_deadline;
        for peer in due {
            self.upgraded.remove(&peer);
            let Some(conns) = self.peers.get_mut(&peer) else {
                continue;
            };
            let direct = conns
                .iter()
                .any(|c| c.takes_messages() && !is_relayed(&c.conn.remote_addr()));
            for entry in conns.iter_mut() {
                if direct && entry.takes_messages() && is_relayed(&entry.conn.remote_addr()) {
                    debug!(%peer, conn = entry.id, "retiring a relayed connection a direct one replaced");
                    connection::retire(
                        entry,
                        CloseReason::Duplicate,
                        Retire::BothWays,
                        deadline,
                        self.metrics.undrained(),
                    );
                }
            }
        }
    }

    /// Dials `peer` directly at `addr` if its only connections run over relay circuits (a hole punch
    /// asked, or the application gave a direct address): should the dial get through, the direct
    /// connection replaces the relayed ones ([`Runtime::on_connection`]); should it fail, the relayed
    /// connection carries on, and nobody hears `PeerDown`. The dial goes ahead beside any other dial
    /// to the peer (a punch's is time-critical), but not beside another upgrade dial to the same
    /// address: QUIC repeats its first flight within one dial, so a second would add only packets.
    pub(super) fn upgrade(&mut self, peer: PeerId, addr: Option<SocketAddr>) {
        let Some(addr) = addr.filter(|addr| !is_relayed(addr)) else {
            return;
        };
        if !self.only_relayed(&peer) || !self.upgrading.insert((peer, addr)) {
            return;
        }
        debug!(%peer, %addr, "dialling a relayed peer directly");
        self.dial_task(peer, addr, |peer, addr, failure| {
            Some(Inbox::UpgradeDialed { peer, addr, failure })
        });
    }

    /// An upgrade dial ended: another may go to that address.
    pub(super) fn on_upgrade_dialed(&mut self, peer: PeerId, addr: SocketAddr, failure: Option<String>) {
        self.upgrading.remove(&(peer, addr));
        if let Some(reason) = failure {
            debug!(%peer, %addr, %reason, "direct dial to a relayed peer failed; the relay carries on");
            self.metrics.dial_failed();
        }
    }

    /// The connection to `peer` that carries its messages now runs over a relay circuit again (the
    /// direct one closed before the relayed one retired): the protocols' hooks hear the relayed link,
    /// so a punch may upgrade it again.
    pub(super) fn after_close(&mut self, peer: PeerId, was_direct: bool) {
        let local = self.transport.peer_id();
        let Some(conns) = self.peers.get(&peer) else {
            return;
        };
        let Some(now_preferred) = preferred(local, peer, conns, &[]) else {
            return;
        };
        let addr = now_preferred.conn.remote_addr();
        if !was_direct || !is_relayed(&addr) {
            return;
        }
        let link = (addr, now_preferred.conn.stats().rtt);
        debug!(%peer, %addr, "the direct connection closed: the relayed one carries the peer again");
        let now = self.now();
        for slot in &mut self.slots {
            slot.link_changed(now, peer, link, &mut self.actions);
        }
    }
}
