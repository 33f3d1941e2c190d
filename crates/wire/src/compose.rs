//! Composition (ARCHITECTURE.md): one protocol that owns several, and reacts to them in the same step.
//!
//! A **composite** is an ordinary [`Protocol`] whose state holds its children (gossip, sync, Kademlia,
//! ...) as fields. Its driver sees one protocol; the wire sees the children's own channels:
//!
//! - its message type is an enum with one variant per child, declared with
//!   [`wire_enum!`](crate::wire_enum), and its [`Protocol::channels`] lists the children's
//!   [`Channel`](crate::Channel)s in the same order, so every child keeps its [`ProtocolId`](crate::ProtocolId), message
//!   type and maximum size, and talks to standalone nodes of the same protocol;
//! - its timers are an enum with one variant per child;
//! - in `handle` it routes each input to the child it belongs to, then walks the child's outputs with
//!   [`Links::lift`]: sends and timers are wrapped into the parent's, and the child's **events come back
//!   to the parent at once**. When a child asks a question (gossip's "is this transaction valid?"), the
//!   parent computes the answer and hands it back to the child before `handle` returns. Nothing
//!   crosses a queue, so nothing can be dropped or answered late.
//!
//! [`Links`] also keeps the parent honest about connections, which its children share: a child that
//! disconnects a peer only *releases* it (the connection closes when every child has released it), and a
//! child that dials a peer already connected is told `PeerUp` at once ([`Lifted::PeerUp`]).
//!
//! This is simpler than its models: iroh-gossip's `proto/state.rs` maps its children's out-events the
//! same way but answers validation through the application's event loop; libp2p's composed behaviours
//! reach each other only through the swarm and `report_message_validation_result`; malachite's
//! `Effect`/`Resume` suspends the core to ask. Here a question is a function call.
//!
//! ## Example: a composite of two protocols
//!
//! A `Board` protocol receives notes and asks its parent whether to keep each one; a `Tally` protocol
//! counts kept notes. The composite answers `Board`'s question from `Tally`'s state in the same step.
//!
//! ```
//! use meshwork_wire::{Channel, Input, Instant, Lifted, Links, Output, PeerId, Protocol, ProtocolId};
//!
//! /// Child 1: forwards each note to the application for a verdict, keeps the accepted ones.
//! #[derive(Default)]
//! struct Board { kept: Vec<String> }
//! impl Protocol for Board {
//!     type Message = String;
//!     type Command = (String, bool); // the verdict on a note
//!     type Event = String;           // "should I keep this note?"
//!     type Timer = ();
//!     const ID: ProtocolId = ProtocolId::new("/example/board/1");
//!     const MAX_MESSAGE_SIZE: usize = 256;
//!     fn handle(&mut self, _: Instant, input: Input<Self>, out: &mut Vec<Output<Self>>) {
//!         match input {
//!             Input::Message { msg, .. } => out.push(Output::Emit(msg)),
//!             Input::Command((note, true)) => self.kept.push(note),
//!             _ => {}
//!         }
//!     }
//! }
//!
//! /// Child 2: counts notes per peer.
//! #[derive(Default)]
//! struct Tally { count: u32 }
//! impl Protocol for Tally {
//!     type Message = u32;
//!     type Command = ();
//!     type Event = ();
//!     type Timer = ();
//!     const ID: ProtocolId = ProtocolId::new("/example/tally/1");
//!     const MAX_MESSAGE_SIZE: usize = 8;
//!     fn handle(&mut self, _: Instant, input: Input<Self>, _: &mut Vec<Output<Self>>) {
//!         if let Input::Command(()) = input { self.count += 1 }
//!     }
//! }
//!
//! meshwork_wire::wire_enum! {
//!     /// The composite's messages: each child's, on its own channel.
//!     enum NoteMessage { Board(String), Tally(u32) }
//! }
//!
//! /// The composite: keeps at most three notes, decided in the step the note arrives.
//! struct Notes { board: Board, tally: Tally, links: Links }
//! impl Protocol for Notes {
//!     type Message = NoteMessage;
//!     type Command = ();
//!     type Event = ();
//!     type Timer = ();
//!     const ID: ProtocolId = ProtocolId::new("/example/notes/1");
//!     const MAX_MESSAGE_SIZE: usize = 256;
//!     fn channels() -> Vec<Channel> { vec![Channel::of::<Board>(), Channel::of::<Tally>()] }
//!     fn handle(&mut self, now: Instant, input: Input<Self>, out: &mut Vec<Output<Self>>) {
//!         let Input::Message { from, msg: NoteMessage::Board(note) } = input else { return };
//!         let mut child = Vec::new();
//!         self.board.handle(now, Input::Message { from, msg: note }, &mut child);
//!         for output in child {
//!             // Sends and timers become the parent's; the event comes back here, now.
//!             if let Lifted::Event(note) = self.links.lift(0, output, NoteMessage::Board, |()| (), out) {
//!                 let keep = self.tally.count < 3;
//!                 if keep { self.tally.handle(now, Input::Command(()), &mut Vec::new()) }
//!                 self.board.handle(now, Input::Command((note, keep)), &mut Vec::new());
//!             }
//!         }
//!     }
//! }
//!
//! let mut notes = Notes { board: Board::default(), tally: Tally::default(), links: Links::new(2) };
//! let peer = meshwork_identity::Keypair::from_seed([7; 32]).peer_id();
//! for i in 0..5 {
//!     let msg = NoteMessage::Board(format!("note {i}"));
//!     notes.handle(Instant::ZERO, Input::Message { from: peer, msg }, &mut Vec::new());
//! }
//! assert_eq!(notes.board.kept, ["note 0", "note 1", "note 2"]);
//! assert_eq!(Notes::channels()[1].id.as_str(), "/example/tally/1");
//! ```

