//! The transaction rules, as pure functions of a transaction and the coins it spends.

use std::collections::HashSet;

use crate::{Amount, Coin, Coinbase, LedgerConfig, Transfer, TxError};

/// Rules that need nothing but the transaction: inputs and outputs present, output amounts in range,
/// no outpoint spent twice.
pub(crate) fn check_transfer_shape(tx: &Transfer) -> Result<(), TxError> {
    if tx.inputs.is_empty() {
        return Err(TxError::NoInputs);
    }
    check_outputs(&tx.outputs)?;
    let mut seen = HashSet::with_capacity(tx.inputs.len());
    for input in &tx.inputs {
        if !seen.insert(input.prevout) {
            return Err(TxError::DuplicateInput {
                outpoint: input.prevout,
            });
        }
    }
    Ok(())
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
