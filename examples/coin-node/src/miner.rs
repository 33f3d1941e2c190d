//! The miner: a block template from the chain (inside the node task), nonce search in
//! `spawn_blocking` in bounded chunks, submit and publish on success, a fresh template when the tip
//! changes or the template is a few seconds old (to pick up new transactions and a current timestamp).
// The miner's threads are the tokio side of the node: templates age by the wall clock.
#![allow(clippy::disallowed_methods)]

use std::time::Duration;

use meshwork_consensus::pow::mine;
use meshwork_ledger::Block;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::{info, warn};

use crate::api::NodeApi;

/// Nonces one thread tries per chunk before the miner checks the tip again.
pub const NONCES_PER_CHUNK: u64 = 20_000;

/// A template older than this is rebuilt.
pub const TEMPLATE_MAX_AGE: Duration = Duration::from_secs(3);

/// How many hashes a chunk that started at nonce `start` tried. Lane `l` of `threads` tries
/// `start + l + k·threads` for `k = 0, 1, ...`; when one lane finds a nonce the others stop at about the
/// same `k`, so a solved chunk tried about `(k + 1)·threads` (an unsolved one all of its nonces).
fn hashes_tried(start: u64, solved: Option<u64>, threads: usize) -> u64 {
    let threads = threads.max(1) as u64;
    match solved {
        Some(nonce) => (nonce.wrapping_sub(start) / threads + 1) * threads,
        None => NONCES_PER_CHUNK * threads,
    }
}

/// Mines on `api`'s chain with `threads` threads, paying its wallet, until `stop` turns true.
pub async fn run(api: NodeApi, threads: usize, stop: watch::Receiver<bool>) {
    let owner = api.wallet().peer_id();
    let mut nonce_start: u64 = u64::from_le_bytes(owner.as_bytes()[..8].try_into().unwrap_or_default());
    while !*stop.borrow() {
        let template = api
            .app()
            .call(move |app, now, _| app.chain().block_template(owner, now.as_duration().as_secs()))
            .await;
        let template: Block = match template {
            Ok(Ok(block)) => block,
            Ok(Err(error)) => {
                warn!(%error, "no block template");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
            Err(_) => return,
        };
        let parent = template.header.parent;
        let built = Instant::now();
        loop {
            if *stop.borrow() {
                return;
            }
            let mut header = template.header;
            header.nonce = nonce_start;
            nonce_start = nonce_start.wrapping_add(NONCES_PER_CHUNK * threads as u64);
            let solved = tokio::task::spawn_blocking(move || mine(header, threads, NONCES_PER_CHUNK))
                .await
                .ok()
                .flatten();
            api.add_hashes(hashes_tried(header.nonce, solved.map(|h| h.nonce), threads));
            if let Some(header) = solved {
                let block = Block {
                    header,
                    ..template.clone()
                };
                info!(height = header.height, id = %header.id(), txs = block.txs.len(), "mined a block");
                // Sync connects it and announces it to every peer: the one block relay path.
                if api.submit_block(block).await.is_err() {
                    return;
                }
                break;
            }
            let Ok((_, tip)) = api.tip().await else {
                return;
            };
            if tip != parent || built.elapsed() > TEMPLATE_MAX_AGE {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunk_counts_the_nonces_its_lanes_reached() {
        assert_eq!(hashes_tried(100, None, 2), 2 * NONCES_PER_CHUNK);
        // One thread: nonces 100..=104 tried.
        assert_eq!(hashes_tried(100, Some(104), 1), 5);
        // Two lanes, lane 1 found 100 + 1 + 3·2: each lane reached k = 3.
        assert_eq!(hashes_tried(100, Some(107), 2), 8);
        // The nonce space wraps.
        assert_eq!(hashes_tried(u64::MAX, Some(1), 1), 3);
    }
}
