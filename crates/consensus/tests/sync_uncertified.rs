//! A certified chain's header index against free headers: under the certified rule a header costs
//! nothing to make, so a peer that floods made-up ones holds at most its allowance of them in the
//! index, and an honest peer's proposal is not pruned for them.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use meshwork_consensus::bft::ValidatorSet;
use meshwork_consensus::sync::{ChainSync, Message};
use meshwork_consensus::{Certificate, Chain, ChainConfig, ChainRule, SyncConfig, genesis_block};
use meshwork_identity::{Hash, Keypair, PeerId};
use meshwork_ledger::{Block, BlockHeader, BlockId, MemoryStore};
use meshwork_wire::{Input, Instant, Protocol};

type Node = ChainSync<MemoryStore>;

const NOW: u64 = 4_000_000_000;
const ALLOWANCE: usize = 8;
/// The header index's bound: a flood of more made-up headers than this pruned honest ones.
const MAX_HEADERS: usize = 64;

fn now() -> Instant {
    Instant::from_duration(Duration::from_secs(NOW))
}

fn validators() -> Vec<Keypair> {
    (1..=4).map(|i| Keypair::from_seed([i; 32])).collect()
}

fn config() -> ChainConfig {
    let validators = validators().iter().map(Keypair::peer_id).collect();
    ChainConfig {
        rule: ChainRule::Certified(ValidatorSet::new(validators).unwrap()),
        max_headers: MAX_HEADERS,
        ..ChainConfig::regtest()
    }
}

fn node() -> Node {
    let config = config();
    let genesis = genesis_block(&config);
    let chain = Chain::open(MemoryStore::new(), config, genesis, NOW).unwrap();
    let sync = SyncConfig {
        max_uncertified_headers: ALLOWANCE,
        ..SyncConfig::default()
    };
    ChainSync::new(chain, sync)
}

fn deliver(node: &mut Node, from: PeerId, msg: Message) {
    let mut out = Vec::new();
    node.handle(now(), Input::Message { from, msg }, &mut out);
}

fn connect(node: &mut Node, peer: PeerId) {
    let mut out = Vec::new();
    node.handle(now(), Input::PeerUp(peer), &mut out);
}

/// A header on the tip, told apart by `tag` (any nonce is valid: the hash is not checked).
fn header_on_tip(node: &Node, tag: u64) -> BlockHeader {
    let owner = Keypair::from_seed([200; 32]).peer_id();
    let mut header = node.chain().block_template(owner, NOW).unwrap().header;
    header.nonce = tag;
    header.merkle_root = Hash::digest(&tag.to_be_bytes());
    header
}

/// `len` made-up headers in a chain on `parent`.
fn made_up_chain(parent: BlockHeader, len: usize, tag: u64) -> Vec<BlockHeader> {
    let mut chain = Vec::with_capacity(len);
    let mut parent = parent;
    for _ in 0..len {
        let header = BlockHeader {
            parent: parent.id(),
            height: parent.height + 1,
            timestamp: parent.timestamp + 1,
            nonce: tag,
            ..parent
        };
        chain.push(header);
        parent = header;
    }
    chain
}

/// Connects an honest peer and a flooder.
fn honest_and_flooder(node: &mut Node) -> (PeerId, PeerId) {
    let (honest, flooder) = (
        Keypair::from_seed([50; 32]).peer_id(),
        Keypair::from_seed([51; 32]).peer_id(),
    );
    connect(node, honest);
    connect(node, flooder);
    (honest, flooder)
}

