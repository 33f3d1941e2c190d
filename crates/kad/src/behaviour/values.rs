//! What a `GetValue` lookup makes of the records its answers carry.
//!
//! A lookup does not end on the first valid record. One answer can be stale (a peer that missed the
//! publisher's update serves the older version until it expires) or, under a shared name, another
//! publisher's (any peer on the lookup's path can answer with a record of its own, whether or not an
//! honest peer stores it). So the lookup goes on until [`crate::Config::value_quorum`] answers (3)
//! carried a record, or until it converges, and counts them: the publisher the most peers answered
//! for wins, and of its records the one that expires last, which is its latest (a store refuses a record of the same publisher that expires
//! sooner). This is the choice IPNS makes with its quorum of records and their sequence numbers;
//! under a publisher's own key ([`crate::Key::for_record`]) every valid record is the publisher's, so
//! the latest one any answer carries wins.
//!
//! With disjoint paths ([`crate::Config::disjoint_paths`]) the quorum must take in answers from two
//! paths at least: the point of several paths is that one path through an attacker cannot decide the
//! lookup, and an attacker on one path can name as many of its own identities as the quorum asks,
//! each answering with its stale or forged record, before an honest path answers.

use meshwork_identity::PeerId;

use crate::Record;

/// The distinct records a `GetValue` lookup met, each with how many peers answered with it, in the
/// order first met.
#[derive(Clone, Debug, Default)]
pub(crate) struct Found {
    records: Vec<(Record, usize)>,
    /// The paths whose peers answered with a record, one bit each (path `i` at bit `i`, the 64th
    /// and beyond at the last).
    paths: u64,
}

impl Found {
    /// One peer, on path `path` of the lookup (`None`: our own store), answered with `record`
    /// (verified, under the lookup's key). At most `limit` distinct records are kept: a lookup asks
    /// few peers more than `k`, each once.
    pub(crate) fn add(&mut self, record: Record, limit: usize, path: Option<usize>) {
        if let Some(path) = path {
            self.paths |= 1 << path.min(63);
        }
        if let Some((_, answers)) = self.records.iter_mut().find(|(r, _)| *r == record) {
            *answers += 1;
        } else if self.records.len() < limit {
            self.records.push((record, 1));
        }
    }

    /// Whether `quorum` answers carried a record, from two of the lookup's `paths` at least when it
    /// runs several (module docs).
    pub(crate) fn quorum(&self, quorum: usize, paths: usize) -> bool {
        let answers: usize = self.records.iter().map(|(_, n)| n).sum();
        answers >= quorum && self.paths.count_ones() as usize >= paths.min(2)
    }

    /// The record to answer with: the latest record of the publisher the most answers were for (the
    /// first met of those tied).
    pub(crate) fn best(self) -> Option<Record> {
        let mut by_publisher: Vec<(PeerId, usize)> = Vec::new();
        for (record, answers) in &self.records {
            match by_publisher.iter_mut().find(|(p, _)| *p == record.publisher) {
                Some((_, n)) => *n += answers,
                None => by_publisher.push((record.publisher, *answers)),
            }
        }
        // `max_by_key` keeps the last of equal maxima; reversed, the first met.
        let (winner, _) = by_publisher.into_iter().rev().max_by_key(|(_, n)| *n)?;
        self.records
            .into_iter()
            .map(|(record, _)| record)
            .filter(|r| r.publisher == winner)
            .max_by_key(|r| r.expires)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use meshwork_identity::Keypair;
    use meshwork_wire::Instant;

    fn record(seed: u8) -> Record {
        let keypair = Keypair::from_seed([seed; 32]);
        let key = crate::Key::for_record(&keypair.peer_id(), b"name");
        let expires = Instant::from_duration(std::time::Duration::from_secs(100));
        Record::sign(&keypair, key, b"v".to_vec(), expires).unwrap_or_else(|_| unreachable!())
    }

    #[test]
    fn with_several_paths_a_quorum_takes_in_two_of_them() {
        let mut found = Found::default();
        // Our own record, then three answers all from path 0.
        found.add(record(1), 20, None);
        for _ in 0..3 {
            found.add(record(1), 20, Some(0));
        }
        assert!(found.quorum(3, 1), "one path: three answers are the quorum");
        assert!(!found.quorum(3, 2), "two paths: not from one of them alone");
        found.add(record(1), 20, Some(1));
        assert!(found.quorum(3, 2));
        // Our own record counts as an answer, not as a path.
        let mut found = Found::default();
        found.add(record(1), 20, None);
        found.add(record(1), 20, Some(1));
        found.add(record(1), 20, Some(1));
        assert!(found.quorum(3, 1) && !found.quorum(3, 2));
    }
}
