//! Serving budgets: requests are answered within a byte budget per peer and in total, one answer of each
//! kind in flight per peer, waiting requests in turn across peers; honest block download is not held up.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use meshwork_consensus::sync::{ChainSync, Event, Message, Timer};
use meshwork_consensus::{Chain, SyncConfig, genesis_block};
use meshwork_identity::PeerId;
use meshwork_ledger::MemoryStore;
use meshwork_wire::{Input, Instant, Output, Protocol};
use support::net::{Net, Node};
use support::{config, extend, key, open};

/// Blocks of the served chain (its headers answer is about 22 KB).
const HEIGHT: usize = 200;

/// A node at the tip of a chain of `HEIGHT` blocks, and the time just after its tip.
fn server(sync: SyncConfig) -> (Node, Instant) {
    let cfg = config();
    let mut chain = open(&cfg);
    extend(&mut chain, &key(1).peer_id(), HEIGHT, 60);
    let now = Instant::from_duration(Duration::from_secs(chain.tip().header.timestamp + 60));
    (ChainSync::new(chain, sync), now)
}

/// A hand-driven node: its `Serve` timers, and the bytes and answers it sent to each peer.
struct Driver {
    node: Node,
    now: Instant,
    timers: Vec<Instant>,
    bytes: BTreeMap<PeerId, u64>,
    /// Headers answers sent, by peer, with when.
    answers: Vec<(PeerId, Instant)>,
}

impl Driver {
    fn new(node: Node, now: Instant) -> Self {
        Self {
            node,
            now,
            timers: Vec::new(),
            bytes: BTreeMap::new(),
            answers: Vec::new(),
        }
    }

    fn input(&mut self, input: Input<Node>) {
        let mut out = Vec::new();
        self.node.handle(self.now, input, &mut out);
        for output in out {
            match output {
                Output::Send { to, msg } => {
                    if matches!(msg, Message::Status { .. }) {
                        continue;
                    }
                    if matches!(msg, Message::Headers(_)) {
                        self.answers.push((to, self.now));
                    }
                    let size = meshwork_wire::encoded_len(&msg).unwrap() as u64;
                    *self.bytes.entry(to).or_default() += size;
                }
                Output::Schedule { after, timer } => {
                    assert_eq!(timer, Timer::Serve, "no request of ours is outstanding");
                    self.timers.push(self.now + after);
                }
                Output::Emit(Event::PeerFaulted { peer, fault }) => {
                    panic!("{peer} faulted for asking: {fault:?}")
                }
                _ => {}
            }
        }
    }

    fn connect(&mut self, peer: PeerId) {
        self.input(Input::PeerUp(peer));
    }

    fn ask_headers(&mut self, from: PeerId) {
        let locator = vec![self.node.chain().block_id_at_height(0).unwrap()];
        let msg = Message::GetHeaders {
            locator: locator.try_into().unwrap(),
            stop: None,
        };
        self.input(Input::Message { from, msg });
    }

    /// Advances the clock to `until`, firing the timers due on the way.
    fn advance(&mut self, until: Instant) {
        loop {
            self.timers.sort();
            match self.timers.first() {
                Some(due) if *due <= until => {
                    let due = self.timers.remove(0);
                    self.now = self.now.max(due);
                    self.input(Input::Timer(Timer::Serve));
                }
                _ => break,
            }
        }
        self.now = until;
    }

    fn answers_to(&self, peer: PeerId) -> usize {
        self.answers.iter().filter(|(to, _)| *to == peer).count()
    }
}

/// The size of one full answer to a `GetHeaders` from genesis.
fn headers_answer_bytes(node: &Node) -> u64 {
    let headers: Vec<_> = (1..=HEIGHT as u64)
        .map(|h| {
            node.chain()
                .header(&node.chain().block_id_at_height(h).unwrap())
                .unwrap()
        })
        .collect();
    meshwork_wire::encoded_len(&Message::Headers(headers.try_into().unwrap())).unwrap() as u64
}

