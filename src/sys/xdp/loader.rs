//! Loading the program and attaching it to devices, native mode first. A stale copy of our
//! own program (left by a crash) is replaced; a foreign program is never touched. The devices
//! attached to are the only ones the program sends to (its `devs` map), and a thread keeps its
//! fallback next hops in line with the kernel's tables ([`super::nexthop`]).

use std::io;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::{Arc, Once};
use std::thread::JoinHandle;

use libbpf_rs::libbpf_sys;
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{MapHandle, OpenObject, ProgramHandle};

use super::skel::{RelaySkel, RelaySkelBuilder};
use super::table::{map_err, Maps, XdpTable};
use super::{ifname, AttachMode, Attachment, XdpError};

/// The BPF program's name (the C function), by which a stale copy of ours is recognised.
pub const PROGRAM_NAME: &str = "rtprelay_xdp";

/// The loaded program attached to interfaces. Drop stops the next-hop refresh and detaches
/// from every interface (only if our program is still the one attached).
pub struct XdpProgram {
    prog: ProgramHandle,
    attachments: Vec<Attachment>,
    table: Arc<XdpTable>,
    /// The thread refreshing the fallback next hops.
    refresher: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for XdpProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XdpProgram")
            .field("id", &self.prog.id())
            .field("attachments", &self.attachments)
            .finish()
    }
}

impl XdpProgram {
    /// Load the object and attach to each ifindex: native (driver) mode first, generic (skb)
    /// if native is refused. A stale rtprelay program left by a crash (same BPF program name,
    /// `rtprelay_xdp`) is replaced; a foreign program => XdpError::Busy.
    ///
    /// Each device attached to is added to the devices the program may send to. Then a thread
    /// starts that keeps the next hops of installed rules up to date (it inherits the calling
    /// thread's network namespace).
    ///
    /// On an error no device keeps the new program attached.
    pub fn load_and_attach(ifindexes: &[u32]) -> Result<XdpProgram, XdpError> {
        if ifindexes.len() > super::abi::MAX_ATTACHED {
            return Err(XdpError::Load(format!(
                "{} devices: the program serves at most {}",
                ifindexes.len(),
                super::abi::MAX_ATTACHED
            )));
        }
        let mut storage = MaybeUninit::uninit();
        let skel = load_skel(&mut storage)?;
        let prog = ProgramHandle::try_from(&skel.progs.rtprelay_xdp)
            .map_err(|e| XdpError::Load(format!("duplicating the program handle: {e}")))?;
        let table = table_of(&skel)?;
        // The handles keep the program and maps alive; the object itself is not needed.
        drop(skel);
        let mut program = XdpProgram {
            prog,
            attachments: Vec::with_capacity(ifindexes.len()),
            table: Arc::new(table),
            refresher: None,
        };
        for &ifindex in ifindexes {
            let attachment = program.attach(ifindex)?;
            tracing::info!(
                ifname = %attachment.ifname,
                mode = ?attachment.mode,
                id = program.prog.id(),
                "XDP program attached"
            );
            note_forwarding(&attachment.ifname);
            program.attachments.push(attachment);
            program.table.add_device(ifindex)?;
        }
        let table = Arc::clone(&program.table);
        match std::thread::Builder::new()
            .name("xdp-nexthops".into())
            .spawn(move || table.run_next_hops())
        {
            Ok(h) => program.refresher = Some(h),
            Err(e) => tracing::warn!(error = %e,
                "XDP: no next-hop refresh thread: next hops are looked up as rules go in only"),
        }
        Ok(program)
    }

    /// The devices the program is attached to.
    pub fn attachments(&self) -> &[Attachment] {
        &self.attachments
    }

    /// The rule and counter maps, shared with worker threads.
    pub fn table(&self) -> Arc<XdpTable> {
        Arc::clone(&self.table)
    }

    /// The kernel's id of the loaded program.
    pub fn id(&self) -> u32 {
        self.prog.id()
    }

