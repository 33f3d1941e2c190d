//! Building and removing a testbed.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::command::{run, run_with_input};
use crate::{Host, TestbedError, available};

/// How a router maps its private hosts' flows to its public address (RFC 4787).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NatKind {
    /// One external port per internal socket, whatever the destination (`masquerade`, which keeps the
    /// source port when it is free): a "full cone"-like mapping with connection-based filtering.
    EndpointIndependent,
    /// A fresh random external port per destination (`masquerade random`): a peer cannot predict the
    /// port to send to.
    Symmetric,
}

/// What to build: public hosts on the shared segment, and NAT routers with private hosts behind each.
#[derive(Clone, Debug)]
pub struct TestbedSpec {
    /// Hosts on the public segment (10.200.100.100, 10.200.101.100, ...); at most 100.
    pub public_hosts: usize,
    /// One router per entry, each with its own private segment; at most 50.
    pub nats: Vec<NatKind>,
    /// Hosts behind each router (10.2xx.0.2 and up); at most 200.
    pub hosts_per_nat: usize,
}

impl TestbedSpec {
    /// `public_hosts` public hosts and one private host behind each of `nats`.
    pub fn new(public_hosts: usize, nats: &[NatKind]) -> Self {
        Self {
            public_hosts,
            nats: nats.to_vec(),
            hosts_per_nat: 1,
        }
    }
}

/// A built testbed; dropping it removes its namespaces (and with them every interface, route and rule).
#[derive(Debug)]
pub struct Testbed {
    namespaces: Vec<String>,
    public: Vec<Host>,
    nats: Vec<(NatKind, Ipv4Addr, Vec<Host>)>,
}

/// Tells the testbeds of one process apart.
static BUILT: AtomicUsize = AtomicUsize::new(0);

/// The public segment, 10.200.0.0/16: public host `i` at 10.200.`100 + i`.100, NAT `n`'s public
/// address 10.200.`n + 1`.1, each in a /24 of its own.
const PUBLIC: [u8; 2] = [10, 200];
/// The public segment's prefix length.
const PUBLIC_PREFIX: u8 = 16;
/// A private segment's prefix length.
const LAN_PREFIX: u8 = 24;

/// Removes the namespaces of testbeds whose process is gone (killed before its `Drop` ran), so a
/// killed run leaves nothing behind for long. Best effort: what cannot be listed or removed stays.
fn sweep_orphans() {
    let Ok(list) = run(&["ip", "netns", "list"]) else {
        return;
    };
    for line in list.lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let pid = name
            .strip_prefix("mw")
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok());
        let Some(pid) = pid else { continue };
        if pid != std::process::id() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = run(&["ip", "netns", "del", name]);
        }
    }
}

impl Testbed {
    /// Creates the namespaces, links and rules of `spec`. On error, whatever was made is removed.
    pub fn build(spec: &TestbedSpec) -> Result<Self, TestbedError> {
        available()?;
        sweep_orphans();
        if spec.public_hosts > 100 || spec.nats.len() > 50 || spec.hosts_per_nat > 200 {
            return Err(TestbedError::Unavailable(
                "at most 100 public hosts, 50 NATs and 200 hosts per NAT".into(),
            ));
        }
        let prefix = format!(
            "mw{}-{}",
            std::process::id(),
            BUILT.fetch_add(1, Ordering::Relaxed)
        );
        let mut bed = Self {
            namespaces: Vec::new(),
            public: Vec::new(),
            nats: Vec::new(),
        };
        // `bed` is dropped on `?`, removing what was made so far.
        let inet = bed.namespace(&format!("{prefix}-inet"))?;
        run(&["ip", "-n", &inet, "link", "add", "br0", "type", "bridge"])?;
        run(&["ip", "-n", &inet, "link", "set", "br0", "up"])?;
        for i in 0..spec.public_hosts {
            let ns = bed.namespace(&format!("{prefix}-pub{i}"))?;
            let addr = Ipv4Addr::new(PUBLIC[0], PUBLIC[1], 100 + i as u8, 100);
            plug(&inet, &ns, "eth0", &format!("pub{i}"), (addr, PUBLIC_PREFIX))?;
            bed.public.push(Host { namespace: ns, addr });
        }
        for (n, kind) in spec.nats.iter().enumerate() {
            let router = bed.namespace(&format!("{prefix}-nat{n}"))?;
            let wan = Ipv4Addr::new(PUBLIC[0], PUBLIC[1], 1 + n as u8, 1);
            plug(&inet, &router, "wan", &format!("nat{n}"), (wan, PUBLIC_PREFIX))?;
            let lan = [10, 201 + n as u8, 0];
            run(&["ip", "-n", &router, "link", "add", "lan", "type", "bridge"])?;
            run(&[
                "ip",
                "-n",
                &router,
                "addr",
                "add",
                &format!("{}.{}.{}.1/24", lan[0], lan[1], lan[2]),
                "dev",
                "lan",
            ])?;
            run(&["ip", "-n", &router, "link", "set", "lan", "up"])?;
            run(&[
                "ip",
                "netns",
                "exec",
                &router,
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
            ])?;
            run_with_input(
                &["ip", "netns", "exec", &router, "nft", "-f", "-"],
                Some(&ruleset(*kind)),
            )?;
            let mut hosts = Vec::new();
            for h in 0..spec.hosts_per_nat {
                let ns = bed.namespace(&format!("{prefix}-nat{n}h{h}"))?;
                let addr = Ipv4Addr::new(lan[0], lan[1], lan[2], 2 + h as u8);
                plug(&router, &ns, "eth0", &format!("h{h}"), (addr, LAN_PREFIX))?;
                run(&[
                    "ip",
                    "-n",
                    &ns,
                    "route",
                    "add",
                    "default",
                    "via",
                    &format!("{}.{}.{}.1", lan[0], lan[1], lan[2]),
                ])?;
                hosts.push(Host { namespace: ns, addr });
            }
            bed.nats.push((*kind, wan, hosts));
        }
        Ok(bed)
    }

