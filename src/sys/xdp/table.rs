//! The rule and counter maps, shared by the workers: install/remove rules, read counters.
//! Every call is a few map syscalls (and, for a rule to a new peer, a netlink lookup of its next
//! hop, [`super::nexthop`]); none is made per packet.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

use libbpf_rs::{MapCore, MapFlags, MapHandle};

use super::abi::{self, Counters, FlowKey, Pod, Stats};
use super::nexthop::{self, NextHops, Pair};
use super::{FlowTotals, Rule, SlotTotals, XdpError, XdpStats};

/// Handles to the maps; Send + Sync. All methods are cheap syscalls, never called per packet.
pub struct XdpTable {
    flows: MapHandle,
    counters: MapHandle,
    /// The program's per-CPU next-hop cache, by slot like `counters`.
    hops: MapHandle,
    stats: MapHandle,
    config: MapHandle,
    xsks: MapHandle,
    xsk_devs: MapHandle,
    locals: MapHandle,
    /// The devices the program may send to.
    devs: MapHandle,
    /// The next hops where the program's route lookup cannot answer (`peers`).
    next_hops: NextHops,
    /// The devices given a slot in `xsk_devs`, by slot.
    xsk_slots: Mutex<Vec<u32>>,
    /// What `config` holds: the port range and the flags are set separately.
    config_value: Mutex<abi::Config>,
    /// CPUs the per-CPU maps hold a value for.
    cpus: usize,
    slots: Mutex<Slots>,
    /// Partitions handed out by [`XdpTable::claim_partition`].
    claimed: AtomicUsize,
}

// Shared with worker threads.
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<XdpTable>();
    send_sync::<super::XdpProgram>();
};

/// The program's maps, by name.
pub(super) struct Maps {
    pub flows: MapHandle,
    pub counters: MapHandle,
    pub hops: MapHandle,
    pub stats: MapHandle,
    pub config: MapHandle,
    pub xsks: MapHandle,
    pub xsk_devs: MapHandle,
    pub locals: MapHandle,
    pub peers: MapHandle,
    pub devs: MapHandle,
}

/// Which counter slot (and partition) each installed key uses, and each partition's free
/// slots.
struct Slots {
    by_key: HashMap<FlowKey, Placed>,
    parts: Vec<Part>,
}

/// An installed rule's counter slot, partition, and (source, destination) pair, whose next hop
/// it holds in `peers`.
#[derive(Debug, Clone, Copy)]
struct Placed {
    slot: u32,
    part: usize,
    pair: Pair,
}

impl Default for Slots {
    fn default() -> Slots {
        Slots {
            by_key: HashMap::new(),
            parts: partition(1),
        }
    }
}

/// One worker's contiguous range of slots, so that its sweep reads only its own.
#[derive(Debug)]
struct Part {
    start: u32,
    end: u32,
    /// Slots from `start` below this were handed out at least once.
    next: u32,
    free: Vec<u32>,
}

/// Most partitions: more would leave each too few slots to be useful.
const MAX_PARTS: usize = 1024;

/// `MAX_FLOWS` cut into `n` (1..=MAX_PARTS) contiguous ranges; the last takes the remainder.
fn partition(n: usize) -> Vec<Part> {
    let n = n.clamp(1, MAX_PARTS) as u32;
    let size = abi::MAX_FLOWS / n;
    (0..n)
        .map(|i| Part {
            start: i * size,
            end: if i + 1 == n {
                abi::MAX_FLOWS
            } else {
                (i + 1) * size
            },
            next: i * size,
            free: Vec::new(),
        })
        .collect()
}

/// Slots read per batched lookup.
const BATCH: u32 = 1024;

/// One CPU's counters added to a total.
fn add(t: FlowTotals, c: Counters) -> FlowTotals {
    FlowTotals {
        packets: t.packets + c.packets,
        bytes: t.bytes + c.bytes,
        rtcp_packets: t.rtcp_packets + c.rtcp_packets,
        rtcp_bytes: t.rtcp_bytes + c.rtcp_bytes,
        errors: t.errors + c.errors,
        blocked: t.blocked + c.blocked,
    }
}

