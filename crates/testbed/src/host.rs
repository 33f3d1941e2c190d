//! A host of the testbed: one network namespace with one address.

use std::fs::File;
use std::net::Ipv4Addr;

use nix::sched::{CloneFlags, setns};

use crate::TestbedError;

/// One machine of the testbed: a network namespace with a single interface and address.
#[derive(Clone, Debug)]
pub struct Host {
    pub(crate) namespace: String,
    pub(crate) addr: Ipv4Addr,
}

impl Host {
    /// The host's own address (private for a host behind a NAT).
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// The namespace's name, for `ip netns exec <name> ...`.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// Runs `f` inside the host's network namespace, on a thread of its own that ends with it, and
    /// returns what `f` returns. Sockets made in `f` stay in the host's network after it returns.
    pub fn enter<T: Send>(&self, f: impl FnOnce() -> T + Send) -> Result<T, TestbedError> {
        let netns = File::open(format!("/var/run/netns/{}", self.namespace))?;
        std::thread::scope(|scope| {
            scope
                .spawn(move || -> Result<T, TestbedError> {
                    // Only this thread moves; it ends when the scope does, so no other code runs in
                    // the namespace by accident.
                    setns(&netns, CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
                    Ok(f())
                })
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
}