use std::collections::BTreeMap;

use crate::{Output, PeerId, Protections, Protocol};

/// What [`Links::lift`] leaves for the parent to do with one child output.
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a child's event or PeerUp must be handled by the parent"]
pub enum Lifted<E> {
    /// Nothing: the output became one of the parent's (or needed none).
    Done,
    /// The child told its parent something: handle it now (answer a question by handing the child a
    /// command before `handle` returns).
    Event(E),
    /// The child dialled a peer that is already connected: hand the child `Input::PeerUp(peer)` now,
    /// as a driver would after a dial (it may have released the peer, or be waiting to send to it).
    PeerUp(PeerId),
    /// Every child has released the peer, and the parent's `Disconnect` is pushed: hand every child
    /// `Input::PeerDown(peer)` now (a driver need not report a disconnect its protocol asked for).
    Closed(PeerId),
}

/// The peers a composite is connected to, and which of its children have released each.
///
/// Children share the composite's connections. A child's `Disconnect` releases the peer for that child
/// only; the composite asks its driver to disconnect when every child has released it. A released child
/// is engaged again when it dials the peer, or when the peer sends it a message ([`Links::engage`]).
/// The composite protects a peer ([`Output::Protect`]) while at least one child protects it.
#[derive(Clone, Debug, Default)]
pub struct Links {
    children: usize,
    /// Connected peers, each with a bit set per child that released it. Ordered, so that a parent that
    /// walks its peers produces the same outputs in every run (the simulator replays a seed exactly).
    peers: BTreeMap<PeerId, u64>,
    /// Peers some child protects ([`Output::Protect`]), connected or not: the composite protects a peer
    /// while any child does.
    protected: Protections,
}

impl Links {
    /// The most children a composite may have.
    pub const MAX_CHILDREN: usize = 64;

    /// Links for a composite of `children` children (at most [`Links::MAX_CHILDREN`]; more are clamped,
    /// which only means children past the 64th never count as having released a peer).
    pub fn new(children: usize) -> Self {
        Self {
            children: children.min(Self::MAX_CHILDREN),
            peers: BTreeMap::new(),
            protected: Protections::default(),
        }
    }

    fn all_released(&self) -> u64 {
        if self.children >= 64 {
            u64::MAX
        } else {
            (1u64 << self.children) - 1
        }
    }

    fn bit(child: usize) -> u64 {
        1u64.checked_shl(child as u32).unwrap_or(0)
    }

    /// The driver reported `PeerUp`: true if the peer is new (tell every child).
    pub fn up(&mut self, peer: PeerId) -> bool {
        // A repeated PeerUp is not news, and must not make children that released the peer hold it.
        match self.peers.entry(peer) {
            std::collections::btree_map::Entry::Occupied(_) => false,
            std::collections::btree_map::Entry::Vacant(entry) => {
                entry.insert(0);
                true
            }
        }
    }

    /// The driver reported `PeerDown`: true if the peer was connected (tell every child).
    pub fn down(&mut self, peer: &PeerId) -> bool {
        self.peers.remove(peer).is_some()
    }

    /// Whether the composite is connected to `peer`.
    pub fn is_up(&self, peer: &PeerId) -> bool {
        self.peers.contains_key(peer)
    }

    /// Whether `child` holds the connection to `peer` (connected and not released by it).
    pub fn holds(&self, peer: &PeerId, child: usize) -> bool {
        self.peers
            .get(peer)
            .is_some_and(|released| released & Self::bit(child) == 0)
    }

    /// The connected peers, in the order of their ids.
    pub fn peers(&self) -> impl Iterator<Item = &PeerId> {
        self.peers.keys()
    }

