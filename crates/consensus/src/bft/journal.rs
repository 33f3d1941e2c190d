//! The last vote, kept durable so that a validator that crashes and restarts never votes twice in one
//! view.
//!
//! A validator only ever votes in its current view, and views only go forward, so the votes of the
//! highest view it voted in are all it must remember: after a restart it resumes in that view, with
//! those votes, and never goes back. The engine writes the record **before** it sends the vote; if the
//! write fails it stops voting.
//!
//! The record also keeps the run of nullified views just below the vote's view, down to a certified
//! proposal ([`SkippedRun`]), as the validator knew it when it voted. Certificates live in memory and
//! are pruned everywhere after [`BftConfig::history_views`](super::BftConfig::history_views): after a
//! run longer than that, a validator that restarted could backfill the run's last views but never its
//! first, and would not vote for a block on the run's parent again (with more than a third restarted,
//! the chain halted for good). Restored, the run covers what it saw, so a restart shorter than the
//! history loses nothing.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::message::Proposal;

/// Every view after `parent`'s up to `through` was nullified (the certificates checked by this
/// validator), and `parent` is certified: a leader after `through`, with the views since nullified too,
/// builds on `parent`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedRun {
    /// The certified proposal below the run.
    pub parent: Proposal,
    /// The run's last view.
    pub through: u64,
}

/// What a validator voted in its latest view.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastVote {
    /// The view.
    pub view: u64,
    /// The proposal it voted to notarize, if any.
    pub notarize: Option<Proposal>,
    /// Whether it voted to skip the view.
    pub nullify: bool,
    /// The proposal it voted to finalize, if any.
    pub finalize: Option<Proposal>,
    /// The run of nullified views that ends just below `view`, if one does (restored on a restart).
    pub skipped: Option<SkippedRun>,
}

/// [`LastVote`] as journals before the skipped run wrote it: still read, so an upgraded node resumes,
/// and still written when there is no run, so a node taken back to an older release does too.
#[derive(Serialize, Deserialize)]
struct LastVoteV1 {
    view: u64,
    notarize: Option<Proposal>,
    nullify: bool,
    finalize: Option<Proposal>,
}

impl From<LastVote> for LastVoteV1 {
    fn from(vote: LastVote) -> Self {
        Self {
            view: vote.view,
            notarize: vote.notarize,
            nullify: vote.nullify,
            finalize: vote.finalize,
        }
    }
}

impl From<LastVoteV1> for LastVote {
    fn from(old: LastVoteV1) -> Self {
        Self {
            view: old.view,
            notarize: old.notarize,
            nullify: old.nullify,
            finalize: old.finalize,
            skipped: None,
        }
    }
}

/// Where a validator keeps its [`LastVote`].
pub trait Journal {
    /// What a failed read or write is.
    type Error: std::error::Error;
    /// The last vote recorded, if any.
    fn load(&self) -> Result<Option<LastVote>, Self::Error>;
    /// Records `vote`, durably, before returning.
    fn record(&mut self, vote: &LastVote) -> Result<(), Self::Error>;
}

/// A journal in memory: for the simulator and tests (a crash loses it, so a restarted validator built on
/// a new one may vote twice; the simulator hands the old one over).
#[derive(Clone, Debug, Default)]
pub struct MemoryJournal {
    last: Option<LastVote>,
}

impl MemoryJournal {
    /// An empty journal.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Journal for MemoryJournal {
    type Error = std::convert::Infallible;

    fn load(&self) -> Result<Option<LastVote>, Self::Error> {
        Ok(self.last)
    }

    fn record(&mut self, vote: &LastVote) -> Result<(), Self::Error> {
        self.last = Some(*vote);
        Ok(())
    }
}

/// Why a [`FileJournal`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// Reading, writing, syncing or renaming the file failed.
    #[error("vote journal {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        source: io::Error,
    },
    /// The file does not hold a record (it was not written by this journal).
    #[error("vote journal {path} is corrupt: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What did not decode.
        reason: String,
    },
}

/// A journal in one small file, replaced atomically: the record is written to a temporary file beside
/// it, synced, renamed over the old one, and the directory synced, so after a crash at any point the file
/// holds either the old record or the new one, whole.
#[derive(Debug)]
pub struct FileJournal {
    path: PathBuf,
}

impl FileJournal {
    /// The journal at `path` (created on the first record).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    /// The file it writes.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, source: io::Error) -> JournalError {
        JournalError::Io {
            path: self.path.clone(),
            source,
        }
    }
}

impl Journal for FileJournal {
    type Error = JournalError;