/// `BPF_MAP_LOOKUP_BATCH` on an array map `fd` (u32 keys): up to `keys.len()` entries after
/// `cursor` (from the start when None) into `keys`/`values`; returns how many, and sets
/// `cursor` to where the next batch starts, None once the map's end was reached.
fn lookup_batch(
    fd: i32,
    cursor: &mut Option<u32>,
    keys: &mut [u32],
    values: &mut [u8],
) -> std::io::Result<usize> {
    let mut count = u32::try_from(keys.len()).unwrap_or(u32::MAX);
    let mut in_batch = cursor.unwrap_or(0);
    let mut out_batch = 0u32;
    let opts = libbpf_rs::libbpf_sys::bpf_map_batch_opts {
        sz: std::mem::size_of::<libbpf_rs::libbpf_sys::bpf_map_batch_opts>() as _,
        ..Default::default()
    };
    let in_ptr: *mut u32 = if cursor.is_some() {
        &mut in_batch
    } else {
        std::ptr::null_mut()
    };
    // SAFETY: `keys` holds `count` u32 keys and `values` room for `count` per-CPU values (the
    // caller sizes it as count * cpus * rounded value size, the layout the kernel writes);
    // in/out batch point at u32s (the array's key size) that live across the call; `opts`
    // is initialised with its own size. The kernel writes no more than `count` entries.
    let ret = unsafe {
        libbpf_rs::libbpf_sys::bpf_map_lookup_batch(
            fd,
            in_ptr.cast(),
            (&mut out_batch as *mut u32).cast(),
            keys.as_mut_ptr().cast(),
            values.as_mut_ptr().cast(),
            &mut count,
            &opts,
        )
    };
    // libbpf returns the negative errno.
    if ret < 0 && ret != -libc::ENOENT {
        return Err(std::io::Error::from_raw_os_error(-ret));
    }
    // ENOENT: the end of the map, possibly with a last partial batch.
    *cursor = (ret == 0).then_some(out_batch);
    Ok(count as usize)
}

pub(super) fn map_err(what: &str, e: libbpf_rs::Error) -> XdpError {
    XdpError::Map(format!("{what}: {e}"))
}

impl XdpTable {
    /// A table over the program's maps (handles with their own fds, so the maps live as long
    /// as the table does).
    pub(super) fn new(maps: Maps) -> Result<XdpTable, XdpError> {
        let cpus =
            libbpf_rs::num_possible_cpus().map_err(|e| map_err("counting possible CPUs", e))?;
        let Maps {
            flows,
            counters,
            hops,
            stats,
            config,
            xsks,
            xsk_devs,
            locals,
            peers,
            devs,
        } = maps;
        Ok(XdpTable {
            flows,
            counters,
            hops,
            stats,
            config,
            xsks,
            xsk_devs,
            locals,
            devs,
            next_hops: NextHops::new(peers),
            xsk_slots: Mutex::new(Vec::new()),
            config_value: Mutex::new(abi::Config::default()),
            cpus,
            slots: Mutex::new(Slots::default()),
            claimed: AtomicUsize::new(0),
        })
    }