    /// Whether some child protects `peer` ([`Output::Protect`]).
    pub fn is_protected(&self, peer: &PeerId) -> bool {
        self.protected.contains(peer)
    }

    /// How many peers are connected.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Whether no peer is connected.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }

    /// A message for `child` arrived from `peer`: true if `child` had released the peer, so it must be
    /// handed `PeerUp` before the message (the peer opened the child's stream again).
    pub fn engage(&mut self, peer: &PeerId, child: usize) -> bool {
        match self.peers.get_mut(peer) {
            Some(released) if *released & Self::bit(child) != 0 => {
                *released &= !Self::bit(child);
                true
            }
            _ => false,
        }
    }

    /// Turns one output of child number `child` into the parent's: sends and timers are wrapped with
    /// `message` and `timer` and pushed onto `out`; dials and disconnects go through the shared
    /// connections (see [`Links`]); an event is handed back ([`Lifted::Event`]).
    pub fn lift<C: Protocol, P: Protocol>(
        &mut self,
        child: usize,
        output: Output<C>,
        message: impl FnOnce(C::Message) -> P::Message,
        timer: impl FnOnce(C::Timer) -> P::Timer,
        out: &mut Vec<Output<P>>,
    ) -> Lifted<C::Event> {
        match output {
            Output::Send { to, msg } => out.push(Output::Send {
                to,
                msg: message(msg),
            }),
            Output::Emit(event) => return Lifted::Event(event),
            Output::Schedule { after, timer: t } => out.push(Output::Schedule {
                after,
                timer: timer(t),
            }),
            Output::Dial(peer) => match self.peers.get_mut(&peer) {
                Some(released) => {
                    *released &= !Self::bit(child);
                    return Lifted::PeerUp(peer);
                }
                None => out.push(Output::Dial(peer)),
            },
            Output::Disconnect(peer) => {
                let all = self.all_released();
                if let Some(released) = self.peers.get_mut(&peer) {
                    *released |= Self::bit(child);
                    if *released & all == all {
                        // No child wants the peer: close. Drivers need not report our own disconnect
                        // back (the simulator does not), so forget the peer now.
                        self.peers.remove(&peer);
                        out.push(Output::Disconnect(peer));
                        return Lifted::Closed(peer);
                    }
                }
            }
            Output::Protect { peer, protect } => {
                // The parent's protection changes only when the first child protects the peer or
                // the last one stops.
                if self.protected.set(peer, child, protect) {
                    out.push(Output::Protect { peer, protect });
                }
            }
            Output::Dropped { peer, reason } => out.push(Output::Dropped { peer, reason }),
        }
        Lifted::Done
    }

