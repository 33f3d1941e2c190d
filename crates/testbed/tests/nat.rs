//! The routers behave as the NAT kinds they claim to be, seen with plain UDP sockets.
#![allow(clippy::unwrap_used)]

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use meshwork_testbed::{Host, NatKind, Testbed, TestbedSpec, skip_reason};

fn socket(host: &Host) -> UdpSocket {
    let socket = host.enter(|| UdpSocket::bind((host.addr(), 0))).unwrap().unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    socket
}

/// Sends from `from` to `to` and returns the source address `to` saw.
fn seen_by(from: &UdpSocket, to: &UdpSocket) -> SocketAddr {
    from.send_to(b"hello", to.local_addr().unwrap()).unwrap();
    let mut buf = [0; 16];
    let (n, source) = to.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"hello");
    source
}

#[test]
fn an_endpoint_independent_nat_keeps_one_external_port_for_every_destination() {
    if skip_reason().is_some() {
        return;
    }
    let bed = Testbed::build(&TestbedSpec::new(2, &[NatKind::EndpointIndependent])).unwrap();
    let (inside, first, second) = (
        socket(bed.private(0, 0)),
        socket(bed.public(0)),
        socket(bed.public(1)),
    );
    let a = seen_by(&inside, &first);
    let b = seen_by(&inside, &second);
    assert_eq!(a.ip(), bed.nat_address(0));
    assert_eq!(a, b, "the mapping must not depend on the destination");
    // A reply on the mapping comes back in.
    first.send_to(b"hello", a).unwrap();
    let mut buf = [0; 16];
    assert_eq!(inside.recv_from(&mut buf).unwrap().1, first.local_addr().unwrap());
}

#[test]
fn a_symmetric_nat_maps_each_destination_to_its_own_port() {
    if skip_reason().is_some() {
        return;
    }
    let bed = Testbed::build(&TestbedSpec::new(2, &[NatKind::Symmetric])).unwrap();
    let (inside, first, second) = (
        socket(bed.private(0, 0)),
        socket(bed.public(0)),
        socket(bed.public(1)),
    );
    let a = seen_by(&inside, &first);
    let b = seen_by(&inside, &second);
    assert_eq!(
        (a.ip(), b.ip()),
        (bed.nat_address(0).into(), bed.nat_address(0).into())
    );
    assert_ne!(a.port(), b.port(), "each destination gets a fresh port");
}

#[test]
fn unsolicited_packets_do_not_get_in_until_the_inside_host_sent_to_their_source() {
    if skip_reason().is_some() {
        return;
    }
    let bed = Testbed::build(&TestbedSpec::new(2, &[NatKind::EndpointIndependent])).unwrap();
    let (inside, rendezvous, stranger) = (
        socket(bed.private(0, 0)),
        socket(bed.public(0)),
        socket(bed.public(1)),
    );
    let mapped = seen_by(&inside, &rendezvous);
    // The stranger learnt the mapping (from the rendezvous) but the inside host never sent to it.
    stranger.send_to(b"early", mapped).unwrap();
    let mut buf = [0; 16];
    assert!(
        inside.recv_from(&mut buf).is_err(),
        "the NAT let an unsolicited packet in"
    );
    // The inside host punches: now the stranger's packets pass, and the dropped one did not take the
    // port pair (the inside host's packet left on the same mapping).
    assert_eq!(seen_by(&inside, &stranger), mapped);
    stranger.send_to(b"late", mapped).unwrap();
    let (n, _) = inside.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"late");
}

#[test]
fn dropping_the_testbed_removes_its_namespaces() {
    if skip_reason().is_some() {
        return;
    }
    let bed = Testbed::build(&TestbedSpec::new(1, &[NatKind::Symmetric])).unwrap();
    let name = bed.private(0, 0).namespace().to_owned();
    let exists = |name: &str| std::path::Path::new(&format!("/var/run/netns/{name}")).exists();
    assert!(exists(&name));
    drop(bed);
    assert!(!exists(&name));
}