    fn attach(&self, ifindex: u32) -> Result<Attachment, XdpError> {
        let name = ifname(ifindex).map_err(|e| XdpError::Attach {
            ifname: format!("ifindex {ifindex}"),
            reason: e.to_string(),
        })?;
        let attach_err = |e: io::Error| attach_error(&name, ifindex, e);
        let fd = self.prog.as_fd();
        let current = query(ifindex).map_err(attach_err)?;
        for (id, mode) in [
            (current.drv_prog_id, AttachMode::Native),
            (current.skb_prog_id, AttachMode::Generic),
        ] {
            if id == 0 {
                continue;
            }
            let old = ProgramHandle::from_prog_id(id).map_err(|e| XdpError::Attach {
                ifname: name.clone(),
                reason: format!("inspecting the attached program {id}: {e}"),
            })?;
            let old_name = old.name().to_string_lossy().into_owned();
            if old_name != PROGRAM_NAME {
                return Err(XdpError::Busy {
                    ifname: name,
                    program: format!("{old_name} (id {id})"),
                });
            }
            tracing::warn!(ifname = %name, stale = id, "replacing a stale rtprelay XDP program");
            // Atomic: fails if something else was attached meanwhile.
            xdp_attach(ifindex, Some(fd), mode_flag(mode), Some(old.as_fd()))
                .map_err(attach_err)?;
            return Ok(Attachment {
                ifindex,
                ifname: name,
                mode,
            });
        }
        let noexist = libbpf_sys::XDP_FLAGS_UPDATE_IF_NOEXIST;
        let native = xdp_attach(
            ifindex,
            Some(fd),
            mode_flag(AttachMode::Native) | noexist,
            None,
        );
        let mode = match native {
            Ok(()) => AttachMode::Native,
            Err(e) if is_permission(&e) || e.raw_os_error() == Some(libc::EBUSY) => {
                return Err(attach_err(e))
            }
            Err(e) => {
                tracing::info!(ifname = %name, error = %e, "native XDP refused, using generic mode");
                xdp_attach(
                    ifindex,
                    Some(fd),
                    mode_flag(AttachMode::Generic) | noexist,
                    None,
                )
                .map_err(attach_err)?;
                AttachMode::Generic
            }
        };
        Ok(Attachment {
            ifindex,
            ifname: name,
            mode,
        })
    }
}

impl Drop for XdpProgram {
    fn drop(&mut self) {
        self.table.stop_next_hops();
        if let Some(h) = self.refresher.take() {
            if h.join().is_err() {
                tracing::warn!("the XDP next-hop refresh thread panicked");
            }
        }
        for a in &self.attachments {
            // Only if ours is still the attached program (the kernel checks atomically).
            match xdp_attach(a.ifindex, None, mode_flag(a.mode), Some(self.prog.as_fd())) {
                Ok(()) => tracing::info!(ifname = %a.ifname, "XDP program detached"),
                Err(e) => tracing::warn!(ifname = %a.ifname, error = %e, "XDP detach failed"),
            }
        }
    }
}

/// bpf_fib_lookup() answers only for devices with forwarding on; elsewhere the program sends
/// to the next hops the relay copies from the kernel's tables. Say so once per device.
fn note_forwarding(ifname: &str) {
    for family in ["ipv4", "ipv6"] {
        let path = format!("/proc/sys/net/{family}/conf/{ifname}/forwarding");
        if std::fs::read_to_string(&path).is_ok_and(|v| v.trim() == "0") {
            tracing::info!(
                ifname,
                "{family} forwarding is off on {ifname}: the kernel's route lookup cannot answer \
                 there, so offloaded packets go to the next hop the relay reads from the \
                 routing and neighbour tables for each peer"
            );
        }
    }
}

fn mode_flag(mode: AttachMode) -> u32 {
    match mode {
        AttachMode::Native => libbpf_sys::XDP_FLAGS_DRV_MODE,
        AttachMode::Generic => libbpf_sys::XDP_FLAGS_SKB_MODE,
    }
}

/// Open and load the skeleton into `storage` (not attached).
pub(super) fn load_skel(storage: &mut MaybeUninit<OpenObject>) -> Result<RelaySkel<'_>, XdpError> {
    route_libbpf_logs();
    let open = RelaySkelBuilder::default()
        .open(storage)
        .map_err(|e| XdpError::Load(format!("opening the BPF object: {e}")))?;
    open.load().map_err(|e| {
        if e.kind() == libbpf_rs::ErrorKind::PermissionDenied && !privileged() {
            XdpError::Permission(e.to_string())
        } else {
            XdpError::Load(format!(
                "{e} (the verifier log, if any, was logged by libbpf)"
            ))
        }
    })
}

