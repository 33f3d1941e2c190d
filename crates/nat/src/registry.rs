//! The rendezvous's registry: who is registered under which namespace, bounded three ways.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::ops::Bound;
use std::time::Duration;

use meshwork_identity::PeerId;
use meshwork_wire::Instant;

use crate::message::{MAX_DISCOVERED, Namespace, Refusal, Registration};
use crate::prefix::prefix_of;

/// What a rendezvous holds at most, and for how long.
#[derive(Clone, Debug)]
pub struct RegistryLimits {
    /// Namespaces one peer may be registered under at once.
    pub namespaces_per_peer: usize,
    /// Registrations one namespace holds.
    pub registrations_per_namespace: usize,
    /// Registrations one namespace holds from one network (the prefix of the address a registration
    /// comes from: a /24, a /48; on loopback each peer counts alone). Identities cost nothing, so
    /// without it one host could fill a namespace with fresh ones and leave honest peers
    /// [`Refusal::NamespaceFull`]. A renewal from another network than the registration's counts
    /// there as a new registration.
    pub registrations_per_network: usize,
    /// Registrations in all.
    pub registrations: usize,
    /// The shortest TTL accepted.
    pub min_ttl: Duration,
    /// The longest TTL granted; longer requests are lowered to it.
    pub max_ttl: Duration,
}

impl Default for RegistryLimits {
    /// 8 namespaces per peer, 1,000 registrations per namespace (32 of them from one network) and
    /// 10,000 in all (about 2 MB), TTLs from 10 s to 2 h (libp2p's rendezvous spec uses 2 h as its
    /// default).
    fn default() -> Self {
        Self {
            namespaces_per_peer: 8,
            registrations_per_namespace: 1_000,
            registrations_per_network: 32,
            registrations: 10_000,
            min_ttl: Duration::from_secs(10),
            max_ttl: Duration::from_secs(2 * 60 * 60),
        }
    }
}

#[derive(Debug)]
struct Entry {
    addr: SocketAddr,
    expires: Instant,
}

/// How often a reached limit may make the registry purge every namespace.
const PURGE_EVERY: Duration = Duration::from_secs(1);

/// Registrations by namespace and peer, each with an expiry; expired ones are purged lazily when their
/// namespace is touched, a peer's own when it is at its namespace limit, and all at once when the
/// registry is full (at most once a second, and at the rendezvous's sweep), so they hold no slot a
/// live registration needs for long.
#[derive(Debug, Default)]
pub struct Registry {
    limits: RegistryLimits,
    namespaces: BTreeMap<Namespace, BTreeMap<PeerId, Entry>>,
    /// The namespaces each peer is registered under (at most
    /// [`RegistryLimits::namespaces_per_peer`]): a peer at its limit has its own expired registrations
    /// purged, and a closed connection removes its registrations, without walking every namespace.
    per_peer: HashMap<PeerId, BTreeSet<Namespace>>,
    total: usize,
    /// When a full registry last made us purge every namespace.
    last_purge: Option<Instant>,
}

impl Registry {
    /// An empty registry within `limits`.
    pub fn new(limits: RegistryLimits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }

    /// Registers (or renews) `peer` at `addr` under `namespace`; returns the TTL granted.
    pub fn register(
        &mut self,
        now: Instant,
        peer: PeerId,
        addr: SocketAddr,
        namespace: Namespace,
        ttl: Duration,
    ) -> Result<Duration, Refusal> {
        if ttl < self.limits.min_ttl {
            return Err(Refusal::InvalidTtl);
        }
        let ttl = ttl.min(self.limits.max_ttl);
        let expires = now.checked_add(ttl).unwrap_or(Instant::MAX);
        self.purge_namespace(now, &namespace);
        let held = self.namespaces.get(&namespace).and_then(|peers| peers.get(&peer));
        let renewal = held.is_some();
        // A renewal from another network counts there as a new registration would: otherwise a
        // peer registered elsewhere could move in past that network's share.
        let moved = held.is_some_and(|entry| prefix_of(entry.addr.ip()) != prefix_of(addr.ip()));
        if moved && self.held_by_network(&namespace, addr) >= self.limits.registrations_per_network {
            return Err(Refusal::NamespaceFull);
        }
        if !renewal {
            if self.namespaces_of(&peer) >= self.limits.namespaces_per_peer {
                self.purge_peer(now, &peer);
                if self.namespaces_of(&peer) >= self.limits.namespaces_per_peer {
                    return Err(Refusal::TooManyNamespaces);
                }
            }
            let in_namespace = self.namespaces.get(&namespace).map_or(0, BTreeMap::len);
            if in_namespace >= self.limits.registrations_per_namespace
                || self.held_by_network(&namespace, addr) >= self.limits.registrations_per_network
            {
                return Err(Refusal::NamespaceFull);
            }
            if self.total >= self.limits.registrations {
                self.purge_now_and_then(now);
                if self.total >= self.limits.registrations {
                    return Err(Refusal::RegistryFull);
                }
            }
            self.per_peer.entry(peer).or_default().insert(namespace.clone());
            self.total += 1;
        }
        self.namespaces
            .entry(namespace)
            .or_default()
            .insert(peer, Entry { addr, expires });
        Ok(ttl)
    }