#[test]
fn ten_thousand_get_headers_in_one_instant_get_one_answer_and_one_waiting() {
    let (node, now) = server(SyncConfig::default());
    let answer = headers_answer_bytes(&node);
    let mut driver = Driver::new(node, now);
    let flooder = key(66).peer_id();
    driver.connect(flooder);
    for _ in 0..10_000 {
        driver.ask_headers(flooder);
    }
    // Before: 10,000 answers, 10,000 × 22 KB = 220 MB built at once. Now one, and one request waits.
    assert_eq!(driver.answers_to(flooder), 1);
    assert_eq!(driver.bytes[&flooder], answer);
    assert_eq!(driver.node.deferred_requests(&flooder), 1);
    let stats = driver.node.serve_stats();
    assert_eq!(stats.superseded, 9_998);
    assert_eq!(stats.deferred, 9_999);
    // The waiting one is answered once the first has drained at the serving rate; nothing waits after.
    let minute = now + Duration::from_secs(60);
    driver.advance(minute);
    assert_eq!(driver.answers_to(flooder), 2);
    assert_eq!(driver.node.deferred_requests(&flooder), 0);
    let unbounded = 10_000 * answer;
    println!(
        "10,000 GetHeaders in one instant: {} bytes answered (unbounded: {unbounded})",
        driver.bytes[&flooder]
    );
}

#[test]
fn a_minute_of_get_headers_every_millisecond_is_answered_within_the_serving_rate() {
    let sync = SyncConfig::default();
    let (node, start) = server(sync.clone());
    let answer = headers_answer_bytes(&node);
    let mut driver = Driver::new(node, start);
    let flooder = key(66).peer_id();
    driver.connect(flooder);
    let requests = 60_000u64;
    for i in 0..requests {
        driver.advance(start + Duration::from_millis(i));
        driver.ask_headers(flooder);
    }
    driver.advance(start + Duration::from_secs(60));
    let sent = driver.bytes[&flooder];
    // One answer in flight at a time, each in flight for its size at the serving rate: at most the
    // rate's worth over the minute, plus the answer that started last.
    let budget = 60 * sync.serve_bytes_per_sec + answer;
    let unbounded = requests * answer;
    println!("a minute of 60,000 GetHeaders: {sent} bytes answered (budget {budget}, unbounded {unbounded})");
    assert!(sent <= budget, "{sent} > {budget}");
    // And the flooder was still served, at about the rate: a busy peer is slowed, not starved.
    assert!(sent >= 55 * sync.serve_bytes_per_sec, "{sent}");
    assert!(driver.node.deferred_requests(&flooder) <= 1);
}

#[test]
fn a_small_budget_bounds_the_bytes_of_a_minute_to_burst_plus_rate() {
    // Per-peer budget smaller than one answer per second: the bucket, not the answer in flight, binds.
    let (node, start) = server(SyncConfig::default());
    let answer = headers_answer_bytes(&node);
    let sync = SyncConfig {
        serve_bytes_per_sec: answer / 4,
        serve_burst_bytes: 2 * answer,
        ..SyncConfig::default()
    };
    let (node, _) = server(sync.clone());
    let mut driver = Driver::new(node, start);
    let flooder = key(66).peer_id();
    driver.connect(flooder);
    for i in 0..6_000u64 {
        driver.advance(start + Duration::from_millis(10 * i));
        driver.ask_headers(flooder);
    }
    driver.advance(start + Duration::from_secs(60));
    let sent = driver.bytes[&flooder];
    let budget = sync.serve_burst_bytes + 60 * sync.serve_bytes_per_sec + answer;
    assert!(sent <= budget, "{sent} > {budget}");
    assert_eq!(sent % answer, 0);
    // 60 s at a quarter answer a second, after a burst of two: about 17 answers, not 6,000.
    assert!((15..=18).contains(&(sent / answer)), "{} answers", sent / answer);
}

#[test]
fn an_honest_peer_asking_once_is_answered_at_once_beside_a_flooder() {
    let (node, now) = server(SyncConfig::default());
    let mut driver = Driver::new(node, now);
    let (flooder, honest) = (key(66).peer_id(), key(7).peer_id());
    driver.connect(flooder);
    driver.connect(honest);
    for _ in 0..10_000 {
        driver.ask_headers(flooder);
    }
    driver.ask_headers(honest);
    assert_eq!(driver.answers_to(honest), 1);
    assert_eq!(driver.answers.last().unwrap(), &(honest, now));
}

