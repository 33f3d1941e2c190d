//! Transactions: outputs owned by a public key, inputs that spend them with a signature.

use meshwork_identity::{Hash, Keypair, Namespace, PeerId, Signature};
use meshwork_wire::{BoundedBytes, BoundedVec};
use serde::{Deserialize, Serialize};

use crate::Amount;

/// The most inputs one transaction may have (checked while decoding).
pub const MAX_INPUTS: usize = 1024;
/// The most outputs one transaction may have (checked while decoding).
pub const MAX_OUTPUTS: usize = 1024;
/// The most free-form bytes a coinbase may carry (an extra nonce, a miner's tag).
pub const COINBASE_EXTRA_MAX: usize = 64;

/// The signing namespace of transaction inputs: an input signature is made over the transaction's
/// [sighash](Transfer::sighash) in this namespace, so it can never be replayed as any other meshwork
/// signature.
pub const TX_SIGNING: Namespace = Namespace::new(b"meshwork/ledger/tx/1");

// Hash domains (blake3 key derivation contexts). Each kind of hashed object has its own.
const TXID_DOMAIN: &str = "meshwork ledger 2026 txid v1";
// v2: the sighash commits to the spent outputs (v1 covered only the outpoints and the new outputs).
const SIGHASH_DOMAIN: &str = "meshwork ledger 2026 sighash v2";

/// A transaction id: the blake3 hash (in its own domain) of the transaction's canonical encoding,
/// signatures included.
pub type TxId = Hash;

/// A reference to one output of an earlier transaction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OutPoint {
    /// The transaction that created the output.
    pub txid: TxId,
    /// The output's position in that transaction.
    pub index: u32,
}

/// An output: an amount, spendable by the holder of `owner`'s secret key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TxOut {
    /// How much the output holds.
    pub amount: Amount,
    /// The public key whose signature spends it.
    pub owner: PeerId,
}

/// An input: the output it spends and the owner's signature over the spending transaction's sighash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TxIn {
    /// The output spent.
    pub prevout: OutPoint,
    /// `owner.sign(TX_SIGNING, sighash)` by the spent output's owner, over the
    /// [sighash](Transfer::sighash) of the transaction and the outputs it spends.
    pub signature: Signature,
}

/// A transaction that moves existing coin: it spends outputs and creates new ones.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Transfer {
    /// The outputs spent, each with its owner's signature.
    pub inputs: BoundedVec<TxIn, MAX_INPUTS>,
    /// The outputs created.
    pub outputs: BoundedVec<TxOut, MAX_OUTPUTS>,
}

/// What a signature commits to: the transaction without its signatures, and the outputs it spends.
///
/// Committing to the spent outputs (amount and owner of every input, like BIP143's amount and BIP341's
/// `sha_amounts` and `sha_scriptpubkeys`) means a signer that was told a wrong amount for a coin (a lying
/// wallet backend, say) makes a signature that does not verify, instead of a valid transaction that burns
/// the difference as fee. Every input commits to *all* spent outputs, as in BIP341: a signer of one input
/// also fixes what the other inputs are worth, so the fee it agreed to cannot grow behind its back.
#[derive(Serialize)]
struct SighashView<'a> {
    prevouts: Vec<&'a OutPoint>,
    spent: &'a [TxOut],
    outputs: &'a BoundedVec<TxOut, MAX_OUTPUTS>,
}

impl Transfer {
    /// The digest every input signs: blake3 (in the sighash domain) of the canonical encoding of the
    /// spent outpoints, the outputs they spend (`spent[i]` is what input `i` spends: its amount and
    /// owner) and the new outputs; the transaction with its signatures left out, plus what it spends.
    pub fn sighash(&self, spent: &[TxOut]) -> Hash {
        let view = SighashView {
            prevouts: self.inputs.iter().map(|input| &input.prevout).collect(),
            spent,
            outputs: &self.outputs,
        };
        Hash::derive(SIGHASH_DOMAIN, &canonical_bytes(&view))
    }

    /// Builds a signed transfer: `spends` gives, for each input, the outpoint, the amount of the coin it
    /// spends (as the signer believes it to be; the signature commits to it) and the key that owns it.
    ///
    /// # Panics
    /// If there are more than [`MAX_INPUTS`] spends or [`MAX_OUTPUTS`] outputs.
    pub fn signed(spends: &[(OutPoint, Amount, &Keypair)], outputs: Vec<TxOut>) -> Self {
        let placeholder = Signature::from_bytes([0; 64]);
        let inputs: Vec<TxIn> = spends
            .iter()
            .map(|(prevout, _, _)| TxIn {
                prevout: *prevout,
                signature: placeholder,
            })
            .collect();
        let spent: Vec<TxOut> = spends
            .iter()
            .map(|(_, amount, key)| TxOut {
                amount: *amount,
                owner: key.peer_id(),
            })
            .collect();
        let mut tx = Self {
            inputs: inputs.try_into().expect("at most MAX_INPUTS spends"),
            outputs: outputs.try_into().expect("at most MAX_OUTPUTS outputs"),
        };
        let sighash = tx.sighash(&spent);
        let signatures: Vec<Signature> = spends
            .iter()
            .map(|(_, _, key)| key.sign(TX_SIGNING, sighash.as_bytes()))
            .collect();
        let mut inputs = tx.inputs.into_inner();
        for (input, signature) in inputs.iter_mut().zip(signatures) {
            input.signature = signature;
        }
        tx.inputs = inputs.try_into().expect("length unchanged");
        tx
    }
}

/// The first transaction of every block: it creates the block subsidy and collects the fees.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Coinbase {
    /// The height of the block it belongs to. It makes every coinbase, hence every txid, unique.
    pub height: u64,
    /// The outputs created (at most subsidy plus fees in total).
    pub outputs: BoundedVec<TxOut, MAX_OUTPUTS>,
    /// Free bytes for the miner (an extra nonce, a tag). Not interpreted.
    pub extra: BoundedBytes<COINBASE_EXTRA_MAX>,
}

/// A ledger transaction.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Transaction {
    /// Creates new coin; only as the first transaction of a block.
    Coinbase(Coinbase),
    /// Moves existing coin.
    Transfer(Transfer),
}

impl Transaction {
    /// The transaction id: blake3 (in the txid domain) of the canonical encoding, signatures included.
    pub fn txid(&self) -> TxId {
        Hash::derive(TXID_DOMAIN, &self.to_bytes())
    }

    /// The canonical (postcard) encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        canonical_bytes(self)
    }

    /// The encoded size in bytes (what fee rates and block sizes count).
    pub fn encoded_len(&self) -> usize {
        meshwork_wire::encoded_len(self).unwrap_or(usize::MAX)
    }

    /// The outputs this transaction creates.
    pub fn outputs(&self) -> &[TxOut] {
        match self {
            Self::Coinbase(coinbase) => &coinbase.outputs,
            Self::Transfer(transfer) => &transfer.outputs,
        }
    }

    /// The inputs (none for a coinbase).
    pub fn inputs(&self) -> &[TxIn] {
        match self {
            Self::Coinbase(_) => &[],
            Self::Transfer(transfer) => &transfer.inputs,
        }
    }

    /// Whether this is a coinbase.
    pub fn is_coinbase(&self) -> bool {
        matches!(self, Self::Coinbase(_))
    }
}

/// The postcard encoding of a ledger type. Ledger types contain no maps or unsized sequences, so encoding
/// cannot fail.
pub(crate) fn canonical_bytes<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    meshwork_wire::encode(value).expect("ledger types always encode")
}
