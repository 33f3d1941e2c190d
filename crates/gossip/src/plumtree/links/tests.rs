use super::*;
use meshwork_identity::Keypair;

pub(super) fn peers(n: u8) -> Vec<PeerId> {
    (0..n).map(|i| Keypair::from_seed([i; 32]).peer_id()).collect()
}

/// Links in `mode` whose neighbours are all of `p` but the first (the origin of the tests).
fn linked(p: &[PeerId], mode: Trees) -> Links {
    let mut links = Links::new(16, mode);
    for &peer in &p[1..] {
        links.up(peer);
    }
    links
}

#[test]
fn a_departed_neighbours_slot_goes_to_the_last_with_its_bits() {
    let p = peers(5);
    let mut links = linked(&p, Trees::PerOrigin);
    // Origin p0: p2 and p4 lazy.
    links.make_lazy(p[0], p[2]);
    links.make_lazy(p[0], p[4]);
    links.down(p[1]);
    assert!(!links.contains(&p[1]));
    assert!(links.is_lazy(&p[0], &p[2]));
    assert!(
        links.is_lazy(&p[0], &p[4]),
        "p4 moved to p1's slot and stays lazy"
    );
    assert!(links.is_eager(&p[0], &p[3]));
    links.down(p[2]);
    links.down(p[4]);
    assert_eq!(links.origins(), 1, "no lazy link left, but the tree has formed");
    links.up(p[4]);
    assert!(
        links.is_lazy(&p[0], &p[4]),
        "a neighbour that joins a formed tree is lazy on it"
    );
}

#[test]
fn a_tree_relayed_with_every_link_eager_has_formed() {
    let p = peers(4);
    let mut links = Links::new(16, Trees::PerOrigin);
    links.up(p[1]);
    links.relaying(p[0], None, None);
    assert!(links.is_eager(&p[0], &p[1]));
    // After a crash the node refills its view: the new link must not carry p0's messages eagerly,
    // or the next one crosses it as a duplicate.
    links.up(p[2]);
    assert!(links.is_lazy(&p[0], &p[2]));
    assert!(
        links.is_eager(&p[3], &p[2]),
        "an origin never relayed here floods"
    );
    // A graft makes it eager, and the tree stays formed.
    links.make_eager(&p[0], &p[2]);
    links.up(p[3]);
    assert!(links.is_eager(&p[0], &p[2]) && links.is_lazy(&p[0], &p[3]));
}

#[test]
fn relaying_makes_the_copys_sender_the_parent_unless_its_link_is_lazy() {
    let p = peers(5);
    let mut links = linked(&p, Trees::PerOrigin);
    let tag = TreeTag::of(&p[0]);
    links.relaying(p[0], Some(&p[2]), None);
    assert_eq!(links.parent_for(tag), Parent::Alive(p[2]));
    // A copy over a lazy link (a graft's answer) moves nothing: no copy comes that way next.
    links.make_lazy(p[0], p[3]);
    links.relaying(p[0], Some(&p[3]), None);
    assert_eq!(links.parent_for(tag), Parent::Alive(p[2]));
    links.relaying(p[0], Some(&p[4]), None);
    assert_eq!(links.parent_for(tag), Parent::Alive(p[4]));
    // Published here: the parent stays.
    links.relaying(p[0], None, None);
    assert_eq!(links.parent_for(tag), Parent::Alive(p[4]));
}

#[test]
fn a_trees_parent_is_found_by_its_tag_and_follows_its_slot() {
    let p = peers(5);
    let mut links = linked(&p, Trees::PerOrigin);
    let tag = TreeTag::of(&p[0]);
    links.set_parent(&p[0], &p[4]);
    assert_eq!(
        links.parent_for(tag),
        Parent::Unknown,
        "a tree not formed has no parent"
    );
    links.relaying(p[0], None, None);
    assert_eq!(links.parent_for(tag), Parent::Unknown, "none recorded yet");
    links.set_parent(&p[0], &p[4]);
    assert_eq!(links.parent_for(tag), Parent::Alive(p[4]));
    // p4 moves to p1's slot, and stays the parent.
    links.down(p[1]);
    assert_eq!(links.parent_for(tag), Parent::Alive(p[4]));
    // A parent whose link turned lazy sends no copy.
    links.make_lazy(p[0], p[4]);
    assert_eq!(links.parent_for(tag), Parent::Unknown);
    links.make_eager(&p[0], &p[4]);
    assert_eq!(links.parent_for(tag), Parent::Alive(p[4]));
    // One that left leaves the tree broken above us until a message sets a parent again.
    links.down(p[4]);
    assert_eq!(links.parent_for(tag), Parent::Left);
    links.up(p[4]);
    assert_eq!(
        links.parent_for(tag),
        Parent::Left,
        "it came back lazy, and is not the parent"
    );
    links.set_parent(&p[0], &p[2]);
    assert_eq!(links.parent_for(tag), Parent::Alive(p[2]));
    assert_eq!(
        links.parent_for(TreeTag::of(&p[2])),
        Parent::Unknown,
        "no tree of that tag"
    );
}