#[test]
fn when_the_total_budget_is_spent_waiting_peers_are_answered_in_turn_not_by_arrival() {
    let (node, start) = server(SyncConfig::default());
    let answer = headers_answer_bytes(&node);
    // All peers together get one answer a second; each peer alone could have far more.
    let sync = SyncConfig {
        serve_total_bytes_per_sec: answer,
        serve_total_burst_bytes: answer,
        ..SyncConfig::default()
    };
    let (node, _) = server(sync);
    let mut driver = Driver::new(node, start);
    let flooders: Vec<PeerId> = (0..8).map(|i| key(100 + i).peer_id()).collect();
    let honest = key(7).peer_id();
    for peer in flooders.iter().chain([&honest]) {
        driver.connect(*peer);
    }
    // Flooders ask every 10 ms for 30 s; the honest peer asks once, a second in.
    let mut asked = None;
    for i in 0..3_000u64 {
        driver.advance(start + Duration::from_millis(10 * i));
        for flooder in &flooders {
            driver.ask_headers(*flooder);
        }
        if i == 100 {
            driver.ask_headers(honest);
            asked = Some(driver.answers.len());
        }
    }
    let asked = asked.unwrap();
    let answered = driver.answers.iter().position(|(to, _)| *to == honest).unwrap();
    // In turn: between its request and its answer every flooder is answered at most once (by arrival,
    // flooders that keep asking would be answered again and again first).
    let between = &driver.answers[asked..answered];
    assert!(between.len() <= flooders.len(), "{between:?}");
    for flooder in &flooders {
        assert!(between.iter().filter(|(to, _)| to == flooder).count() <= 1);
    }
    let (_, at) = driver.answers[answered];
    assert!(at.saturating_duration_since(start + Duration::from_secs(1)) <= Duration::from_secs(9));
    assert_eq!(driver.answers_to(honest), 1);
}

/// A node resuming from a copy of `store` with `sync`.
fn node_from(store: &MemoryStore, sync: SyncConfig) -> Node {
    let cfg = config();
    let chain = Chain::open(store.clone(), cfg.clone(), genesis_block(&cfg), 0).unwrap();
    ChainSync::new(chain, sync)
}

#[test]
fn an_initial_block_download_of_full_blocks_is_not_stalled_by_the_default_budget() {
    let cfg = config();
    let mut chain = open(&cfg);
    let blocks = extend(&mut chain, &key(1).peer_id(), HEIGHT, 60);
    let now = chain.tip().header.timestamp + 60;
    let store = chain.ledger().store().clone();
    // Test blocks are small: the budget is scaled by the same ratio, so each block weighs on it what a
    // full 1 MB block weighs on the default budget. Headers do not shrink with blocks: the headers
    // answer (a fraction of a percent of the default burst) is added to the scaled bursts.
    let block = blocks.iter().map(|b| b.encoded_len()).max().unwrap() as u64;
    let full = cfg.ledger.max_block_bytes as u64;
    let (headers, _) = server(SyncConfig::default());
    let headers = headers_answer_bytes(&headers);
    let default = SyncConfig::default();
    let scaled = SyncConfig {
        serve_bytes_per_sec: default.serve_bytes_per_sec * block / full,
        serve_burst_bytes: default.serve_burst_bytes * block / full + headers,
        serve_total_bytes_per_sec: default.serve_total_bytes_per_sec * block / full,
        serve_total_burst_bytes: default.serve_total_burst_bytes * block / full + headers,
        ..default
    };
    for sync in [SyncConfig::default(), scaled] {
        let [source, late] = [key(11), key(14)].map(|k| k.peer_id());
        let mut net = Net::new(now);
        net.add(source, node_from(&store, sync.clone()));
        net.add(late, ChainSync::new(open(&cfg), sync.clone()));
        net.connect(late, source);
        let steps = net.run(200_000);
        assert!(steps < 200_000, "the network went quiet");
        assert_eq!(net.nodes[&late].chain().tip().height, HEIGHT as u64);
        assert!(net.faults(late).is_empty(), "{:?}", net.faults(late));
        assert!(net.is_linked(late, source));
        let stats = net.nodes[&source].serve_stats();
        println!(
            "initial block download at {} B/s: {stats:?}",
            sync.serve_bytes_per_sec
        );
        if sync.serve_bytes_per_sec < default.serve_bytes_per_sec {
            // The budget did pace the download (so the test shows it does not stall it).
            assert!(stats.deferred > 0, "{stats:?}");
        }
    }
}
