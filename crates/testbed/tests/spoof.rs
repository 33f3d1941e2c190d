//! The transport's socket hands quinn datagrams "from" a relay path's virtual address (240.0.0.0/4)
//! only from the relay paths themselves: one that arrives on the real UDP socket from such an address
//! is dropped and counted, so nothing from the network can pose as a relayed peer's traffic. Staged in
//! a testbed namespace, where the test may give its loopback a 240.0.0.0/4 address.
#![allow(clippy::unwrap_used)]

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use meshwork_identity::Keypair;
use meshwork_testbed::{Testbed, TestbedSpec, skip_reason};
use meshwork_transport::quic::{QuicTransport, udp_socket};
use meshwork_transport::{Config, Transport};

/// Sends `count` datagrams of QUIC-sized garbage from `from` to `to`, inside the host's namespace.
fn send_from(bed: &Testbed, from: SocketAddr, to: SocketAddr, count: usize) {
    bed.public(0)
        .enter(|| {
            let socket = UdpSocket::bind(from).unwrap();
            for _ in 0..count {
                socket.send_to(&[0xc3; 1200], to).unwrap();
            }
        })
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn datagrams_from_a_relay_address_on_the_real_socket_are_dropped() {
    if skip_reason().is_some() {
        return;
    }
    let bed = Testbed::build(&TestbedSpec::new(1, &[])).unwrap();
    let host = bed.public(0);
    let status = std::process::Command::new("ip")
        .args(["-n", host.namespace(), "addr", "add", "240.0.0.9/32", "dev", "lo"])
        .status()
        .unwrap();
    assert!(status.success(), "could not give the namespace a 240/4 address");
    let at = SocketAddr::new(host.addr().into(), 0);
    let socket = host.enter(|| udp_socket(at)).unwrap().unwrap();
    let transport = QuicTransport::with_socket(&Keypair::from_seed([1; 32]), socket, Config::default())
        .await
        .unwrap();
    let to = transport.local_addr();
    let dropped = || transport.relay_paths().dropped();

    // From an ordinary address the socket takes them (quinn discards garbage itself): nothing dropped.
    send_from(&bed, SocketAddr::new(host.addr().into(), 0), to, 5);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(dropped(), 0);

    // From a relay path's address, every one is dropped before quinn sees it.
    send_from(&bed, "240.0.0.9:0".parse().unwrap(), to, 5);
    for _ in 0..100 {
        if dropped() >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(dropped(), 5);
    transport.close(meshwork_transport::CloseReason::Shutdown).await;
}