#[test]
fn a_flood_of_made_up_headers_costs_the_flooder_its_own_and_spares_an_honest_proposal() {
    let mut node = node();
    let (honest, flooder) = honest_and_flooder(&mut node);
    // A leader's proposal: one block on the tip, announced by an honest peer.
    let proposal = header_on_tip(&node, 1);
    deliver(&mut node, honest, Message::NewTip(proposal));
    assert!(node.chain().header(&proposal.id()).is_some());
    // The flooder: branches of made-up headers on the tip, higher than the proposal (the index
    // pruned the lowest branches first), four times as many as the index holds.
    let mut sent = Vec::new();
    for tag in 0..(4 * MAX_HEADERS as u64) {
        let branch = made_up_chain(header_on_tip(&node, 1_000 + tag), 3, tag);
        for header in std::iter::once(header_on_tip(&node, 1_000 + tag)).chain(branch) {
            deliver(&mut node, flooder, Message::NewTip(header));
            sent.push(header.id());
        }
    }
    assert!(
        node.chain().header(&proposal.id()).is_some(),
        "the honest proposal was pruned"
    );
    let held = sent.iter().filter(|id| node.chain().header(id).is_some()).count();
    assert!(held <= ALLOWANCE, "{held} made-up headers held");
    assert!(held > 0, "the newest ones are taken");
}

#[test]
fn the_chosen_block_is_never_forgotten_for_its_senders_later_headers() {
    let mut node = node();
    let peer = Keypair::from_seed([50; 32]).peer_id();
    connect(&mut node, peer);
    // The peer's first header becomes the chosen block: the certificates vouch for it, and the
    // peer's later headers do not push it out.
    let chosen = header_on_tip(&node, 1);
    deliver(&mut node, peer, Message::NewTip(chosen));
    let mut out = Vec::new();
    node.follow(now(), chosen.id(), 1, &mut out).unwrap();
    for header in made_up_chain(chosen, 2 * ALLOWANCE, 7) {
        deliver(&mut node, peer, Message::NewTip(header));
    }
    assert!(node.chain().header(&chosen.id()).is_some());
}

#[test]
fn made_up_whole_blocks_are_charged_as_their_headers() {
    let mut node = node();
    let (honest, flooder) = honest_and_flooder(&mut node);
    let owner = Keypair::from_seed([200; 32]).peer_id();
    let proposal = node.chain().block_template(owner, NOW).unwrap();
    deliver(&mut node, honest, Message::Block(proposal.clone()));
    let mut sent = Vec::new();
    for tag in 0..(4 * MAX_HEADERS as u64) {
        let mut block = proposal.clone();
        block.header.nonce = 1_000 + tag;
        sent.push(block.id());
        deliver(&mut node, flooder, Message::Block(block));
    }
    assert!(node.chain().block(&proposal.id()).unwrap().is_some());
    let held = sent.iter().filter(|id| node.chain().header(id).is_some()).count();
    assert!(held <= ALLOWANCE, "{held} made-up blocks held");
    let bodies = sent
        .iter()
        .filter(|id| node.chain().block(id).unwrap().is_some())
        .count();
    assert_eq!(bodies, held, "a forgotten header's body goes with it");
}

/// How many of `sent` the index holds.
fn held(node: &Node, sent: &[BlockId]) -> usize {
    sent.iter().filter(|id| node.chain().header(id).is_some()).count()
}

/// Sends `branches` made-up headers, each its own branch on the tip; returns their ids.
fn flood(node: &mut Node, flooder: PeerId, branches: u64, tag: u64) -> Vec<BlockId> {
    let mut sent = Vec::new();
    for n in 0..branches {
        let header = header_on_tip(node, tag + n);
        deliver(node, flooder, Message::NewTip(header));
        sent.push(header.id());
    }
    sent
}

#[test]
fn a_flooder_that_reconnects_does_not_start_its_allowance_afresh() {
    let mut node = node();
    let (honest, flooder) = honest_and_flooder(&mut node);
    let proposal = header_on_tip(&node, 1);
    deliver(&mut node, honest, Message::NewTip(proposal));
    let mut sent = Vec::new();
    for round in 0..10 {
        sent.extend(flood(
            &mut node,
            flooder,
            4 * ALLOWANCE as u64,
            1_000 * (round + 1),
        ));
        let mut out = Vec::new();
        node.handle(now(), Input::PeerDown(flooder), &mut out);
        connect(&mut node, flooder);
    }
    assert!(node.chain().header(&proposal.id()).is_some());
    // What it was charged before it left stays charged, in the allowance of peers that left.
    let held = held(&node, &sent);
    assert!(held <= 2 * ALLOWANCE, "{held} made-up headers held");
}