    fn slots(&self) -> MutexGuard<'_, Slots> {
        // A panic while holding the lock leaves the bookkeeping consistent enough (each step
        // is a single insert/remove), so keep going.
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Cut the slots into `n` partitions, one per worker (each worker's sweep then reads only
    /// its own slots). Only before the first rule is installed.
    pub fn set_partitions(&self, n: usize) -> Result<(), XdpError> {
        let mut slots = self.slots();
        if slots.parts.iter().any(|p| p.next > p.start) {
            return Err(XdpError::Map(
                "slot partitions can only change before the first rule".into(),
            ));
        }
        slots.parts = partition(n);
        Ok(())
    }

    /// A partition for a new worker: each one in turn (they repeat once every partition has
    /// been claimed, which is safe, only slower to sweep).
    pub fn claim_partition(&self) -> usize {
        let n = self.slots().parts.len();
        self.claimed.fetch_add(1, Ordering::Relaxed) % n
    }

    /// Install or replace the rule for packets arriving at the relay's local `local` (ip:port).
    /// Returns the counter slot. Replacing an existing key keeps its slot (counters continue).
    /// A new key gets a free slot of partition `part` (see [`XdpTable::claim_partition`])
    /// whose per-CPU counters are zeroed first.
    ///
    /// An unspecified `local` address (`0.0.0.0`, `::`) matches packets to any local address of
    /// that family on the port, after exact matches.
    ///
    /// The next hop the program falls back on for the rule's (source, destination) pair is
    /// looked up in the kernel's tables first, when no other rule uses that pair yet, so that
    /// it is in place before the rule (see the `nexthop` module).
    pub fn install(&self, part: usize, local: SocketAddr, rule: &Rule) -> Result<u32, XdpError> {
        let key = abi::key(local);
        // A rule that cannot be expressed fails before anything is looked up.
        abi::flow(rule, 0)?;
        let pair = nexthop::pair(rule.source.ip(), rule.dest.ip());
        self.next_hops.acquire(pair);
        let mut slots = self.slots();
        let existing = slots.by_key.get(&key).copied();
        let (slot, part) = match existing {
            Some(at) => (at.slot, at.part),
            None => {
                let part = part % slots.parts.len();
                let p = &mut slots.parts[part];
                match p.free.pop() {
                    Some(slot) => (slot, part),
                    None if p.next < p.end => {
                        p.next += 1;
                        (p.next - 1, part)
                    }
                    None => {
                        let full = p.end - p.start;
                        drop(slots);
                        self.next_hops.release(pair);
                        return Err(XdpError::Map(format!(
                            "rule table full ({full} rules in this worker's share)"
                        )));
                    }
                }
            }
        };
        let result = abi::flow(rule, slot).and_then(|value| {
            if existing.is_none() {
                self.zero_counters(slot)?;
            }
            self.flows
                .update(key.as_bytes(), value.as_bytes(), MapFlags::ANY)
                .map_err(|e| map_err(&format!("installing the rule for {local}"), e))
        });
        match result {
            Ok(()) => {
                slots.by_key.insert(key, Placed { slot, part, pair });
                drop(slots);
                // The replaced rule's pair (the same one, or a hop no rule needs any more).
                if let Some(old) = existing {
                    self.next_hops.release(old.pair);
                }
                Ok(slot)
            }
            Err(e) => {
                if existing.is_none() {
                    slots.parts[part].free.push(slot);
                }
                drop(slots);
                self.next_hops.release(pair);
                Err(e)
            }
        }
    }

    /// A slot (re)starting: zero counters, and no next hop cached for an earlier flow.
    fn zero_counters(&self, slot: u32) -> Result<(), XdpError> {
        let zero = vec![Counters::default().as_bytes().to_vec(); self.cpus];
        self.counters
            .update_percpu(&slot.to_ne_bytes(), &zero, MapFlags::ANY)
            .map_err(|e| map_err(&format!("zeroing counter slot {slot}"), e))?;
        let zero = vec![abi::Hop::default().as_bytes().to_vec(); self.cpus];
        self.hops
            .update_percpu(&slot.to_ne_bytes(), &zero, MapFlags::ANY)
            .map_err(|e| map_err(&format!("zeroing next-hop slot {slot}"), e))
    }

    /// Remove the rule and return its slot's final totals (None when no rule was installed at
    /// `local`). The rule goes first, so that nothing is counted after the read; then its slot
    /// is read and only then freed for reuse, so that a new rule cannot zero it in between.
    /// A failed read still removes the rule and frees the slot.
    pub fn remove(&self, local: SocketAddr) -> Result<Option<FlowTotals>, XdpError> {
        let key = abi::key(local);
        let mut slots = self.slots();
        let Some(&Placed { slot, part, pair }) = slots.by_key.get(&key) else {
            return Ok(None);
        };
        match self.flows.delete(key.as_bytes()) {
            Ok(()) => {}
            Err(e) if e.kind() == libbpf_rs::ErrorKind::NotFound => {}
            Err(e) => return Err(map_err(&format!("removing the rule for {local}"), e)),
        }
        let totals = self.totals(slot);
        slots.by_key.remove(&key);
        slots.parts[part].free.push(slot);
        drop(slots);
        self.next_hops.release(pair);
        totals.map(Some)
    }

    /// Per-CPU values of `map` at `index`, each read as a `T`.
    fn percpu<T: Pod>(&self, map: &MapHandle, index: u32) -> Result<Vec<T>, XdpError> {
        let values = map
            .lookup_percpu(&index.to_ne_bytes(), MapFlags::ANY)
            .map_err(|e| map_err(&format!("reading slot {index}"), e))?
            .ok_or_else(|| XdpError::Map(format!("no slot {index}")))?;
        values
            .iter()
            .map(|v| T::read(v).ok_or_else(|| XdpError::Map("short per-CPU value".into())))
            .collect()
    }

    /// Counters of a slot, summed over CPUs.
    pub fn totals(&self, slot: u32) -> Result<FlowTotals, XdpError> {
        if slot >= abi::MAX_FLOWS {
            return Err(XdpError::Map(format!("no counter slot {slot}")));
        }
        Ok(self
            .percpu::<Counters>(&self.counters, slot)?
            .into_iter()
            .fold(FlowTotals::default(), add))
    }

    /// Counters of every slot of partition `part` handed out so far, summed over CPUs, into
    /// `out` (whose buffers are reused), read with batched lookups (a few syscalls for
    /// thousands of slots, where [`XdpTable::totals`] is one each). Slots not in use hold
    /// whatever their last flow left.
    pub fn totals_all(&self, part: usize, out: &mut SlotTotals) -> Result<(), XdpError> {
        let (start, n) = {
            let slots = self.slots();
            let p = &slots.parts[part % slots.parts.len()];
            (p.start, p.next - p.start)
        };
        let value_size = std::mem::size_of::<Counters>().next_multiple_of(8);
        let stride = value_size * self.cpus;
        out.first = start;
        out.totals.clear();
        out.totals.reserve(n as usize);
        out.keys.resize(BATCH as usize, 0);
        out.raw.resize(stride * BATCH as usize, 0);
        // The key to continue after (the kernel's out_batch), none to start at slot 0.
        let mut cursor: Option<u32> = start.checked_sub(1);
        while (out.totals.len() as u32) < n {
            let want = BATCH.min(n - out.totals.len() as u32);
            let got = lookup_batch(
                self.counters.as_fd().as_raw_fd(),
                &mut cursor,
                &mut out.keys[..want as usize],
                &mut out.raw[..stride * want as usize],
            )
            .map_err(|e| XdpError::Map(format!("reading counter slots: {e}")))?;
            if got == 0 {
                break;
            }
            for v in out.raw[..stride * got].chunks_exact(stride) {
                let t = v
                    .chunks_exact(value_size)
                    .filter_map(Counters::read)
                    .fold(FlowTotals::default(), add);
                out.totals.push(t);
            }
            if cursor.is_none() {
                break;
            }
        }
        Ok(())
    }

    /// What the program did with every packet so far, summed over CPUs.
    pub fn stats(&self) -> Result<XdpStats, XdpError> {
        Ok(self
            .percpu::<Stats>(&self.stats, 0)?
            .iter()
            .fold(XdpStats::default(), |t, s| XdpStats {
                forwarded: t.forwarded + s.forwarded,
                passed: t.passed + s.passed,
                dropped: t.dropped + s.dropped,
                aborted: t.aborted + s.aborted,
                redirected: t.redirected + s.redirected,
            }))
    }

    /// The relay's media port range: with the AF_XDP plane on, the range handed to its sockets.
    pub fn set_port_range(&self, min: u16, max: u16) -> Result<(), XdpError> {
        self.update_config("setting the port range", |c| {
            c.port_min = min;
            c.port_max = max;
        })
    }

    /// Turn the AF_XDP plane on or off: when on, a UDP packet to the port range that the
    /// program does not forward itself goes to the AF_XDP socket registered for its device and
    /// rx queue ([`XdpTable::register_xsk`]), or to the stack when that queue has none.
    pub fn set_afxdp(&self, on: bool) -> Result<(), XdpError> {
        self.update_config("switching the AF_XDP plane", |c| {
            if on {
                c.flags |= abi::CFG_AFXDP;
            } else {
                c.flags &= !abi::CFG_AFXDP;
            }
        })
    }

    /// The relay's own addresses (its `--interface` addresses): only UDP to one of them is
    /// taken for the relay (handed to AF_XDP); the rest of the port
    /// range, e.g. transit traffic on a host that routes, is left to the stack. An unspecified
    /// address among them (the relay listens on every address) turns this filter off, as does
    /// an empty list. Call once, before traffic matters.
    pub fn set_local_addrs(&self, addrs: &[IpAddr]) -> Result<(), XdpError> {
        if addrs.is_empty() || addrs.iter().any(|a| a.is_unspecified()) {
            return self.update_config("turning the local-address filter off", |c| {
                c.flags &= !abi::CFG_LOCALS;
            });
        }
        if addrs.len() > abi::MAX_LOCALS {
            return Err(XdpError::Map(format!(
                "{} local addresses: the program holds at most {}",
                addrs.len(),
                abi::MAX_LOCALS
            )));
        }
        for &a in addrs {
            let key = abi::addr_key(a);
            let key = abi::AddrKey { addr: key };
            self.locals
                .update(key.as_bytes(), &1u32.to_ne_bytes(), MapFlags::ANY)
                .map_err(|e| map_err(&format!("adding local address {a}"), e))?;
        }
        self.update_config("turning the local-address filter on", |c| {
            c.flags |= abi::CFG_LOCALS;
        })
    }

    fn update_config(
        &self,
        what: &str,
        change: impl FnOnce(&mut abi::Config),
    ) -> Result<(), XdpError> {
        let mut current = self.config_value.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = *current;
        change(&mut next);
        self.config
            .update(&0u32.to_ne_bytes(), next.as_bytes(), MapFlags::ANY)
            .map_err(|e| map_err(what, e))?;
        *current = next;
        Ok(())
    }

    /// Send packets of rx queue `queue` of device `ifindex` to the AF_XDP socket `fd` (bound
    /// to that queue; the kernel checks). Replaces an earlier registration of the queue.
    pub fn register_xsk(
        &self,
        ifindex: u32,
        queue: u32,
        fd: BorrowedFd<'_>,
    ) -> Result<(), XdpError> {
        let what = || format!("registering the AF_XDP socket of ifindex {ifindex} queue {queue}");
        if queue >= abi::MAX_QUEUES {
            return Err(XdpError::Map(format!(
                "rx queue {queue} is beyond the {} per device the AF_XDP map holds",
                abi::MAX_QUEUES
            )));
        }
        let slot = self.xsk_slot(ifindex, true)?.ok_or_else(|| {
            XdpError::Map(format!(
                "{}: AF_XDP serves at most {} devices",
                what(),
                abi::MAX_DEVICES
            ))
        })?;
        let key = slot * abi::MAX_QUEUES + queue;
        let fd = u32::try_from(fd.as_raw_fd())
            .map_err(|_| XdpError::Map("negative socket fd".into()))?;
        self.xsks
            .update(&key.to_ne_bytes(), &fd.to_ne_bytes(), MapFlags::ANY)
            .map_err(|e| map_err(&what(), e))
    }

    /// Stop sending packets of rx queue `queue` of device `ifindex` to an AF_XDP socket (they
    /// go to the stack). Unregistering a queue without a socket is Ok.
    pub fn unregister_xsk(&self, ifindex: u32, queue: u32) -> Result<(), XdpError> {
        let Some(slot) = self.xsk_slot(ifindex, false)? else {
            return Ok(());
        };
        if queue >= abi::MAX_QUEUES {
            return Ok(());
        }
        let key = slot * abi::MAX_QUEUES + queue;
        match self.xsks.delete(&key.to_ne_bytes()) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == libbpf_rs::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(map_err(
                &format!("unregistering the AF_XDP socket of ifindex {ifindex} queue {queue}"),
                e,
            )),
        }
    }

