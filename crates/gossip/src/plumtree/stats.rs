//! What a node's broadcast trees did: counters for experiments and metrics.

/// Counters for experiments.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TreeStats {
    /// Full messages pushed (eagerly or in answer to a graft).
    pub gossip_sent: u64,
    /// Full messages received.
    pub gossip_received: u64,
    /// Full messages received that were already known.
    pub duplicates: u64,
    /// Copies not pushed on an eager link because the neighbour had announced the message to us:
    /// it holds it (mostly a shortcut to it, which its announcement prompted, made the link eager).
    pub pushes_spared: u64,
    /// `IHave` messages sent.
    pub ihave_sent: u64,
    /// Announcements not sent because the neighbour had announced the message to us first: of the two
    /// ends of a lazy link, one announcing is enough.
    pub announcements_spared: u64,
    /// `Graft` messages sent.
    pub grafts_sent: u64,
    /// Missing messages whose first graft waited once more, for our parent on their tree to send them.
    pub grafts_deferred: u64,
    /// Messages we published on a lender's tree ([`Trees::Borrow`](crate::Trees::Borrow)).
    pub published_borrowed: u64,
    /// `Prune` messages sent.
    pub prunes_sent: u64,
    /// `Shortcut` messages sent by the optimisation of §3.8 (a tree link moved).
    pub shortcuts_sent: u64,
    /// Strikes against shortcuts' claims of fewer hops: a message of the origin came late while the
    /// new parent was on probation, and its claims are ignored for a while (one shortcut can be
    /// struck twice).
    pub shortcuts_failed: u64,
    /// Tree links to a parent we had waited for, pruned when a graft brought the message instead:
    /// its copy would have come as a duplicate (`receive.rs`).
    pub silent_parents_pruned: u64,
    /// `Shortcut` messages that asked a parent back: a shortcut that replaced it failed, or the
    /// neighbour it moved to left while on probation.
    pub shortcuts_undone: u64,
    /// Grafts answered with the message.
    pub grafts_answered: u64,
    /// Grafts not answered: repeats of one already answered, over the neighbour's answer budget, or for
    /// an id we never announced to it.
    pub grafts_refused: u64,
    /// Grafts of ours whose announcer neither sent the message nor declined within
    /// [`Config::graft_promise`](crate::Config::graft_promise): each cost the announcer
    /// [`Penalty::BrokenPromise`](crate::Penalty::BrokenPromise).
    pub broken_promises: u64,
    /// Grafts we declined (`Decline`): over the grafter's answer budget, the answer dropped by our
    /// send queue, or the message no longer held.
    pub declines_sent: u64,
    /// Declines sent again after a full send queue dropped them (each is counted once in
    /// `declines_sent`).
    pub declines_resent: u64,
    /// Grafts of ours an announcer declined.
    pub declines_received: u64,
}
