//! The client's discoveries: a `Discover` sent to a rendezvous waits for its answer, within bounds.
//!
//! Each waits at most [`DISCOVER_TIMEOUT`], and ends at once when its rendezvous goes down; one waits
//! per rendezvous and namespace at a time, and [`MAX_DISCOVERING`] in all. Whatever ends without an
//! answer is reported ([`NatEvent::DiscoverFailed`]), so an application never waits on a discovery
//! that will not come. Before, one left waiting by a rendezvous that never answered, or that went
//! down, stayed forever, and after 64 of them every `Discover` was ignored without a word.

use std::time::Duration;

use meshwork_identity::PeerId;
use meshwork_wire::Output;

use crate::api::{NatEvent, NatTimer};
use crate::message::{Namespace, NatMessage};
use crate::protocol::Nat;

/// Discoveries waiting at once, at most.
pub(crate) const MAX_DISCOVERING: usize = 64;
/// How long a discovery waits for its answer.
pub(crate) const DISCOVER_TIMEOUT: Duration = Duration::from_secs(30);

impl Nat {
    /// Sends a `Discover` to `rendezvous`, or reports at once why no answer will come.
    pub(crate) fn discover(
        &mut self,
        rendezvous: PeerId,
        namespace: Namespace,
        (limit, after): (u16, Option<PeerId>),
        out: &mut Vec<Output<Self>>,
    ) {
        let key = (rendezvous, namespace);
        if !self.connected.contains_key(&rendezvous)
            || self.discovering.len() >= MAX_DISCOVERING
            || self.discovering.contains_key(&key)
        {
            let (rendezvous, namespace) = key;
            out.push(Output::Emit(NatEvent::DiscoverFailed {
                rendezvous,
                namespace,
            }));
            return;
        }
        self.generation += 1;
        let generation = self.generation;
        self.discovering.insert(key.clone(), generation);
        let (rendezvous, namespace) = key;
        out.push(Output::Schedule {
            after: DISCOVER_TIMEOUT,
            timer: NatTimer::DiscoverDeadline {
                rendezvous,
                namespace: namespace.clone(),
                generation,
            },
        });
        out.push(Output::Send {
            to: rendezvous,
            msg: NatMessage::Discover {
                namespace,
                limit,
                after,
            },
        });
    }

    /// The answer to a discovery of ours from `rendezvous` under `namespace`: whether one was waiting
    /// (it ends now).
    pub(crate) fn discovered(&mut self, rendezvous: PeerId, namespace: &Namespace) -> bool {
        self.discovering
            .remove(&(rendezvous, namespace.clone()))
            .is_some()
    }

    /// A discovery's deadline: if it still waits, it failed.
    pub(crate) fn discover_deadline(
        &mut self,
        rendezvous: PeerId,
        namespace: Namespace,
        generation: u64,
        out: &mut Vec<Output<Self>>,
    ) {
        let key = (rendezvous, namespace);
        if self.discovering.get(&key) == Some(&generation) {
            self.discovering.remove(&key);
            let (rendezvous, namespace) = key;
            out.push(Output::Emit(NatEvent::DiscoverFailed {
                rendezvous,
                namespace,
            }));
        }
    }

    /// `rendezvous` went down: its discoveries fail now.
    pub(crate) fn discoveries_down(&mut self, rendezvous: &PeerId, out: &mut Vec<Output<Self>>) {
        let failed: Vec<(PeerId, Namespace)> = self
            .discovering
            .keys()
            .filter(|(r, _)| r == rendezvous)
            .cloned()
            .collect();
        for key in failed {
            self.discovering.remove(&key);
            let (rendezvous, namespace) = key;
            out.push(Output::Emit(NatEvent::DiscoverFailed {
                rendezvous,
                namespace,
            }));
        }
    }
}
