//! The data directory (keys, config file, chain database, RPC cookie) and the network's parameters.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use meshwork_consensus::bft::ValidatorSet;
use meshwork_consensus::{CertificateError, ChainConfig, ChainRule};
use meshwork_identity::{KeyFileError, Keypair, PeerId};
use meshwork_ledger::LedgerConfig;
use serde::{Deserialize, Serialize};

/// What can go wrong with a data directory.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A key file is missing or broken.
    #[error(transparent)]
    Key(#[from] KeyFileError),
    /// The config file does not parse.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: serde_json::Error,
    },
    /// A line of a validators file is not a peer id.
    #[error("{path}, line {line}: not a peer id")]
    BadValidator {
        /// The file.
        path: PathBuf,
        /// The line (from 1).
        line: usize,
    },
    /// The validator set is not one (empty, too large, a key twice).
    #[error("validator set: {0}")]
    Validators(#[from] CertificateError),
}

/// How a network reaches consensus: part of its parameters, the same on every node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ConsensusParams {
    /// Nakamoto proof of work: miners extend the chain with the most work; a payment is confirmed once
    /// in a block, final at depth.
    #[default]
    Pow,
    /// Simplex BFT: these validators (node ids, in leader order) propose and certify blocks; a payment
    /// is confirmed when its block is final, by a certificate of more than two thirds of them.
    Bft {
        /// The validators' node ids.
        validators: Vec<PeerId>,
    },
}

impl ConsensusParams {
    /// The chain's configuration: `network`'s, with the rule of this consensus.
    pub fn chain_config(&self, network: &NetworkParams) -> Result<ChainConfig, ConfigError> {
        let config = network.chain_config();
        Ok(match self {
            Self::Pow => config,
            Self::Bft { validators } => ChainConfig {
                rule: ChainRule::Certified(ValidatorSet::new(validators.clone())?),
                ..config
            },
        })
    }

    /// The validator set, under BFT.
    pub fn validators(&self) -> Option<&[PeerId]> {
        match self {
            Self::Pow => None,
            Self::Bft { validators } => Some(validators),
        }
    }
}

/// Reads a validators file: one node id per line, in leader order; blank lines and `#` comments are
/// skipped.
pub fn read_validators(path: &Path) -> Result<Vec<PeerId>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut validators = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        validators.push(line.parse().map_err(|_| ConfigError::BadValidator {
            path: path.to_path_buf(),
            line: i + 1,
        })?);
    }
    ValidatorSet::new(validators.clone())?;
    Ok(validators)
}

/// The consensus parameters every node of one network must share (they are in each node's config file).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkParams {
    /// The genesis block's timestamp (Unix seconds): ASERT schedules every later block from it.
    pub genesis_time: u64,
    /// The block interval ASERT aims at, in seconds.
    pub target_block_time: u64,
    /// ASERT's half-life in seconds (short, so difficulty follows the CPUs of a devnet quickly).
    pub half_life: u64,
    /// The easiest proof-of-work target, compact.
    pub pow_limit: u32,
    /// Blocks before a coinbase output may be spent.
    pub coinbase_maturity: u64,
}

impl NetworkParams {
    /// A development network starting at `genesis_time`: 4-second blocks, a 30-second half-life,
    /// the easiest target one hash in 2^16, coinbase maturity 2.
    pub fn devnet(genesis_time: u64) -> Self {
        Self {
            genesis_time,
            target_block_time: 4,
            half_life: 30,
            pow_limit: 0x1f00_ffff,
            coinbase_maturity: 2,
        }
    }

    /// Parameters for tests: one-second blocks and the easiest target (one hash in two).
    pub fn test(genesis_time: u64) -> Self {
        Self {
            genesis_time,
            target_block_time: 1,
            half_life: 10,
            pow_limit: 0x207f_ffff,
            coinbase_maturity: 1,
        }
    }

    /// The consensus crate's configuration for these parameters.
    pub fn chain_config(&self) -> ChainConfig {
        ChainConfig {
            ledger: LedgerConfig {
                coinbase_maturity: self.coinbase_maturity,
                ..LedgerConfig::default()
            },
            pow_limit: self.pow_limit,
            target_block_time: self.target_block_time,
            half_life: self.half_life,
            genesis_time: self.genesis_time,
            ..ChainConfig::regtest()
        }
    }
}

