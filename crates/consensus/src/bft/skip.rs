//! A run of nullified views older than the certificate history, kept as a range.
//!
//! A leader builds on the highest certified proposal with every view since nullified, and a validator
//! votes for a proposal only once it holds the nullifications between the proposal and its parent
//! ([`super::view`]). Certificates are kept for [`BftConfig::history_views`](super::BftConfig::history_views)
//! views. Were that all, a run of nullified views longer than the history (a network slower than the
//! timeouts for a while: the default 1,024 views at a view a second is 17 minutes) would leave no
//! leader able to propose and no validator able to vote, for good: the parent's certificate and the
//! first nullifications of the run are forgotten by every validator alike.
//!
//! So when certificates are pruned, the run of nullified views just below the history, if it reaches
//! down to a certified proposal, is kept as a [`SkippedRun`]: that proposal and the last view of the run
//! pruned so far. Each nullification was checked when it came; only its signatures are forgotten.
//! What a skip cannot do is prove the run to a validator that never saw it (one cut off for the whole
//! run, or restarted for longer than the history): such a validator does not vote for proposals on
//! the old parent, and follows again from the next notarization, which needs a quorum that saw the
//! run. A validator that restarts sooner resumes with the run it saw: every vote's journal record
//! keeps the run just below the vote's view ([`Simplex::run_below`]), and the engine starts from it.

use super::engine::{Application, Simplex};
use super::journal::{Journal, SkippedRun};

impl SkippedRun {
    fn covers(&self, view: u64) -> bool {
        self.parent.view < view && view <= self.through
    }
}

impl<A: Application, J: Journal> Simplex<A, J> {
    /// Whether `view` is known to be nullified: its certificate is held, or it is in the kept run.
    pub(super) fn is_nullified(&self, view: u64) -> bool {
        self.nullified.contains_key(&view) || self.skip.is_some_and(|s| s.covers(view))
    }

    /// The view below `view` to look at next when walking down a run of nullified views: the kept
    /// run's parent at once, from inside the run.
    pub(super) fn below(&self, view: u64) -> u64 {
        match self.skip {
            Some(skip) if skip.covers(view) => skip.parent.view,
            _ => view - 1,
        }
    }

    /// The views in `from..to` not known to be nullified, lowest first, at most `limit`. The kept run
    /// is stepped over in one go, so this costs at most the views still under their certificates.
    pub(super) fn not_nullified(&self, from: u64, to: u64, limit: usize) -> Vec<u64> {
        let mut missing = Vec::new();
        let mut view = from;
        while view < to && missing.len() < limit {
            match self.skip {
                Some(skip) if skip.covers(view) => view = skip.through + 1,
                _ => {
                    if !self.nullified.contains_key(&view) {
                        missing.push(view);
                    }
                    view += 1;
                }
            }
        }
        missing
    }

    /// Called before the certificates of views below `certs_from` are pruned: keeps the run of
    /// nullified views ending just below `certs_from`, if it reaches down to a certified proposal
    /// (or continues the kept run), as the [`SkippedRun`]. The walk only visits certificates about to be
    /// pruned, so over time it costs one step per pruned view.
    pub(super) fn keep_skip(&mut self, certs_from: u64) {
        let Some(top) = certs_from.checked_sub(1) else {
            return;
        };
        if self.skip.is_some_and(|s| s.through >= top) {
            return;
        }
        let mut at = top;
        self.skip = loop {
            if let Some(parent) = self.certified(at) {
                break Some(SkippedRun { parent, through: top });
            }
            if let Some(skip) = self.skip.filter(|s| s.through == at) {
                break Some(SkippedRun { through: top, ..skip });
            }
            if at <= self.finalized.view || !self.nullified.contains_key(&at) {
                break None;
            }
            at -= 1;
        };
    }

    /// The run of nullified views that ends just below `view`, down to a certified proposal (or the
    /// kept run), if the view below `view` is nullified. Walks the certificates held, at most the
    /// history's worth (in a long run, one walk a vote, a view a second or so).
    pub(super) fn run_below(&self, view: u64) -> Option<SkippedRun> {
        let top = view.checked_sub(1)?;
        let mut at = top;
        loop {
            if let Some(parent) = self.certified(at) {
                return (at < top).then_some(SkippedRun { parent, through: top });
            }
            if let Some(skip) = self.skip.filter(|s| s.covers(at)) {
                return Some(SkippedRun { through: top, ..skip });
            }
            if at <= self.finalized.view || !self.nullified.contains_key(&at) {
                return None;
            }
            at -= 1;
        }
    }

    /// A kept run that ends at or below the last final view is of no more use.
    pub(super) fn forget_skip_behind_final(&mut self) {
        if self.skip.is_some_and(|s| s.through <= self.finalized.view) {
            self.skip = None;
        }
    }
}