/// Blocks 1 to `n` on genesis, made by a chain of their own (each certified there in turn).
fn blocks(n: u64) -> Vec<Block> {
    let config = config();
    let mut source = Chain::open(MemoryStore::new(), config.clone(), genesis_block(&config), NOW).unwrap();
    let owner = Keypair::from_seed([201; 32]).peer_id();
    (1..=n)
        .map(|round| {
            let block = source.block_template(owner, NOW).unwrap();
            source.submit_block(block.clone(), NOW).unwrap();
            source.follow(block.id(), round, NOW).unwrap();
            block
        })
        .collect()
}

#[test]
fn siblings_of_the_final_block_are_charged() {
    let mut node = node();
    let (_, flooder) = honest_and_flooder(&mut node);
    // Block 1 is final and connected.
    let first = blocks(1).remove(0);
    let genesis = genesis_block(&config()).id();
    let votes: Vec<_> = validators()[..3]
        .iter()
        .map(|key| Certificate::sign_vote(key, &genesis, &first.id(), 1, 1, 0))
        .collect();
    let certificate = Certificate {
        block: first.id(),
        height: 1,
        round: 1,
        parent_round: 0,
        votes: votes.try_into().unwrap(),
    };
    let chain = node.chain_mut();
    chain.submit_block(first.clone(), NOW).unwrap();
    chain.finalize(certificate, NOW).unwrap();
    assert_eq!(node.chain().tip().id, first.id());
    // Headers beside it carry as much work, so the work floor takes them: they are charged.
    let mut sent = Vec::new();
    for tag in 0..(4 * MAX_HEADERS as u64) {
        let sibling = BlockHeader {
            nonce: 7_000 + tag,
            ..first.header
        };
        deliver(&mut node, flooder, Message::NewTip(sibling));
        sent.push(sibling.id());
    }
    let held = held(&node, &sent);
    assert!(held <= ALLOWANCE, "{held} siblings of the final block held");
}

#[test]
fn orphans_are_charged_to_their_sender_when_they_join_the_index() {
    let mut node = node();
    let (_, flooder) = honest_and_flooder(&mut node);
    let chain = blocks(4 * ALLOWANCE as u64);
    // All but the first wait as orphans; the first brings them into the index.
    for block in chain.iter().skip(1) {
        deliver(&mut node, flooder, Message::Block(block.clone()));
    }
    deliver(&mut node, flooder, Message::Block(chain[0].clone()));
    let sent: Vec<BlockId> = chain.iter().map(Block::id).collect();
    let held = held(&node, &sent);
    assert!(held <= ALLOWANCE, "{held} of its blocks held");
    assert!(held > 0);
}

#[test]
fn a_header_another_peer_built_on_is_not_forgotten_for_the_flooders_flood() {
    let mut node = node();
    let (honest, flooder) = honest_and_flooder(&mut node);
    // The flooder relays a block first; an honest peer announces a child of it.
    let first = header_on_tip(&node, 1);
    deliver(&mut node, flooder, Message::NewTip(first));
    let child = made_up_chain(first, 1, 2)[0];
    deliver(&mut node, honest, Message::NewTip(child));
    flood(&mut node, flooder, 4 * ALLOWANCE as u64, 1_000);
    assert!(
        node.chain().header(&child.id()).is_some(),
        "the honest child went with its parent"
    );
    assert!(node.chain().header(&first.id()).is_some());
}

