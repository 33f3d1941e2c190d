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