    /// Removes `peer`'s registration under `namespace`, if any.
    pub fn unregister(&mut self, peer: &PeerId, namespace: &Namespace) {
        let Some(peers) = self.namespaces.get_mut(namespace) else {
            return;
        };
        let removed = peers.remove(peer).is_some();
        if peers.is_empty() {
            self.namespaces.remove(namespace);
        }
        if removed {
            self.forget(peer, namespace);
        }
    }

    /// Removes every registration of `peer`: its connection closed, so the address it registered (that
    /// connection's mapping) is stale and no punch to it can be coordinated. A registration that
    /// outlived its connection let one host fill a namespace, or the registry, with identities it
    /// connected once each.
    pub fn remove_peer(&mut self, peer: &PeerId) {
        for namespace in self.per_peer.get(peer).cloned().unwrap_or_default() {
            self.unregister(peer, &namespace);
        }
    }

    /// Up to `limit` (at most [`MAX_DISCOVERED`]) live registrations under `namespace` in peer-id
    /// order after `after`, leaving out `asker`; and whether more follow.
    pub fn discover(
        &mut self,
        now: Instant,
        namespace: &Namespace,
        asker: &PeerId,
        after: Option<PeerId>,
        limit: usize,
    ) -> (Vec<Registration>, bool) {
        self.purge_namespace(now, namespace);
        let Some(peers) = self.namespaces.get(namespace) else {
            return (Vec::new(), false);
        };
        let limit = limit.min(MAX_DISCOVERED);
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut found = peers
            .range((start, Bound::Unbounded))
            .filter(|(peer, _)| *peer != asker)
            .map(|(peer, entry)| Registration {
                peer: *peer,
                addr: entry.addr,
                ttl_secs: secs(entry.expires.saturating_duration_since(now)),
            });
        let page: Vec<_> = found.by_ref().take(limit).collect();
        let more = found.next().is_some();
        (page, more)
    }

    /// Whether `peer` holds a registration (an expired one not yet purged included).
    pub fn holds(&self, peer: &PeerId) -> bool {
        self.per_peer.contains_key(peer)
    }

    /// How many registrations are held (expired ones not yet purged included).
    pub fn len(&self) -> usize {
        self.total
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    fn purge_namespace(&mut self, now: Instant, namespace: &Namespace) {
        let Some(peers) = self.namespaces.get_mut(namespace) else {
            return;
        };
        let expired: Vec<PeerId> = peers
            .iter()
            .filter(|(_, entry)| entry.expires <= now)
            .map(|(peer, _)| *peer)
            .collect();
        for peer in &expired {
            peers.remove(peer);
        }
        if peers.is_empty() {
            self.namespaces.remove(namespace);
        }
        for peer in &expired {
            self.forget(peer, namespace);
        }
    }

    /// How many registrations under `namespace` come from `addr`'s network (none counted on
    /// loopback, where every node of a devnet shares one address). A walk of the namespace, at most
    /// [`RegistryLimits::registrations_per_namespace`] entries, for a new registration only.
    fn held_by_network(&self, namespace: &Namespace, addr: SocketAddr) -> usize {
        let Some(network) = prefix_of(addr.ip()) else {
            return 0;
        };
        self.namespaces.get(namespace).map_or(0, |peers| {
            peers
                .values()
                .filter(|entry| prefix_of(entry.addr.ip()) == Some(network))
                .count()
        })
    }

    /// How many namespaces `peer` is registered under (expired registrations not yet purged included).
    fn namespaces_of(&self, peer: &PeerId) -> usize {
        self.per_peer.get(peer).map_or(0, BTreeSet::len)
    }

    /// Purges `peer`'s expired registrations: at most [`RegistryLimits::namespaces_per_peer`] look-ups,
    /// so a peer at its limit whose registrations lapsed is never refused for them.
    fn purge_peer(&mut self, now: Instant, peer: &PeerId) {
        let namespaces = self.per_peer.get(peer).cloned().unwrap_or_default();
        for namespace in namespaces {
            let expired = self
                .namespaces
                .get(&namespace)
                .and_then(|peers| peers.get(peer))
                .is_some_and(|entry| entry.expires <= now);
            if expired {
                self.unregister(peer, &namespace);
            }
        }
    }

    /// Purges every expired registration when the registry is full, at most once a second: a full
    /// registry made every `Register` walk every registration.
    fn purge_now_and_then(&mut self, now: Instant) {
        if self
            .last_purge
            .is_none_or(|last| now.saturating_duration_since(last) >= PURGE_EVERY)
        {
            self.last_purge = Some(now);
            self.expire(now);
        }
    }

    /// Purges every expired registration.
    pub fn expire(&mut self, now: Instant) {
        let namespaces: Vec<Namespace> = self.namespaces.keys().cloned().collect();
        for namespace in &namespaces {
            self.purge_namespace(now, namespace);
        }
    }

    /// Counts out `peer`'s registration under `namespace`, just removed.
    fn forget(&mut self, peer: &PeerId, namespace: &Namespace) {
        self.total -= 1;
        if let Some(namespaces) = self.per_peer.get_mut(peer) {
            namespaces.remove(namespace);
            if namespaces.is_empty() {
                self.per_peer.remove(peer);
            }
        }
    }
}

/// Whole seconds, saturating at `u32::MAX`.
pub(crate) fn secs(duration: Duration) -> u32 {
    u32::try_from(duration.as_secs()).unwrap_or(u32::MAX)
}
