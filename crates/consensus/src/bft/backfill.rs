//! Backfill: a validator that fell behind asks for the certificates it lacks ([`Message::Backfill`]),
//! and validators answer within a byte budget.
//!
//! An answer holds every certificate held for the views asked (the asker may need the notarization of
//! a final view to build on it, or the nullification of a notarized one to skip it), but at most
//! [`BACKFILL_ANSWER_BYTES`]: up to three certificates a view for 32 views, each of up to a third of
//! the validators' votes more than two thirds, made a Byzantine validator's one 300-byte request cost
//! up to 3 MB of our upload four times a second. The strongest certificate of each view goes first,
//! so a cut answer still serves every view; what it left out is asked for again after the backfill
//! timeout.

use meshwork_identity::PeerId;
use meshwork_wire::{BoundedVec, Instant, Output};

use super::engine::{Application, Simplex};
use super::journal::Journal;
use super::message::{MAX_BACKFILL_VIEWS, Message};

/// Encoded bytes of certificates one backfill answer holds at most: 256 KiB, a certificate for each of
/// [`MAX_BACKFILL_VIEWS`] views of a hundred validators (about 6.5 KB each).
pub const BACKFILL_ANSWER_BYTES: usize = 256 * 1024;

impl<A: Application, J: Journal> Simplex<A, J> {
    /// Answers a backfill request with the certificates held, at most once per
    /// [`BftConfig::backfill_interval`](super::BftConfig::backfill_interval) per peer and at most
    /// [`BACKFILL_ANSWER_BYTES`] an answer: each view's strongest certificate first (finalization,
    /// notarization, nullification), then the others.
    pub(super) fn on_backfill(
        &mut self,
        now: Instant,
        from: PeerId,
        views: &[u64],
        out: &mut Vec<Output<Self>>,
    ) {
        // Validators only (observers are sent finalizations), and `served` outlives reconnections.
        let due = self.config.validators.contains(&from)
            && self
                .served
                .get(&from)
                .is_none_or(|at| now.saturating_duration_since(*at) >= self.config.backfill_interval);
        if !due {
            return;
        }
        self.served.insert(from, now);
        let mut views = views.to_vec();
        views.sort_unstable();
        views.dedup();
        let held: Vec<Vec<Message>> = views.iter().map(|view| self.certificates_of(*view)).collect();
        let mut bytes = 0;
        // The first certificate of every view, then the second of every view, then the third.
        for round in 0..3 {
            for msg in held.iter().filter_map(|certs| certs.get(round)) {
                bytes += meshwork_wire::encoded_len(msg).unwrap_or(usize::MAX);
                if bytes > BACKFILL_ANSWER_BYTES {
                    return;
                }
                out.push(Output::Send {
                    to: from,
                    msg: msg.clone(),
                });
            }
        }
    }

    /// Every certificate held for `view`, strongest first.
    fn certificates_of(&self, view: u64) -> Vec<Message> {
        let finalization = self.finalizations.get(&view).cloned().map(Message::Finalization);
        let notarization = self.notarized.get(&view).cloned().map(Message::Notarization);
        let nullification = self.nullified.get(&view).cloned().map(Message::Nullification);
        [finalization, notarization, nullification]
            .into_iter()
            .flatten()
            .collect()
    }

    /// Asks for the certificates of `views` not asked for within the backfill timeout: first `hint` (who
    /// should have them), then, if no answer came, the next validator in turn, so that neither a silent
    /// peer nor this validator itself (it may lead the view) is asked forever.
    pub(super) fn ask(&mut self, now: Instant, hint: PeerId, views: Vec<u64>, out: &mut Vec<Output<Self>>) {
        let timeout = self.config.backfill_timeout;
        let mut attempt = u32::MAX;
        let mut fresh = Vec::new();
        for view in views {
            let (at, tries) = self.asked.get(&view).copied().unwrap_or((now, 0));
            if tries == 0 || now.saturating_duration_since(at) >= timeout {
                attempt = attempt.min(tries);
                self.asked.insert(view, (now, tries + 1));
                fresh.push(view);
            }
        }
        let Ok(views) = BoundedVec::<u64, { MAX_BACKFILL_VIEWS }>::try_from(fresh) else {
            return;
        };
        if views.is_empty() {
            return;
        }
        let list: Vec<PeerId> = self.config.validators.iter().copied().collect();
        let start = list.iter().position(|p| *p == hint).unwrap_or(0);
        let peer = (0..list.len())
            .map(|k| list[(start + attempt as usize + k) % list.len()])
            .find(|p| *p != self.me);
        if let Some(to) = peer {
            out.push(Output::Send {
                to,
                msg: Message::Backfill(views),
            });
        }
    }
}
