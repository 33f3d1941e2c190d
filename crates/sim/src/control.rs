//! Faults and topology changes: partitions, crashes, restarts, connections made by the experiment.

use meshwork_wire::Protocol;
use rand::Rng;

use crate::{Control, NodeId, Sim, SimError};

impl<P: Protocol> Sim<P> {
    pub(crate) fn control(&mut self, control: Control) -> Result<(), SimError> {
        match control {
            Control::Partition(groups) => {
                for hot in &mut self.hot {
                    hot.group = 0;
                }
                for (group, members) in (1u16..).zip(groups) {
                    for node in members {
                        let node = self.check(node)?;
                        self.hot[node as usize].group = group;
                    }
                }
                self.partitioned = true;
            }
            Control::Heal => {
                for hot in &mut self.hot {
                    hot.group = 0;
                }
                self.partitioned = false;
            }
            Control::Crash(node) => self.crash(self.check(node)?),
            Control::Restart(node) => self.restart(self.check(node)?)?,
            Control::Connect(a, b) => {
                let (a, b) = (self.check(a)?, self.check(b)?);
                if !self.hot[a as usize].up {
                    return Err(SimError::NodeDown(NodeId(a)));
                }
                if !self.hot[b as usize].up {
                    return Err(SimError::NodeDown(NodeId(b)));
                }
                if a != b && self.link(a, b) {
                    self.peer_up_now(a, b);
                    self.peer_up_now(b, a);
                }
            }
            Control::Disconnect(a, b) => {
                let (a, b) = (self.check(a)?, self.check(b)?);
                if self.unlink(a, b) {
                    self.peer_down_at(self.now, a, b);
                    self.peer_down_at(self.now, b, a);
                }
            }
        }
        Ok(())
    }

    fn crash(&mut self, node: u32) {
        let hot = &mut self.hot[node as usize];
        if !hot.up {
            return;
        }
        hot.up = false;
        hot.epoch += 1;
        self.unlinks += 1;
        let meta = &mut self.nodes[node as usize];
        meta.upload_free_at = 0;
        let links = std::mem::take(&mut meta.links);
        meta.uses = Vec::new();
        self.states[node as usize] = None;
        self.stats.crashes += 1;
        for peer in links {
            let meta = &mut self.nodes[peer as usize];
            if let Ok(at) = meta.links.binary_search(&node) {
                meta.links.remove(at);
                if at < meta.uses.len() {
                    meta.uses.remove(at);
                }
            }
            // The peer notices when the connection times out; one link latency is the optimistic case.
            let at = self.now.saturating_add(self.delay(node, peer));
            self.peer_down_at(at, peer, node);
        }
    }

    fn restart(&mut self, node: u32) -> Result<(), SimError> {
        if self.hot[node as usize].up {
            return Ok(());
        }
        let mut factory = self.restart.take().ok_or(SimError::NoRestartFactory)?;
        let incarnation = self.hot[node as usize].epoch;
        let keypair = self.keypair(node);
        let state = self.init_state(node, incarnation, &keypair, &mut factory);
        self.restart = Some(factory);
        self.states[node as usize] = Some(state);
        self.hot[node as usize].up = true;
        self.stats.restarts += 1;
        let n = self.nodes.len();
        let mut joined = 0;
        for _ in 0..self.rejoin_degree.saturating_mul(8) {
            if joined >= self.rejoin_degree {
                break;
            }
            let other = u32::try_from(self.rng.gen_range(0..n)).unwrap_or(0);
            if other != node
                && self.hot[other as usize].up
                && self.reachable(node, other)
                && self.link(node, other)
            {
                self.peer_up_now(node, other);
                self.peer_up_now(other, node);
                joined += 1;
            }
        }
        Ok(())
    }
}
