//! Building payments from a wallet's coins (coin selection: largest first).

use meshwork_identity::{Keypair, PeerId};
use meshwork_ledger::{Amount, MempoolConfig, OutPoint, Transaction, Transfer, TxOut};

/// Why a payment could not be built.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// The spendable coins do not cover amount plus fee.
    #[error("insufficient funds: {have} spendable, {need} needed")]
    InsufficientFunds {
        /// What the wallet can spend.
        have: Amount,
        /// Amount plus fee.
        need: Amount,
    },
    /// Amount plus fee overflows.
    #[error("amount out of range")]
    Overflow,
}

/// Pays `amount` to `to` from `coins` (owned by `key`), leaving `fee`, with change back to `key`.
pub fn pay(
    key: &Keypair,
    coins: Vec<(OutPoint, Amount)>,
    to: PeerId,
    amount: Amount,
    fee: Amount,
) -> Result<Transfer, WalletError> {
    pay_many(key, coins, vec![TxOut { amount, owner: to }], fee)
}

/// Pays every output of `payments` from `coins` (owned by `key`), leaving `fee`, change back to `key`.
///
/// A `fee` below the minimum relay fee for the transaction's size (the default
/// [`MempoolConfig::min_relay_fee_rate`] per byte) is raised to it: nodes would refuse less. The amounts
/// in `coins` are signed over (the sighash commits to them), so a backend that reported a wrong amount
/// makes a transaction every node refuses, not one that burns the difference as fee.
pub fn pay_many(
    key: &Keypair,
    mut coins: Vec<(OutPoint, Amount)>,
    payments: Vec<TxOut>,
    fee: Amount,
) -> Result<Transfer, WalletError> {
    coins.sort_by_key(|(_, value)| std::cmp::Reverse(*value));
    let relay = MempoolConfig::default();
    let mut fee = fee;
    // A higher fee may pick another coin and so grow the transaction: a few rounds settle it (inputs
    // are capped at 64).
    let mut tx = build(key, &coins, &payments, fee)?;
    for _ in 0..8 {
        let min_fee = relay.min_relay_fee(Transaction::Transfer(tx.clone()).encoded_len());
        if fee >= min_fee {
            break;
        }
        fee = min_fee;
        tx = build(key, &coins, &payments, fee)?;
    }
    Ok(tx)
}

/// One payment from `coins` (largest first), leaving exactly `fee`.
fn build(
    key: &Keypair,
    coins: &[(OutPoint, Amount)],
    payments: &[TxOut],
    fee: Amount,
) -> Result<Transfer, WalletError> {
    let amount = Amount::checked_sum(payments.iter().map(|out| out.amount)).ok_or(WalletError::Overflow)?;
    let need = amount.checked_add(fee).ok_or(WalletError::Overflow)?;
    let mut picked = Vec::new();
    let mut total = Amount::ZERO;
    for &(point, value) in coins {
        if total >= need || picked.len() >= 64 {
            break;
        }
        total = total.checked_add(value).ok_or(WalletError::Overflow)?;
        picked.push((point, value, key));
    }
    if total < need {
        return Err(WalletError::InsufficientFunds { have: total, need });
    }
    let mut outputs = payments.to_vec();
    let change = total.checked_sub(need).unwrap_or(Amount::ZERO);
    if change > Amount::ZERO {
        outputs.push(TxOut {
            amount: change,
            owner: key.peer_id(),
        });
    }
    Ok(Transfer::signed(&picked, outputs))
}

/// Parses an amount in coins with up to eight decimals (`"1.5"`).
pub fn parse_amount(text: &str) -> Option<Amount> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
    if frac.len() > 8 {
        return None;
    }
    let whole: u64 = if whole.is_empty() { 0 } else { whole.parse().ok()? };
    let frac_units: u64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<8}").parse().ok()?
    };
    Amount::from_units(whole.checked_mul(Amount::COIN)?.checked_add(frac_units)?).into()
}