    /// The `xsk_devs` slot of device `ifindex`; with `add`, a new one (written to the map)
    /// when it has none. None when it has none and none is free (or not `add`).
    fn xsk_slot(&self, ifindex: u32, add: bool) -> Result<Option<u32>, XdpError> {
        let mut slots = self.xsk_slots.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = slots.iter().position(|&d| d == ifindex) {
            return Ok(u32::try_from(s).ok());
        }
        let Ok(slot) = u32::try_from(slots.len()) else {
            return Ok(None);
        };
        if !add || slot >= abi::MAX_DEVICES {
            return Ok(None);
        }
        self.xsk_devs
            .update(&ifindex.to_ne_bytes(), &slot.to_ne_bytes(), MapFlags::ANY)
            .map_err(|e| map_err(&format!("giving ifindex {ifindex} an AF_XDP slot"), e))?;
        slots.push(ifindex);
        Ok(Some(slot))
    }

    /// Rules currently installed.
    pub fn installed(&self) -> usize {
        self.slots().by_key.len()
    }

    /// Let the program send to device `ifindex` (one it is attached to): a route or next hop
    /// on a device not added here leaves the packet to the stack.
    pub fn add_device(&self, ifindex: u32) -> Result<(), XdpError> {
        self.devs
            .update(
                &ifindex.to_ne_bytes(),
                &ifindex.to_ne_bytes(),
                MapFlags::ANY,
            )
            .map_err(|e| map_err(&format!("adding ifindex {ifindex} to the devices map"), e))
    }

