//! The transaction rules, as pure functions of a transaction and the coins it spends.

use std::collections::HashSet;

use crate::{Amount, Coin, Coinbase, LedgerConfig, Transfer, TxError};

/// Rules that need nothing but the transaction: inputs and outputs present, output amounts in range,
/// no outpoint spent twice, every signature's scalar canonical. These are all the rules an orphan (whose
/// parents, hence the owners and amounts its signatures are checked against, are unknown) can be held to.
pub(crate) fn check_transfer_shape(tx: &Transfer) -> Result<(), TxError> {
    if tx.inputs.is_empty() {
        return Err(TxError::NoInputs);
    }
    check_outputs(&tx.outputs)?;
    let mut seen = HashSet::with_capacity(tx.inputs.len());
    for (position, input) in tx.inputs.iter().enumerate() {
        if !seen.insert(input.prevout) {
            return Err(TxError::DuplicateInput {
                outpoint: input.prevout,
            });
        }
        if !scalar_is_canonical(input.signature.as_bytes()) {
            return Err(TxError::MalformedSignature { input: position });
        }
    }
    Ok(())
}

/// The order of the ed25519 group, ℓ = 2^252 + 27742317777372353535851937790883648493, little-endian.
const GROUP_ORDER: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
];

/// Whether a signature's `s` (its last 32 bytes, little-endian) is below ℓ. ZIP-215 (which verification
/// follows) rejects every signature whose `s` is not, whatever the key and message, so this much of a
/// signature can be judged without the spent output.
fn scalar_is_canonical(signature: &[u8; 64]) -> bool {
    let s = &signature[32..];
    for i in (0..32).rev() {
        if s[i] != GROUP_ORDER[i] {
            return s[i] < GROUP_ORDER[i];
        }
    }
    false // s == ℓ
}

/// The coinbase's own rules: outputs present and in range. (Its height and its total are block rules.)
pub(crate) fn check_coinbase_shape(coinbase: &Coinbase) -> Result<Amount, TxError> {
    check_outputs(&coinbase.outputs)
}

/// Outputs present, each and their sum within `0..=MAX_SUPPLY`. Returns the sum.
fn check_outputs(outputs: &[crate::TxOut]) -> Result<Amount, TxError> {
    if outputs.is_empty() {
        return Err(TxError::NoOutputs);
    }
    Amount::checked_sum(outputs.iter().map(|output| output.amount)).ok_or(TxError::AmountOutOfRange)
}

/// Rules against the coins spent (`coins[i]` is what input `i` spends): coinbase maturity at
/// `spend_height`, inputs in range, inputs ≥ outputs. Returns the fee. Signatures are checked separately,
/// in batches.
pub(crate) fn check_transfer_value(
    tx: &Transfer,
    coins: &[Coin],
    spend_height: u64,
    config: &LedgerConfig,
) -> Result<Amount, TxError> {
    for (input, coin) in tx.inputs.iter().zip(coins) {
        if coin.coinbase {
            let spendable = coin.height.saturating_add(config.coinbase_maturity);
            if spend_height < spendable {
                return Err(TxError::ImmatureCoinbase {
                    outpoint: input.prevout,
                    created: coin.height,
                    spendable,
                });
            }
        }
    }
    let inputs =
        Amount::checked_sum(coins.iter().map(|coin| coin.output.amount)).ok_or(TxError::AmountOutOfRange)?;
    let outputs = check_outputs(&tx.outputs)?;
    inputs
        .checked_sub(outputs)
        .ok_or(TxError::Overspend { inputs, outputs })
}
