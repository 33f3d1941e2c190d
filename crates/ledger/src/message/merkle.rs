//! The merkle tree over a block's transaction ids.
//!
//! Two properties matter, both learned from Bitcoin's CVE-2012-2459:
//!
//! - **Leaves and inner nodes hash in different domains** (blake3 key derivation with distinct contexts),
//!   so an inner node can never be passed off as a leaf or the other way round (no second preimage by
//!   reinterpreting a subtree as a transaction).
//! - **No duplication trick**: Bitcoin pairs an odd last node with itself, so `[a, b, c]` and `[a, b, c, c]`
//!   have the same root and a valid block can be "mutated" into an invalid one with the same header. Here an
//!   odd node is carried up a level alone, unchanged, and the root also commits to the number of leaves.
//!   Distinct lists of ids always give distinct roots (barring a blake3 collision).

use meshwork_identity::Hash;

const LEAF_DOMAIN: &str = "meshwork ledger 2026 merkle leaf v1";
const NODE_DOMAIN: &str = "meshwork ledger 2026 merkle node v1";
const ROOT_DOMAIN: &str = "meshwork ledger 2026 merkle root v1";

/// The merkle root of `leaves` (transaction ids, in block order).
pub fn root(leaves: &[Hash]) -> Hash {
    let mut level: Vec<Hash> = leaves
        .iter()
        .map(|leaf| Hash::derive(LEAF_DOMAIN, leaf.as_bytes()))
        .collect();
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| match pair {
                [left, right] => {
                    let mut both = [0u8; 64];
                    both[..32].copy_from_slice(left.as_bytes());
                    both[32..].copy_from_slice(right.as_bytes());
                    Hash::derive(NODE_DOMAIN, &both)
                }
                // An odd node goes up alone (no self-pairing, hence no duplication ambiguity).
                [single] => *single,
                _ => unreachable!("chunks(2) yields one or two"),
            })
            .collect();
    }
    let top = level.first().copied().unwrap_or(Hash::ZERO);
    let mut committed = [0u8; 40];
    committed[..8].copy_from_slice(&(leaves.len() as u64).to_le_bytes());
    committed[8..].copy_from_slice(top.as_bytes());
    Hash::derive(ROOT_DOMAIN, &committed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: u8) -> Vec<Hash> {
        (0..n).map(|i| Hash::digest(&[i])).collect()
    }

    #[test]
    fn duplicating_the_last_leaf_changes_the_root() {
        for n in 1..20 {
            let leaves = ids(n);
            let mut mutated = leaves.clone();
            mutated.push(*leaves.last().unwrap());
            assert_ne!(root(&leaves), root(&mutated), "n = {n}");
        }
    }

    #[test]
    fn a_leaf_is_not_an_inner_node() {
        let leaves = ids(2);
        let pair_as_one = Hash::derive(LEAF_DOMAIN, leaves[0].as_bytes());
        assert_ne!(root(&leaves), root(&[pair_as_one]));
        assert_ne!(root(&[]), root(&ids(1)));
    }
}