    /// Keep the next hops of the installed rules up to date with the kernel's tables, until
    /// [`XdpTable::stop_next_hops`] (on a thread of its own).
    pub(super) fn run_next_hops(&self) {
        self.next_hops.run();
    }

    pub(super) fn stop_next_hops(&self) {
        self.next_hops.stop();
    }

    /// The tracked pairs and their next hops (tests).
    #[cfg(test)]
    pub(super) fn next_hops(&self) -> &NextHops {
        &self.next_hops
    }

    /// What `peers` holds for the pair `source` -> `dest` (tests).
    #[cfg(test)]
    pub(super) fn peer_entry(
        &self,
        source: IpAddr,
        dest: IpAddr,
    ) -> Result<Option<abi::Peer>, XdpError> {
        let key = abi::pair_key(source, dest);
        Ok(self
            .next_hops
            .map()
            .lookup(key.as_bytes(), MapFlags::ANY)
            .map_err(|e| map_err("reading peers", e))?
            .and_then(|v| abi::Peer::read(&v)))
    }

    /// Write `peer` as the next hop for `source` -> `dest` behind the tracking's back (tests:
    /// what the program does with a given answer).
    #[cfg(test)]
    pub(super) fn write_peer_entry(
        &self,
        source: IpAddr,
        dest: IpAddr,
        peer: abi::Peer,
    ) -> Result<(), XdpError> {
        let key = abi::pair_key(source, dest);
        self.next_hops
            .map()
            .update(key.as_bytes(), peer.as_bytes(), MapFlags::ANY)
            .map_err(|e| map_err("writing peers", e))
    }
}