    /// Runs `call` on child number `index` (hand it an input, or call one of its capability methods) and
    /// lifts every output it pushed ([`Links::lift`]). Returns what `call` returned, and what is left for
    /// the parent, in order: the child's events, and the `PeerUp`s and `Closed`s to deliver.
    pub fn drive<C: Protocol, P: Protocol, R>(
        &mut self,
        index: usize,
        child: &mut C,
        call: impl FnOnce(&mut C, &mut Vec<Output<C>>) -> R,
        message: impl Fn(C::Message) -> P::Message,
        timer: impl Fn(C::Timer) -> P::Timer,
        out: &mut Vec<Output<P>>,
    ) -> (R, Vec<Lifted<C::Event>>) {
        let mut outputs = Vec::new();
        let answer = call(child, &mut outputs);
        let left = outputs
            .into_iter()
            .map(|output| self.lift(index, output, &message, &timer, out))
            .filter(|lifted| !matches!(lifted, Lifted::Done))
            .collect();
        (answer, left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Input, Instant, ProtocolId};

    struct Leaf;
    impl Protocol for Leaf {
        type Message = u8;
        type Command = ();
        type Event = ();
        type Timer = u8;
        const ID: ProtocolId = ProtocolId::new("/test/leaf/1");
        const MAX_MESSAGE_SIZE: usize = 4;
        fn handle(&mut self, _: Instant, _: Input<Self>, _: &mut Vec<Output<Self>>) {}
    }
    struct Parent;
    impl Protocol for Parent {
        type Message = u8;
        type Command = ();
        type Event = ();
        type Timer = u8;
        const ID: ProtocolId = ProtocolId::new("/test/parent/1");
        const MAX_MESSAGE_SIZE: usize = 4;
        fn handle(&mut self, _: Instant, _: Input<Self>, _: &mut Vec<Output<Self>>) {}
    }

    fn peer(n: u8) -> PeerId {
        meshwork_identity::Keypair::from_seed([n; 32]).peer_id()
    }

    fn lift(links: &mut Links, child: usize, output: Output<Leaf>) -> (Lifted<()>, Vec<Output<Parent>>) {
        let mut out = Vec::new();
        let lifted = links.lift::<Leaf, Parent>(child, output, |m| m + 100, |t| t + 100, &mut out);
        (lifted, out)
    }

    #[test]
    fn the_connection_closes_only_when_every_child_released_it() {
        let mut links = Links::new(3);
        let p = peer(1);
        assert!(links.up(p));
        assert!(!links.up(p), "a second PeerUp is not news");
        let _ = lift(&mut links, 1, Output::Disconnect(p));
        links.up(p);
        assert!(!links.holds(&p, 1), "a repeated PeerUp does not undo a release");
        assert!(links.engage(&p, 1));
        for child in 0..2 {
            let (lifted, out) = lift(&mut links, child, Output::Disconnect(p));
            assert_eq!(lifted, Lifted::Done);
            assert!(
                out.is_empty(),
                "child {child} alone must not close a shared connection"
            );
            assert!(!links.holds(&p, child) && links.is_up(&p));
        }
        assert!(links.holds(&p, 2));
        let (lifted, out) = lift(&mut links, 2, Output::Disconnect(p));
        assert_eq!(
            lifted,
            Lifted::Closed(p),
            "the children must be told the peer is gone"
        );
        assert!(matches!(out.as_slice(), [Output::Disconnect(q)] if *q == p));
        assert!(!links.is_up(&p));
    }

    #[test]
    fn a_dial_of_a_connected_peer_is_answered_with_peer_up_to_the_child() {
        let mut links = Links::new(2);
        let p = peer(2);
        // Not connected: the dial goes to the driver.
        let (lifted, out) = lift(&mut links, 0, Output::Dial(p));
        assert_eq!(lifted, Lifted::Done);
        assert!(matches!(out.as_slice(), [Output::Dial(q)] if *q == p));
        links.up(p);
        // Connected and held: the child is told it is up (it may wait to send), no dial.
        let (lifted, out) = lift(&mut links, 0, Output::Dial(p));
        assert_eq!((lifted, out.len()), (Lifted::PeerUp(p), 0));
        // Released, then dialled again: PeerUp to that child, no dial.
        let _ = lift(&mut links, 0, Output::Disconnect(p));
        let (lifted, out) = lift(&mut links, 0, Output::Dial(p));
        assert_eq!(lifted, Lifted::PeerUp(p));
        assert!(out.is_empty() && links.holds(&p, 0));
    }

    #[test]
    fn a_message_engages_a_released_child_again() {
        let mut links = Links::new(2);
        let p = peer(3);
        links.up(p);
        assert!(
            !links.engage(&p, 1),
            "a child that holds the peer needs no PeerUp"
        );
        let _ = lift(&mut links, 1, Output::Disconnect(p));
        assert!(links.engage(&p, 1));
        assert!(links.holds(&p, 1));
        assert!(!links.engage(&peer(4), 1), "unknown peers are not engaged");
    }

    #[test]
    fn sends_and_timers_are_wrapped_and_events_come_back() {
        let mut links = Links::new(1);
        let p = peer(5);
        let (_, out) = lift(&mut links, 0, Output::Send { to: p, msg: 1 });
        assert!(matches!(out.as_slice(), [Output::Send { msg: 101, .. }]));
        let after = std::time::Duration::from_millis(5);
        let (_, out) = lift(&mut links, 0, Output::Schedule { after, timer: 2 });
        assert!(matches!(out.as_slice(), [Output::Schedule { timer: 102, .. }]));
        let (lifted, out) = lift(&mut links, 0, Output::Emit(()));
        assert_eq!((lifted, out.len()), (Lifted::Event(()), 0));
    }

    #[test]
    fn the_composite_protects_a_peer_while_any_child_does() {
        let mut links = Links::new(3);
        let p = peer(5);
        let protect = |protect| Output::Protect { peer: p, protect };
        let is_protect = |out: &[Output<Parent>], want: bool| matches!(out, [Output::Protect { peer: q, protect }] if *q == p && *protect == want);
        // Not connected yet: protection still passes (a request may wait for its dial).
        let (_, out) = lift(&mut links, 0, protect(true));
        assert!(is_protect(&out, true) && links.is_protected(&p));
        let (_, out) = lift(&mut links, 2, protect(true));
        assert!(out.is_empty(), "already protected by child 0");
        let (_, out) = lift(&mut links, 0, protect(false));
        assert!(out.is_empty(), "child 2 still protects the peer");
        let (_, out) = lift(&mut links, 1, protect(false));
        assert!(out.is_empty(), "child 1 never protected it");
        let (_, out) = lift(&mut links, 2, protect(false));
        assert!(is_protect(&out, false) && !links.is_protected(&p));
    }
}