/// The config file, `<datadir>/config.json`, written by `coin-node init`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileConfig {
    /// The network's consensus parameters.
    pub network: NetworkParams,
    /// The QUIC address to listen on.
    pub listen: SocketAddr,
    /// The JSON-RPC address (keep it on loopback: the cookie is the only protection).
    pub rpc: SocketAddr,
    /// Proof of work or BFT (absent in files written before BFT: proof of work).
    #[serde(default)]
    pub consensus: ConsensusParams,
}

/// The files of a data directory.
#[derive(Clone, Debug)]
pub struct DataDir(PathBuf);

impl DataDir {
    /// The directory at `path` (not created yet).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self(path.into())
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }

    /// The node's identity key (QUIC, gossip signatures).
    pub fn node_key(&self) -> PathBuf {
        self.0.join("node.key")
    }

    /// The wallet's key (its public key is the wallet's address; coinbases pay it when mining).
    pub fn wallet_key(&self) -> PathBuf {
        self.0.join("wallet.key")
    }

    /// The config file.
    pub fn config(&self) -> PathBuf {
        self.0.join("config.json")
    }

    /// The chain database (redb).
    pub fn chain_db(&self) -> PathBuf {
        self.0.join("chain.redb")
    }

    /// A validator's last BFT vote, kept so that a restart never votes twice in one view.
    pub fn vote_journal(&self) -> PathBuf {
        self.0.join("votes.journal")
    }

    /// The RPC cookie (a random token, owner-only, rewritten at each start).
    pub fn cookie(&self) -> PathBuf {
        self.0.join(".cookie")
    }

    /// Creates the directory, both keys (if missing) and the config file (if missing).
    pub fn init(&self, config: &FileConfig) -> Result<(), ConfigError> {
        std::fs::create_dir_all(&self.0).map_err(|source| self.io(source))?;
        // The node's id must solve Kademlia's puzzle to be listed by other nodes; a wallet key need not.
        let puzzle = meshwork_coin::AppConfig::PUZZLE_DIFFICULTY;
        for (path, difficulty) in [(self.node_key(), puzzle), (self.wallet_key(), 0)] {
            if !path.exists() {
                Keypair::generate_with_puzzle(&mut rand_core::OsRng, difficulty).save(&path)?;
            }
        }
        if !self.config().exists() {
            let text = serde_json::to_string_pretty(config).unwrap_or_default();
            std::fs::write(self.config(), text).map_err(|source| self.io(source))?;
        }
        Ok(())
    }

    /// Replaces the config file (before the node first runs: a chain already stored follows the rules
    /// it was built with).
    pub fn write_config(&self, config: &FileConfig) -> Result<(), ConfigError> {
        let text = serde_json::to_string_pretty(config).unwrap_or_default();
        std::fs::write(self.config(), text).map_err(|source| self.io(source))
    }

    /// The node's id, its key created first if missing (with the S/Kademlia puzzle solved): a BFT
    /// network's validator set names its nodes before any starts.
    pub fn node_id(&self) -> Result<PeerId, ConfigError> {
        let path = self.node_key();
        if !path.exists() {
            std::fs::create_dir_all(&self.0).map_err(|source| self.io(source))?;
            let puzzle = meshwork_coin::AppConfig::PUZZLE_DIFFICULTY;
            Keypair::generate_with_puzzle(&mut rand_core::OsRng, puzzle).save(&path)?;
        }
        Ok(Keypair::load(&path)?.peer_id())
    }

    /// Reads the config file.
    pub fn load_config(&self) -> Result<FileConfig, ConfigError> {
        let path = self.config();
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Io {
            path: path.clone(),
            source,
        })?;
        serde_json::from_str(&text).map_err(|source| ConfigError::Parse { path, source })
    }

    /// Reads the RPC cookie.
    pub fn read_cookie(&self) -> Result<String, ConfigError> {
        let path = self.cookie();
        std::fs::read_to_string(&path)
            .map(|text| text.trim().to_string())
            .map_err(|source| ConfigError::Io { path, source })
    }

    fn io(&self, source: std::io::Error) -> ConfigError {
        ConfigError::Io {
            path: self.0.clone(),
            source,
        }
    }
}

/// Unix seconds from the wall clock (for a new network's genesis time; protocol code gets `now` from the
/// node runtime instead).
#[allow(clippy::disallowed_methods)] // The application owns the real clock (ARCHITECTURE.md).
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}
