//! Building payments from a wallet's coins (coin selection: largest first).

use meshwork_identity::{Keypair, PeerId};
use meshwork_ledger::{Amount, OutPoint, Transfer, TxOut};

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
pub fn pay_many(
    key: &Keypair,
    mut coins: Vec<(OutPoint, Amount)>,
    payments: Vec<TxOut>,
    fee: Amount,
) -> Result<Transfer, WalletError> {
    let amount = Amount::checked_sum(payments.iter().map(|out| out.amount)).ok_or(WalletError::Overflow)?;
    let need = amount.checked_add(fee).ok_or(WalletError::Overflow)?;
    coins.sort_by_key(|(_, value)| std::cmp::Reverse(*value));
    let mut picked = Vec::new();
    let mut total = Amount::ZERO;
    for (point, value) in coins {
        if total >= need || picked.len() >= 64 {
            break;
        }
        total = total.checked_add(value).ok_or(WalletError::Overflow)?;
        picked.push(point);
    }
    if total < need {
        return Err(WalletError::InsufficientFunds { have: total, need });
    }
    let mut outputs = payments;
    let change = total.checked_sub(need).unwrap_or(Amount::ZERO);
    if change > Amount::ZERO {
        outputs.push(TxOut {
            amount: change,
            owner: key.peer_id(),
        });
    }
    let spends: Vec<(OutPoint, &Keypair)> = picked.into_iter().map(|point| (point, key)).collect();
    Ok(Transfer::signed(&spends, outputs))
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