/// A table over the loaded skeleton's maps.
pub(super) fn table_of(skel: &RelaySkel<'_>) -> Result<XdpTable, XdpError> {
    let handle = |m| MapHandle::try_from(m).map_err(|e| map_err("duplicating a map handle", e));
    XdpTable::new(Maps {
        flows: handle(&skel.maps.flows)?,
        counters: handle(&skel.maps.counters)?,
        hops: handle(&skel.maps.hops)?,
        stats: handle(&skel.maps.stats)?,
        config: handle(&skel.maps.config)?,
        xsks: handle(&skel.maps.xsks)?,
        xsk_devs: handle(&skel.maps.xsk_devs)?,
        locals: handle(&skel.maps.locals)?,
        peers: handle(&skel.maps.peers)?,
        devs: handle(&skel.maps.devs)?,
    })
}

/// libbpf's warnings (verifier logs among them) go to tracing instead of stderr.
fn route_libbpf_logs() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        libbpf_rs::set_print(Some((libbpf_rs::PrintLevel::Warn, |_, msg| {
            tracing::warn!(target: "libbpf", "{}", msg.trim_end());
        })));
    });
}

fn is_permission(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EPERM) | Some(libc::EACCES))
}

fn attach_error(ifname: &str, ifindex: u32, e: io::Error) -> XdpError {
    if is_permission(&e) {
        return XdpError::Permission(format!("attaching to {ifname}: {e}"));
    }
    if matches!(e.raw_os_error(), Some(libc::EBUSY) | Some(libc::EEXIST)) {
        let program = query(ifindex)
            .ok()
            .map(|q| q.prog_id.max(q.drv_prog_id).max(q.skb_prog_id))
            .filter(|&id| id != 0)
            .map(|id| match ProgramHandle::from_prog_id(id) {
                Ok(p) => format!("{} (id {id})", p.name().to_string_lossy()),
                Err(_) => format!("id {id}"),
            })
            .unwrap_or_else(|| "unknown".to_owned());
        return XdpError::Busy {
            ifname: ifname.to_owned(),
            program,
        };
    }
    XdpError::Attach {
        ifname: ifname.to_owned(),
        reason: e.to_string(),
    }
}

/// Has this process the capabilities loading needs (CAP_SYS_ADMIN, or CAP_BPF with
/// CAP_NET_ADMIN)? Tells a verifier rejection (EACCES too) from a missing privilege.
fn privileged() -> bool {
    use crate::sys::caps::{effective, CAP_BPF, CAP_NET_ADMIN, CAP_SYS_ADMIN};
    effective(CAP_SYS_ADMIN) || (effective(CAP_BPF) && effective(CAP_NET_ADMIN))
}

/// The XDP programs attached to a device (`bpf_xdp_query`).
pub(super) fn query(ifindex: u32) -> io::Result<libbpf_sys::bpf_xdp_query_opts> {
    let mut opts = libbpf_sys::bpf_xdp_query_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_xdp_query_opts>() as libbpf_sys::size_t,
        ..Default::default()
    };
    let ifindex = i32::try_from(ifindex)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "ifindex out of range"))?;
    // SAFETY: `opts` is a properly sized, initialised query struct that outlives the call;
    // libbpf only writes into it.
    let rc = unsafe { libbpf_sys::bpf_xdp_query(ifindex, 0, &mut opts) };
    if rc < 0 {
        return Err(io::Error::from_raw_os_error(-rc));
    }
    Ok(opts)
}

/// `bpf_xdp_attach`: attach `prog` (None = detach) in the mode `flags` says; with `expected`,
/// only if that program is the one attached now (the kernel checks atomically).
fn xdp_attach(
    ifindex: u32,
    prog: Option<BorrowedFd<'_>>,
    flags: u32,
    expected: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    let ifindex = i32::try_from(ifindex)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "ifindex out of range"))?;
    let opts = libbpf_sys::bpf_xdp_attach_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_xdp_attach_opts>() as libbpf_sys::size_t,
        // libbpf adds XDP_FLAGS_REPLACE when this is set.
        old_prog_fd: expected.map_or(0, |fd| fd.as_raw_fd()),
        ..Default::default()
    };
    let fd = prog.map_or(-1, |fd| fd.as_raw_fd());
    // SAFETY: `opts` is a properly sized attach-options struct that outlives the call; the fds
    // are borrowed, so they stay open during it.
    let rc = unsafe { libbpf_sys::bpf_xdp_attach(ifindex, fd, flags, &opts) };
    if rc < 0 {
        return Err(io::Error::from_raw_os_error(-rc));
    }
    Ok(())
}