#[test]
fn a_shared_tag_stands_for_the_tree_relayed_last() {
    let neighbours = peers(3);
    // Two origins whose keys begin alike (a byte further in changed, until the key is a
    // point again): their trees share a tag.
    let a = neighbours[0];
    let b = (0..=u8::MAX)
        .find_map(|x| {
            let mut bytes = *a.as_bytes();
            bytes[20] ^= x.max(1);
            PeerId::from_bytes(bytes).ok()
        })
        .unwrap();
    assert_eq!(TreeTag::of(&a), TreeTag::of(&b));
    let mut links = Links::new(16, Trees::PerOrigin);
    links.up(neighbours[1]);
    links.up(neighbours[2]);
    links.relaying(a, None, None);
    links.set_parent(&a, &neighbours[1]);
    links.relaying(b, None, None);
    links.set_parent(&b, &neighbours[2]);
    assert_eq!(links.parent_for(TreeTag::of(&a)), Parent::Alive(neighbours[2]));
    links.relaying(a, None, None);
    assert_eq!(links.parent_for(TreeTag::of(&b)), Parent::Alive(neighbours[1]));
}

#[test]
fn a_forgotten_tree_takes_its_tag_with_it() {
    let origins = peers(12);
    let neighbour = Keypair::from_seed([99; 32]).peer_id();
    let mut links = Links::new(4, Trees::PerOrigin);
    links.up(neighbour);
    for origin in &origins {
        links.relaying(*origin, None, None);
        links.set_parent(origin, &neighbour);
    }
    assert!(links.tags.len() <= links.trees.len());
    assert_eq!(
        links.parent_for(TreeTag::of(&origins[11])),
        Parent::Alive(neighbour)
    );
    assert_eq!(links.parent_for(TreeTag::of(&origins[0])), Parent::Unknown);
}

#[test]
fn per_origin_links_ignore_a_shared_prune() {
    let p = peers(3);
    let mut links = Links::new(16, Trees::PerOrigin);
    links.up(p[1]);
    links.make_shared_lazy(&p[1]);
    assert!(
        links.is_eager(&p[0], &p[1]),
        "no shared tree: the link stays eager for new origins"
    );
}

#[test]
fn a_new_neighbour_is_lazy_only_for_formed_trees() {
    let p = peers(4);
    let mut links = Links::new(16, Trees::PerOrigin);
    links.up(p[1]);
    links.make_lazy(p[0], p[1]);
    links.up(p[2]);
    assert!(links.is_lazy(&p[0], &p[2]));
    assert!(links.is_eager(&p[3], &p[2]));
}

#[test]
fn shared_mode_origins_follow_the_shared_tree_until_a_shortcut_gives_them_their_own() {
    let p = peers(4);
    let mut links = linked(&p, Trees::Shared);
    links.make_shared_lazy(&p[1]);
    assert!(links.follows_shared(&p[0]));
    assert!(
        links.is_lazy(&p[0], &p[1]),
        "an unknown origin follows the shared tree"
    );
    assert!(links.is_eager(&p[0], &p[2]));
    // The optimisation: p1 joins p0's tree, p2 leaves it; the shared tree is untouched.
    links.join_tree(p[0], &p[1]);
    links.make_lazy(p[0], p[2]);
    assert!(!links.follows_shared(&p[0]));
    assert!(links.is_eager(&p[0], &p[1]) && links.is_lazy(&p[0], &p[2]));
    assert!(links.is_lazy(&p[3], &p[1]) && links.is_eager(&p[3], &p[2]));
    // A graft for an origin without a tree mends the shared tree.
    links.make_eager(&p[3], &p[1]);
    assert!(links.is_eager(&p[3], &p[1]));
    assert!(links.is_lazy(&p[0], &p[2]), "p0's own tree is unchanged");
}

#[test]
fn over_capacity_the_least_recently_used_quarter_is_forgotten() {
    let origins = peers(12);
    let neighbour = Keypair::from_seed([99; 32]).peer_id();
    let mut links = Links::new(8, Trees::PerOrigin);
    links.up(neighbour);
    for origin in &origins[..8] {
        links.make_lazy(*origin, neighbour);
    }
    links.relaying(origins[0], None, None); // used again: kept
    links.make_lazy(origins[8], neighbour);
    assert_eq!(links.origins(), 7, "two of eight forgotten, one added");
    assert!(links.is_lazy(&origins[0], &neighbour));
    assert!(!links.is_lazy(&origins[1], &neighbour));
    assert!(!links.is_lazy(&origins[2], &neighbour));
    assert!(links.is_lazy(&origins[3], &neighbour));
    assert!(links.is_lazy(&origins[8], &neighbour));
}
