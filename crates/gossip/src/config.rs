//! Tuning knobs, with the papers' defaults where the papers give them.

use std::time::Duration;

/// How a gossip node behaves. `Config::default()` follows the HyParView and Plumtree papers.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Active view size (the connections kept): 5 (HyParView: fanout + 1).
    pub active_view_capacity: usize,
    /// Passive view size (known peers kept in reserve): 30.
    pub passive_view_capacity: usize,
    /// Active random walk length of `ForwardJoin` and `Shuffle`: 6.
    pub active_random_walk_length: u8,
    /// At this many hops left, a `ForwardJoin` adds the joiner to the passive view: 3.
    pub passive_random_walk_length: u8,
    /// Time between two shuffles (which also refill a short active view).
    pub shuffle_interval: Duration,
    /// Active peers put in a shuffle.
    pub shuffle_active: usize,
    /// Passive peers put in a shuffle.
    pub shuffle_passive: usize,
    /// Lazy-push ids are batched and sent at this interval.
    pub ihave_interval: Duration,
    /// After an `IHave`, wait this long for the message before grafting.
    pub graft_timeout: Duration,
    /// After a graft, wait this long before grafting the next announcer.
    pub graft_retry: Duration,
    /// Plumtree's optimisation: when an `IHave` announces a message this many hops shorter than the copy
    /// that arrived on the tree, the announcer's link replaces the tree link.
    pub optimization_threshold: u16,
    /// A new neighbour is announced the messages accepted this recently (at most one `IHave`), so a node
    /// that was cut off catches up on what it missed.
    pub catch_up: Duration,
    /// Origins with a broadcast tree of their own kept at most (each origin has its own eager and lazy
    /// links); the least recently used is forgotten first and its next message forms its tree again.
    pub max_origins: usize,
    /// Messages kept in the seen cache (answering grafts, suppressing duplicates).
    pub seen_capacity: usize,
    /// How long a message stays in the seen cache.
    pub seen_ttl: Duration,
    /// Messages waiting for the application's verdict at most; more are ignored.
    pub max_pending_validations: usize,
    /// Missing messages tracked at most (ids announced by `IHave`, not yet received).
    pub max_missing: usize,
    /// Peer scoring and limits.
    pub score: ScoreConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            active_view_capacity: 5,
            passive_view_capacity: 30,
            active_random_walk_length: 6,
            passive_random_walk_length: 3,
            shuffle_interval: Duration::from_secs(10),
            shuffle_active: 3,
            shuffle_passive: 4,
            ihave_interval: Duration::from_millis(50),
            graft_timeout: Duration::from_millis(300),
            graft_retry: Duration::from_millis(150),
            optimization_threshold: 3,
            max_origins: 1024,
            catch_up: Duration::from_secs(10),
            seen_capacity: 4096,
            seen_ttl: Duration::from_secs(120),
            max_pending_validations: 1024,
            max_missing: 4096,
            score: ScoreConfig::default(),
        }
    }
}

/// Penalties, the ban threshold and the per-peer rate limit.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoreConfig {
    /// Penalty for a message with a bad signature (or over the topic's size).
    pub invalid_message: f64,
    /// Penalty for a message the application rejected.
    pub rejected_message: f64,
    /// Penalty for a graft that was not answered (a broken `IHave` promise).
    pub broken_promise: f64,
    /// Penalty for each message over the rate limit.
    pub flood: f64,
    /// A peer whose score falls to this or below is removed from the views and disconnected.
    pub ban_threshold: f64,
    /// Points a negative score recovers per second.
    pub recovery_per_sec: f64,
    /// Token bucket size: broadcast messages a peer may send in a burst.
    pub rate_burst: f64,
    /// Token bucket refill: broadcast messages per second a peer may send.
    pub rate_per_sec: f64,
    /// Banned peers remembered at most.
    pub max_banned: usize,
}

impl Default for ScoreConfig {
    fn default() -> Self {
        Self {
            invalid_message: 50.0,
            rejected_message: 20.0,
            broken_promise: 10.0,
            flood: 5.0,
            ban_threshold: -100.0,
            recovery_per_sec: 1.0,
            rate_burst: 500.0,
            rate_per_sec: 200.0,
            max_banned: 1024,
        }
    }
}
