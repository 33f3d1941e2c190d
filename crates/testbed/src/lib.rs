//! A NAT testbed on one Linux machine: network namespaces joined by veth pairs, with nftables routers
//! that masquerade private segments behind one public address each.
//!
//! ```text
//!                      public segment 10.200.0.0/16 (a bridge in the `inet` namespace)
//!        +------------------+-------------------+------------------------+
//!   public host          NAT 0 (wan 10.200.1.1)       NAT 1 (wan 10.200.2.1)      ...
//!   10.200.100.100       |  lan 10.201.0.1            |  lan 10.202.0.1
//!   10.200.101.100 ...   private host 10.201.0.2      private host 10.202.0.2 ...
//! ```
//!
//! Each public host and each NAT's public address is in a /24 of its own, as on the internet:
//! protocols that count peers by prefix (confirming an observed address, Kademlia's limits, a relay's
//! and a rendezvous's budgets) tell them apart.
//!
//! Every testbed makes its own namespaces (named `mw<pid>-<n>-<role>`) and removes them when dropped,
//! so tests run side by side; the addresses are private ranges that exist only inside them, and no
//! packet leaves the machine.
//!
//! A router behaves as a home NAT does (RFC 4787's vocabulary):
//! - **[`NatKind::EndpointIndependent`]**: `masquerade`, which keeps a flow's source port when it is
//!   free, so one internal socket appears at the same external port to every destination. Hole
//!   punching works through it.
//! - **[`NatKind::Symmetric`]**: `masquerade random`, a fresh external port per destination, so the
//!   port a rendezvous server observes is not the one a peer must send to. Hole punching fails; only a
//!   relay connects such a peer.
//!
//! Both filter inbound traffic by connection (`ct state new` from the public side is dropped), as
//! every NAT does. Dropping the packet before conntrack confirms it matters: a confirmed entry for an
//! unsolicited packet would occupy the port pair, and the router would then map the host's own outbound
//! packet to the same peer onto another port, which breaks hole punching on an otherwise friendly NAT.
//!
//! Code runs "on" a host by entering its namespace in a short-lived thread ([`Host::enter`]): a socket
//! made there belongs to the host's network for its whole life, wherever it is used afterwards, so
//! nodes on many hosts run in one process and one tokio runtime.
//!
//! ```no_run
//! use meshwork_testbed::{NatKind, Testbed, TestbedSpec};
//!
//! let bed = Testbed::build(&TestbedSpec::new(1, &[NatKind::EndpointIndependent]))?;
//! let socket = bed.private(0, 0).enter(|| std::net::UdpSocket::bind("0.0.0.0:0"))??;
//! // `socket` sends from 10.201.0.2; the public host sees it as 10.200.1.1.
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod command;
mod host;
mod node;
mod setup;

pub use host::Host;
pub use node::NatNode;
pub use setup::{NatKind, Testbed, TestbedSpec};

use thiserror::Error;

/// Why a testbed could not be built or used.
#[derive(Debug, Error)]
pub enum TestbedError {
    /// The machine cannot host the testbed (not Linux, not root, or `ip` / `nft` missing); tests skip
    /// with this message unless `MESHWORK_REQUIRE_NETNS` is set.
    #[error("the NAT testbed cannot run here: {0}")]
    Unavailable(String),
    /// A setup command failed.
    #[error("`{command}` failed: {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// What it printed on stderr.
        stderr: String,
    },
    /// Entering a namespace or running a command failed at the system level.
    #[error("system error: {0}")]
    Io(#[from] std::io::Error),
    /// A node on the testbed could not bind its transport.
    #[error("transport: {0}")]
    Bind(#[from] meshwork_transport::BindError),
    /// A node on the testbed stopped or refused a command.
    #[error("node: {0}")]
    Node(#[from] meshwork_node::NodeError),
    /// A rendezvous refused to register a node.
    #[error("the rendezvous refused: {0}")]
    Refused(meshwork_nat::Refusal),
    /// A relay refused a reservation or a circuit.
    #[error("the relay refused: {0}")]
    RelayRefused(meshwork_nat::relay::RelayRefusal),
    /// An answer did not come in time.
    #[error("no {0} in time")]
    TimedOut(&'static str),
}

/// Whether this machine can build a testbed: Linux, root, and iproute2's `ip` and nftables' `nft`.
pub fn available() -> Result<(), TestbedError> {
    if !cfg!(target_os = "linux") {
        return Err(TestbedError::Unavailable("network namespaces need Linux".into()));
    }
    if !nix::unistd::geteuid().is_root() {
        return Err(TestbedError::Unavailable(
            "creating network namespaces needs root".into(),
        ));
    }
    for tool in [["ip", "-V"], ["nft", "--version"]] {
        if command::run(&tool).is_err() {
            return Err(TestbedError::Unavailable(format!(
                "`{}` is not installed (Debian: iproute2, nftables)",
                tool[0]
            )));
        }
    }
    Ok(())
}

/// For tests: `Some(reason)` when the testbed cannot run here and the test should skip, after printing
/// why. Panics instead when `MESHWORK_REQUIRE_NETNS` is set, so CI, which installs what the testbed
/// needs, never passes by skipping.
pub fn skip_reason() -> Option<String> {
    match available() {
        Ok(()) => None,
        Err(err) if std::env::var_os("MESHWORK_REQUIRE_NETNS").is_some() => {
            panic!("MESHWORK_REQUIRE_NETNS is set but {err}")
        }
        Err(err) => {
            eprintln!("skipping: {err}");
            Some(err.to_string())
        }
    }
}