    /// Public host `i`.
    ///
    /// # Panics
    /// If the spec asked for fewer.
    pub fn public(&self, i: usize) -> &Host {
        &self.public[i]
    }

    /// Host `i` behind router `nat`.
    ///
    /// # Panics
    /// If the spec asked for fewer.
    pub fn private(&self, nat: usize, i: usize) -> &Host {
        &self.nats[nat].2[i]
    }

    /// Router `nat`'s public address: the address its hosts appear at.
    ///
    /// # Panics
    /// If the spec asked for fewer.
    pub fn nat_address(&self, nat: usize) -> Ipv4Addr {
        self.nats[nat].1
    }

    /// How router `nat` maps.
    ///
    /// # Panics
    /// If the spec asked for fewer.
    pub fn nat_kind(&self, nat: usize) -> NatKind {
        self.nats[nat].0
    }

    /// Creates a namespace with its loopback up, and records it for removal.
    fn namespace(&mut self, name: &str) -> Result<String, TestbedError> {
        run(&["ip", "netns", "add", name])?;
        self.namespaces.push(name.to_owned());
        run(&["ip", "-n", name, "link", "set", "lo", "up"])?;
        Ok(name.to_owned())
    }
}

impl Drop for Testbed {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            if let Err(err) = run(&["ip", "netns", "del", ns]) {
                tracing::warn!(%err, namespace = %ns, "could not remove a testbed namespace");
            }
        }
    }
}

/// Links namespace `ns` (interface `inner`, address `addr`/`len`) to a bridge in `hub` (its end named
/// `outer`, created inside `hub`, so names never clash between testbeds).
fn plug(
    hub: &str,
    ns: &str,
    inner: &str,
    outer: &str,
    (addr, len): (Ipv4Addr, u8),
) -> Result<(), TestbedError> {
    run(&[
        "ip", "-n", ns, "link", "add", inner, "type", "veth", "peer", "name", outer, "netns", hub,
    ])?;
    let bridge = if hub.ends_with("-inet") { "br0" } else { "lan" };
    run(&["ip", "-n", hub, "link", "set", outer, "master", bridge, "up"])?;
    run(&[
        "ip",
        "-n",
        ns,
        "addr",
        "add",
        &format!("{addr}/{len}"),
        "dev",
        inner,
    ])?;
    run(&["ip", "-n", ns, "link", "set", inner, "up"])?;
    Ok(())
}

/// The router's nftables ruleset: masquerade out of `wan`, and drop new inbound flows before
/// conntrack confirms them (see the crate docs for why that order matters).
fn ruleset(kind: NatKind) -> String {
    let mapping = match kind {
        NatKind::EndpointIndependent => "masquerade",
        NatKind::Symmetric => "masquerade random",
    };
    format!(
        "table ip nat {{
  chain post {{
    type nat hook postrouting priority srcnat; policy accept;
    oifname \"wan\" {mapping}
  }}
}}
table ip filter {{
  chain input {{
    type filter hook input priority filter; policy accept;
    iifname \"wan\" ct state new drop
  }}
  chain forward {{
    type filter hook forward priority filter; policy accept;
    iifname \"wan\" ct state new drop
  }}
}}
"
    )
}