    fn load(&self) -> Result<Option<LastVote>, JournalError> {
        let bytes = match fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(self.io(error)),
        };
        // A record ends where its fields do (the decoder refuses trailing bytes), so an old record
        // does not decode as a new one, nor a new one as old.
        meshwork_wire::decode::<LastVote>(&bytes)
            .or_else(|error| {
                meshwork_wire::decode::<LastVoteV1>(&bytes)
                    .map(LastVote::from)
                    .map_err(|_| error)
            })
            .map(Some)
            .map_err(|error| JournalError::Corrupt {
                path: self.path.clone(),
                reason: error.to_string(),
            })
    }

    fn record(&mut self, vote: &LastVote) -> Result<(), JournalError> {
        // Without a run, the record is written as before it had one: a node taken back to an older
        // release still reads it (a run of skips longer than the history is the rare case).
        let bytes = match vote.skipped {
            None => meshwork_wire::encode(&LastVoteV1::from(*vote)),
            Some(_) => meshwork_wire::encode(vote),
        };
        let bytes = bytes.map_err(|error| JournalError::Corrupt {
            path: self.path.clone(),
            reason: error.to_string(),
        })?;
        let temporary = self.path.with_extension("tmp");
        let mut file = File::create(&temporary).map_err(|e| self.io(e))?;
        file.write_all(&bytes).map_err(|e| self.io(e))?;
        file.sync_all().map_err(|e| self.io(e))?;
        fs::rename(&temporary, &self.path).map_err(|e| self.io(e))?;
        // The rename is durable only once the directory entry is.
        let directory = self.path.parent().filter(|p| !p.as_os_str().is_empty());
        File::open(directory.unwrap_or(Path::new(".")))
            .and_then(|dir| dir.sync_all())
            .map_err(|e| self.io(e))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use meshwork_identity::Hash;

    use super::*;

    #[test]
    fn a_file_journal_keeps_the_last_record_and_refuses_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = FileJournal::new(dir.path().join("votes"));
        assert_eq!(journal.load().unwrap(), None);
        let proposal = Proposal {
            view: 7,
            parent: 6,
            height: 5,
            payload: Hash::digest(b"b"),
        };
        let first = LastVote {
            view: 7,
            notarize: Some(proposal),
            ..LastVote::default()
        };
        journal.record(&first).unwrap();
        let second = LastVote {
            finalize: Some(proposal),
            ..first
        };
        journal.record(&second).unwrap();
        assert_eq!(FileJournal::new(journal.path()).load().unwrap(), Some(second));

        fs::write(journal.path(), b"\xff\xff").unwrap();
        assert!(matches!(journal.load(), Err(JournalError::Corrupt { .. })));
    }

    #[test]
    fn a_record_written_before_the_skipped_run_still_loads() {
        let dir = tempfile::tempdir().unwrap();
        let journal = FileJournal::new(dir.path().join("votes"));
        let old = LastVoteV1 {
            view: 9,
            notarize: None,
            nullify: true,
            finalize: None,
        };
        fs::write(journal.path(), meshwork_wire::encode(&old).unwrap()).unwrap();
        let loaded = journal.load().unwrap().unwrap();
        assert_eq!((loaded.view, loaded.nullify, loaded.skipped), (9, true, None));
        // And a new record with a run is not mistaken for an old one.
        let mut journal = journal;
        let run = SkippedRun {
            parent: Proposal {
                view: 1,
                parent: 0,
                height: 1,
                payload: Hash::digest(b"a"),
            },
            through: 8,
        };
        let new = LastVote {
            skipped: Some(run),
            ..loaded
        };
        journal.record(&new).unwrap();
        assert_eq!(journal.load().unwrap(), Some(new));
        // Without a run, the old layout is written: an older release reads it.
        journal.record(&loaded).unwrap();
        let bytes = fs::read(journal.path()).unwrap();
        let old: LastVoteV1 = meshwork_wire::decode(&bytes).unwrap();
        assert_eq!((old.view, old.nullify), (9, true));
    }
}

/// A journal chosen at run time: in memory (tests, simulations) or in a file (a node). Lets an
/// application hold one engine type whichever it runs with.
#[derive(Debug)]
pub enum AnyJournal {
    /// A [`MemoryJournal`].
    Memory(MemoryJournal),
    /// A [`FileJournal`].
    File(FileJournal),
}

impl Journal for AnyJournal {
    type Error = JournalError;

    fn load(&self) -> Result<Option<LastVote>, JournalError> {
        match self {
            Self::Memory(journal) => Ok(journal.last),
            Self::File(journal) => journal.load(),
        }
    }

    fn record(&mut self, vote: &LastVote) -> Result<(), JournalError> {
        match self {
            Self::Memory(journal) => {
                journal.last = Some(*vote);
                Ok(())
            }
            Self::File(journal) => journal.record(vote),
        }
    }
}
