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

use meshwork_identity::PeerId;

use crate::Record;

/// The distinct records a `GetValue` lookup met, each with how many peers answered with it, in the
/// order first met.
#[derive(Clone, Debug, Default)]
pub(crate) struct Found(Vec<(Record, usize)>);

impl Found {
    /// One peer answered with `record` (verified, under the lookup's key). At most `limit` distinct
    /// records are kept: a lookup asks few peers more than `k`, each once.
    pub(crate) fn add(&mut self, record: Record, limit: usize) {
        if let Some((_, answers)) = self.0.iter_mut().find(|(r, _)| *r == record) {
            *answers += 1;
        } else if self.0.len() < limit {
            self.0.push((record, 1));
        }
    }

    /// How many answers carried a record.
    pub(crate) fn answers(&self) -> usize {
        self.0.iter().map(|(_, n)| n).sum()
    }

    /// The record to answer with: the latest record of the publisher the most answers were for (the
    /// first met of those tied).
    pub(crate) fn best(self) -> Option<Record> {
        let mut by_publisher: Vec<(PeerId, usize)> = Vec::new();
        for (record, answers) in &self.0 {
            match by_publisher.iter_mut().find(|(p, _)| *p == record.publisher) {
                Some((_, n)) => *n += answers,
                None => by_publisher.push((record.publisher, *answers)),
            }
        }
        // `max_by_key` keeps the last of equal maxima; reversed, the first met.
        let (winner, _) = by_publisher.into_iter().rev().max_by_key(|(_, n)| *n)?;
        self.0
            .into_iter()
            .map(|(record, _)| record)
            .filter(|r| r.publisher == winner)
            .max_by_key(|r| r.expires)
    }
}
