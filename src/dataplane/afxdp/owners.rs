//! Which worker owns the flow on a relay address:port, for the AF_XDP plane: the device's RSS
//! picks a frame's rx queue (and so the worker that receives it), not the call's sharding, so a
//! worker must find the owner of a frame's flow without asking it.
//!
//! Written by the control thread as it hands a flow to a worker (before the NG reply goes out,
//! so a frame sent after the reply finds its owner), claimed again by the owner as it opens the
//! flow and cleared by it when it closes the flow, each only if no other worker holds the port;
//! read lock-free on the packet path. Ports are pooled per local address, so the table has
//! one 64 Ki-entry array per local address the relay uses (a handful).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Mutex, OnceLock};

/// Local addresses (wildcards included) the table can tell apart. The daemon refuses AF_XDP
/// with several workers when the interfaces have more (see [`MAX_LOCAL_ADDRS`]).
const ADDRS: usize = 16;
/// How many distinct local addresses the AF_XDP plane serves with several workers.
pub const MAX_LOCAL_ADDRS: usize = ADDRS;
/// "No flow" in an entry; otherwise the entry is the worker's index + 1.
const NONE: u16 = 0;

/// Port -> owning worker, per local address.
pub struct PortOwners {
    slots: [OnceLock<Slot>; ADDRS],
    /// Serialises claiming a slot (flow opens only, never the packet path).
    claim: Mutex<()>,
}

struct Slot {
    addr: IpAddr,
    owners: Box<[AtomicU16]>,
}

impl Default for PortOwners {
    fn default() -> Self {
        PortOwners {
            slots: std::array::from_fn(|_| OnceLock::new()),
            claim: Mutex::new(()),
        }
    }
}

impl PortOwners {
    /// Flows on `local` belong to `worker` from now on.
    pub fn set(&self, local: SocketAddr, worker: usize) {
        let Ok(v) = u16::try_from(worker + 1) else {
            return;
        };
        match self.slot_or_claim(local.ip()) {
            Some(s) => s.owners[usize::from(local.port())].store(v, Ordering::Release),
            None => tracing::warn!(
                addr = %local.ip(),
                "AF_XDP: more than {ADDRS} local addresses; frames to this one are not handed \
                 to their worker"
            ),
        }
    }

    /// `worker` opened its flow on `local`: the port is its own again unless another worker
    /// holds it. Needed when a flow is closed and reopened on the same worker: the control
    /// thread's [`PortOwners::set`] for the reopen can come before the worker's
    /// [`PortOwners::clear`] for the close.
    pub fn claim(&self, local: SocketAddr, worker: usize) {
        let Ok(v) = u16::try_from(worker + 1) else {
            return;
        };
        if let Some(s) = self.slot_or_claim(local.ip()) {
            let _ = s.owners[usize::from(local.port())].compare_exchange(
                NONE,
                v,
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
        }
    }

    /// `worker` closed its flow on `local`: forget it, unless the port was given to another
    /// worker meanwhile.
    pub fn clear(&self, local: SocketAddr, worker: usize) {
        let Ok(v) = u16::try_from(worker + 1) else {
            return;
        };
        if let Some(s) = self.slot(local.ip()) {
            let _ = s.owners[usize::from(local.port())].compare_exchange(
                v,
                NONE,
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
        }
    }

    /// The worker owning the flow a frame to `dst` belongs to: the one on `dst` itself, else one
    /// on the wildcard address of its family.
    pub fn owner(&self, dst: SocketAddr) -> Option<usize> {
        let port = usize::from(dst.port());
        [dst.ip(), unspecified(dst.ip())]
            .into_iter()
            .filter_map(|ip| self.slot(ip))
            .map(|s| s.owners[port].load(Ordering::Acquire))
            .find(|&v| v != NONE)
            .map(|v| usize::from(v) - 1)
    }

    fn slot(&self, ip: IpAddr) -> Option<&Slot> {
        self.slots
            .iter()
            .map_while(OnceLock::get)
            .find(|s| s.addr == ip)
    }

    fn slot_or_claim(&self, ip: IpAddr) -> Option<&Slot> {
        if let Some(s) = self.slot(ip) {
            return Some(s);
        }
        let _held = self.claim.lock().unwrap_or_else(|p| p.into_inner());
        // Another claimer may have added it before we took the lock.
        if let Some(s) = self.slot(ip) {
            return Some(s);
        }
        let free = self.slots.iter().find(|s| s.get().is_none())?;
        Some(free.get_or_init(|| Slot {
            addr: ip,
            owners: (0..=u16::MAX).map(|_| AtomicU16::new(NONE)).collect(),
        }))
    }
}

/// The wildcard address of `ip`'s family.
pub(super) fn unspecified(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sa(s: &str) -> SocketAddr {
        s.parse().expect("addr")
    }

    #[test]
    fn owners_are_per_address_and_port_and_fall_back_to_the_wildcard() {
        let t = PortOwners::default();
        assert_eq!(t.owner(sa("10.0.0.1:30000")), None);
        t.set(sa("10.0.0.1:30000"), 1);
        t.set(sa("10.0.0.2:30000"), 0);
        t.set(sa("[fd00::1]:30000"), 3);
        t.set(sa("0.0.0.0:30002"), 2);
        assert_eq!(t.owner(sa("10.0.0.1:30000")), Some(1));
        assert_eq!(t.owner(sa("10.0.0.2:30000")), Some(0));
        assert_eq!(t.owner(sa("[fd00::1]:30000")), Some(3));
        assert_eq!(t.owner(sa("10.0.0.1:30002")), Some(2));
        assert_eq!(t.owner(sa("[fd00::1]:30002")), None);
    }

    #[test]
    fn a_late_close_does_not_clear_a_port_given_to_another_worker() {
        let t = PortOwners::default();
        t.set(sa("10.0.0.1:30000"), 0);
        t.set(sa("10.0.0.1:30000"), 1); // reallocated before worker 0 took the close
        t.clear(sa("10.0.0.1:30000"), 0);
        assert_eq!(t.owner(sa("10.0.0.1:30000")), Some(1));
        t.clear(sa("10.0.0.1:30000"), 1);
        assert_eq!(t.owner(sa("10.0.0.1:30000")), None);
    }

    #[test]
    fn a_port_closed_and_reopened_on_one_worker_keeps_its_owner() {
        let t = PortOwners::default();
        let p = sa("10.0.0.1:30000");
        t.set(p, 0); // first open
        t.set(p, 0); // the reopen, sent before the worker took the close
        t.clear(p, 0); // the worker takes the close...
        t.claim(p, 0); // ...then the reopen
        assert_eq!(t.owner(p), Some(0));
        // Another worker's newer claim wins over a late open and close of an older flow.
        t.set(p, 1);
        t.claim(p, 0);
        t.clear(p, 0);
        assert_eq!(t.owner(p), Some(1));
    }

    #[test]
    fn addresses_beyond_the_table_have_no_owner() {
        let t = PortOwners::default();
        for i in 0..ADDRS as u8 + 2 {
            t.set(SocketAddr::from(([10, 0, 1, i], 30000)), 0);
        }
        assert_eq!(t.owner(sa("10.0.1.0:30000")), Some(0));
        assert_eq!(
            t.owner(SocketAddr::from(([10, 0, 1, ADDRS as u8 + 1], 30000))),
            None
        );
    }
}
