//! The block explorer as a person sees it: headless Chromium (driven through chromedriver) against a
//! two-node devnet on real QUIC. It reads the front page, watches it follow new blocks, opens a block,
//! its coinbase transaction and the miner's address, and leaves a screenshot in the test's output
//! directory.
//!
//! It needs Debian's `chromium` and `chromium-driver`. `.ci/run` installs them and sets
//! `MESHWORK_REQUIRE_CHROMIUM=1`, under which a missing browser fails the test; elsewhere the test
//! says it is skipped and passes.
#![allow(clippy::unwrap_used)]

mod support;

use std::future::Future;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use coin_node::{CoinNode, DataDir, NodeOptions};
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use support::{ONE_AT_A_TIME, params, start};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Polls `check` every 200 ms for at most `secs` seconds; panics with `what` if it never holds.
async fn eventually<F, Fut>(secs: u64, what: &str, mut check: F) -> String
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<String>>,
{
    for _ in 0..secs * 5 {
        if let Some(found) = check().await {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the page never showed {what}");
}

/// The text of the element `css`, once it is on the page.
async fn text(browser: &Client, css: &str) -> Option<String> {
    browser.find(Locator::Css(css)).await.ok()?.text().await.ok()
}

/// Starts chromedriver on a free port and connects a headless Chromium session to it.
async fn browser() -> (tokio::process::Child, Client) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let driver = tokio::process::Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut capabilities = serde_json::Map::new();
    // As root on a machine with no outside network: no sandbox, no GPU, nothing phoning home.
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1200,1000",
    ];
    capabilities.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({ "binary": CHROMIUM, "args": args }),
    );
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..50 {
        let connected = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities.clone())
            .connect(&url)
            .await;
        if let Ok(client) = connected {
            return (driver, client);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("chromedriver did not start a session on {url}");
}

fn chromium_present() -> bool {
    let present = Path::new(CHROMIUM).exists() && Path::new(CHROMEDRIVER).exists();
    if !present {
        assert!(
            std::env::var_os("MESHWORK_REQUIRE_CHROMIUM").is_none(),
            "MESHWORK_REQUIRE_CHROMIUM is set but {CHROMIUM} or {CHROMEDRIVER} is missing \
             (apt-get install chromium chromium-driver)"
        );
        eprintln!(
            "skipped: {CHROMIUM} and {CHROMEDRIVER} are needed (apt-get install chromium chromium-driver)"
        );
    }
    present
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_explorer_shows_the_chain_and_follows_it_live() {
    if !chromium_present() {
        return;
    }
    let _turn = ONE_AT_A_TIME.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let params = params();
    let mut options = NodeOptions::new(DataDir::new(dir.path().join("n0")), params);
    options.mine_threads = 1;
    options.seed = 1;
    options.loopback_devnet = true;
    options.explorer = Some("127.0.0.1:0".parse().unwrap());
    let miner = CoinNode::start(options).await.unwrap();
    let peer = start(&dir, 1, params, &[&miner], false, None).await;
    let site = format!("http://{}/", miner.explorer_addr().unwrap());
    let (_driver, browser) = browser().await;
    browser.goto(&site).await.unwrap();

    // The front page: the tip, a connected peer, the recent blocks.
    let height = |text: String| text.parse::<u64>().ok();
    let first = eventually(60, "a height of at least 2", || async {
        let shown = text(&browser, "#tip-height").await?;
        (height(shown.clone())? >= 2).then_some(shown)
    })
    .await;
    let first = height(first).unwrap();
    eventually(60, "one peer", || async {
        (text(&browser, "#peer-count").await? == "1").then_some(String::new())
    })
    .await;
    // Live: the page follows the chain without a reload.
    eventually(90, "a newer block", || async {
        let shown = height(text(&browser, "#tip-height").await?)?;
        (shown > first).then_some(String::new())
    })
    .await;
    let rows = browser.find_all(Locator::Css("a.block-link")).await.unwrap();
    assert!(rows.len() >= 2, "recent blocks listed: {}", rows.len());

    // A block, then its coinbase: confirmed, with at least one confirmation.
    browser.goto(&format!("{site}#/block/1")).await.unwrap();
    eventually(30, "block 1", || async {
        (text(&browser, "#block-height").await? == "1").then_some(String::new())
    })
    .await;
    let block_id = text(&browser, "#block-id").await.unwrap();
    let chain_id = miner.api().block_at(1).await.unwrap().unwrap().id;
    assert_eq!(
        block_id,
        chain_id.to_string(),
        "the page shows the chain's block 1"
    );
    browser
        .find(Locator::Css("a.tx-link"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually(30, "a confirmed transaction", || async {
        (text(&browser, "#tx-status").await? == "confirmed").then_some(String::new())
    })
    .await;
    let confirmations: u64 = text(&browser, "#tx-confirmations")
        .await
        .unwrap()
        .parse()
        .unwrap();
    assert!(confirmations >= 1, "{confirmations} confirmations");

    // The miner's address: its coinbases give it a balance.
    let wallet = miner.api().wallet().peer_id();
    browser.goto(&format!("{site}#/address/{wallet}")).await.unwrap();
    let balance = eventually(30, "the miner's balance", || async {
        let shown = text(&browser, "#address-balance").await?;
        (!shown.is_empty() && shown != "0").then_some(shown)
    })
    .await;
    assert_eq!(text(&browser, "#address-id").await.unwrap(), wallet.to_string());

    // The search box takes a height.
    browser.goto(&site).await.unwrap();
    let search = browser.wait().for_element(Locator::Css("#search")).await.unwrap();
    search.send_keys("2\n").await.unwrap();
    eventually(30, "block 2 from the search box", || async {
        (text(&browser, "#block-height").await? == "2").then_some(String::new())
    })
    .await;

    browser.goto(&site).await.unwrap();
    eventually(30, "the front page again", || async {
        text(&browser, "#tip-height").await.map(|_| String::new())
    })
    .await;
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("explorer.png");
    std::fs::write(&shot, browser.screenshot().await.unwrap()).unwrap();
    eprintln!("explorer: balance {balance}; screenshot in {}", shot.display());
    browser.close().await.unwrap();
    peer.shutdown().await;
    miner.shutdown().await;
}