/// A certificate for block `n` of `chain` (signed by three of the four validators).
fn certificate_for(chain: &[Block], n: usize) -> Certificate {
    let block = &chain[n - 1];
    let genesis = genesis_block(&config()).id();
    let (height, round) = (n as u64, n as u64);
    let votes: Vec<_> = validators()[..3]
        .iter()
        .map(|key| Certificate::sign_vote(key, &genesis, &block.id(), height, round, round - 1))
        .collect();
    Certificate {
        block: block.id(),
        height,
        round,
        parent_round: round - 1,
        votes: votes.try_into().unwrap(),
    }
}

#[test]
fn branches_below_a_final_block_not_connected_yet_are_charged() {
    let mut node = node();
    let (_, flooder) = honest_and_flooder(&mut node);
    // Catching up: the headers of blocks 1 to 8 and a certificate for block 8, no bodies yet.
    let chain = blocks(8);
    let headers: Vec<BlockHeader> = chain.iter().map(|block| block.header).collect();
    node.chain_mut().submit_headers(&headers, NOW).unwrap();
    node.chain_mut()
        .finalize(certificate_for(&chain, 8), NOW)
        .unwrap();
    assert_eq!(node.chain().tip().height, 0);
    // Branches that end at the final height carry its work: each one was free while block 8 was
    // not connected (the index took hundreds, pruning its lowest leaves).
    let sent = flood_to(&mut node, flooder, &headers, 8, 4..8, 4 * MAX_HEADERS);
    charged_and_final_chain_connects(&mut node, &sent, &chain);
}

/// `flooder` sends `count` made-up branches that end at height `top`, each off one of the blocks
/// `forks` of `headers` in turn; returns their ids.
fn flood_to(
    node: &mut Node,
    flooder: PeerId,
    headers: &[BlockHeader],
    top: usize,
    forks: std::ops::Range<usize>,
    count: usize,
) -> Vec<BlockId> {
    let mut sent = Vec::new();
    for (n, fork) in forks.cycle().take(count).enumerate() {
        let branch = made_up_chain(headers[fork - 1], top - fork, 9_000 + n as u64);
        sent.extend(branch.iter().map(BlockHeader::id));
        deliver(node, flooder, Message::Headers(branch.try_into().unwrap()));
    }
    sent
}

/// At most the allowance of `sent` is held, `chain` is whole in the index, and its blocks connect.
fn charged_and_final_chain_connects(node: &mut Node, sent: &[BlockId], chain: &[Block]) {
    let held = held(node, sent);
    assert!(
        held <= ALLOWANCE,
        "{held} made-up headers held below the final block"
    );
    let final_chain: Vec<BlockId> = chain.iter().map(Block::id).collect();
    assert_eq!(self::held(node, &final_chain), chain.len());
    for block in chain {
        node.chain_mut().submit_block(block.clone(), NOW).unwrap();
    }
    assert_eq!(node.chain().tip().id, chain[chain.len() - 1].id());
}

#[test]
fn a_flooder_that_relays_an_honest_header_first_cannot_take_it_with_its_flood() {
    let mut node = node();
    let (honest, flooder) = honest_and_flooder(&mut node);
    // The flooder relays the honest proposal ahead of its honest sender, then floods its allowance.
    let proposal = header_on_tip(&node, 1);
    deliver(&mut node, flooder, Message::NewTip(proposal));
    deliver(&mut node, honest, Message::NewTip(proposal));
    let sent = flood(&mut node, flooder, 4 * ALLOWANCE as u64, 1_000);
    assert!(
        node.chain().header(&proposal.id()).is_some(),
        "the honest proposal stays: its honest relay holds it"
    );
    let held = held(&node, &sent);
    assert!(held <= ALLOWANCE, "{held} made-up headers held");
}

#[test]
fn a_flooder_that_relays_an_honest_block_first_cannot_take_it_with_its_flood() {
    let mut node = node();
    let (honest, flooder) = honest_and_flooder(&mut node);
    let mut proposal = blocks(1).remove(0);
    proposal.header.nonce = 77;
    deliver(&mut node, flooder, Message::Block(proposal.clone()));
    deliver(&mut node, honest, Message::Block(proposal.clone()));
    let sent = flood(&mut node, flooder, 4 * ALLOWANCE as u64, 1_000);
    let id = proposal.id();
    assert!(node.chain().header(&id).is_some(), "the header stays");
    assert!(node.chain().block(&id).unwrap().is_some(), "and its body");
    assert!(held(&node, &sent) <= ALLOWANCE);
}

