//! The last vote, kept durable so that a validator that crashes and restarts never votes twice in one
//! view.
//!
//! A validator only ever votes in its current view, and views only go forward, so the votes of the
//! highest view it voted in are all it must remember: after a restart it resumes in that view, with
//! those votes, and never goes back. The engine writes the record **before** it sends the vote; if the
//! write fails it stops voting.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::message::Proposal;

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
        meshwork_wire::decode(&bytes)
            .map(Some)
            .map_err(|error| JournalError::Corrupt {
                path: self.path.clone(),
                reason: error.to_string(),
            })
    }

    fn record(&mut self, vote: &LastVote) -> Result<(), JournalError> {
        let bytes = meshwork_wire::encode(vote).map_err(|error| JournalError::Corrupt {
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