#[test]
fn made_up_branches_below_a_final_block_whose_header_is_unknown_never_push_out_the_line_being_downloaded() {
    let mut node = node();
    let (honest, flooder) = honest_and_flooder(&mut node);
    // Catching up: a certificate for block 8 first, its header not known yet.
    let chain = blocks(8);
    node.chain_mut()
        .finalize(certificate_for(&chain, 8), NOW)
        .unwrap();
    // The honest peer has delivered headers 1 to 5, and is the one chosen to download the rest from.
    let line: Vec<BlockHeader> = chain[..5].iter().map(|block| block.header).collect();
    deliver(
        &mut node,
        honest,
        Message::Headers(line.clone().try_into().unwrap()),
    );
    let claim = Message::Status {
        tip: chain[7].id(),
        height: 8,
        work: 1 << 100,
    };
    deliver(&mut node, honest, claim);
    // Made-up branches off genesis, each longer than the line, fill the index; then each is taken
    // up to the final height, every header past the index's bound pruning its lowest leaf (none is
    // charged: below a final block whose header is unknown, nothing tells them apart yet).
    let genesis = genesis_block(&config()).header;
    let branches: Vec<Vec<BlockHeader>> = (0..(MAX_HEADERS as u64 / 7 + 1))
        .map(|tag| made_up_chain(genesis, 7, 20_000 + tag))
        .collect();
    for branch in &branches {
        deliver(
            &mut node,
            flooder,
            Message::Headers(branch.clone().try_into().unwrap()),
        );
    }
    for (tag, branch) in branches.iter().enumerate() {
        let top = made_up_chain(branch[6], 1, 30_000 + tag as u64);
        deliver(&mut node, flooder, Message::Headers(top.try_into().unwrap()));
    }
    let ids: Vec<BlockId> = line.iter().map(BlockHeader::id).collect();
    assert_eq!(held(&node, &ids), 5, "the line being downloaded is whole");
    // And it grows: the rest of the download reaches the final block, the index still full.
    let rest: Vec<BlockHeader> = chain[5..].iter().map(|block| block.header).collect();
    deliver(&mut node, honest, Message::Headers(rest.try_into().unwrap()));
    assert!(
        node.chain().header(&chain[7].id()).is_some(),
        "the final block's header came"
    );
}

#[test]
fn the_final_chain_is_followed_as_finality_moves_up_while_the_blocks_are_fetched() {
    let mut node = node();
    let (honest, flooder) = honest_and_flooder(&mut node);
    let chain = blocks(12);
    let headers: Vec<BlockHeader> = chain.iter().map(|block| block.header).collect();
    node.chain_mut().submit_headers(&headers, NOW).unwrap();
    // Block 8 final: its ancestry is found when a peer next relays a header.
    node.chain_mut()
        .finalize(certificate_for(&chain, 8), NOW)
        .unwrap();
    deliver(&mut node, honest, Message::NewTip(headers[7]));
    // Then block 12: the ancestry is extended from block 8's. The flooder relays the final headers
    // (vouched for: never charged, so never forgotten to make room), then floods branches off
    // blocks 5 to 11 that end at the final height: all charged.
    node.chain_mut()
        .finalize(certificate_for(&chain, 12), NOW)
        .unwrap();
    let final_headers = headers[8..].to_vec();
    deliver(
        &mut node,
        flooder,
        Message::Headers(final_headers.try_into().unwrap()),
    );
    let sent = flood_to(&mut node, flooder, &headers, 12, 5..12, 2 * MAX_HEADERS);
    charged_and_final_chain_connects(&mut node, &sent, &chain);
}
