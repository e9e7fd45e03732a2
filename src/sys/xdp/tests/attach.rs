//! Attaching, replacing a stale copy, detaching, and never replacing a foreign program.

#![allow(clippy::unwrap_used)]

use super::*;

/// The XDP program id attached to `dev` and whether in generic mode, from `ip -d link show`.
fn attached(ns: &str, dev: &str) -> Option<(u32, bool)> {
    let out = Command::new("ip")
        .args(["-n", ns, "-d", "link", "show", dev])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let generic = text.contains("xdpgeneric");
    let id = text
        .split("prog/xdp id ")
        .nth(1)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some((id, generic))
}

#[test]
fn attach_replaces_stale_copy_and_detaches_on_drop() {
    if !can_load() {
        return;
    }
    let ns = Netns::new(false);
    let name = ns.name.clone();
    ns.run(move || {
        let veth0 = ifindex("veth0").unwrap();
        assert_eq!(ifname(veth0).unwrap(), "veth0");
        let first = XdpProgram::load_and_attach(&[veth0]).unwrap();
        assert_eq!(first.attachments().len(), 1);
        assert_eq!(first.attachments()[0].mode, AttachMode::Native);
        assert_eq!(first.attachments()[0].ifname, "veth0");
        assert_eq!(attached(&name, "veth0"), Some((first.id(), false)));
        // A crash leaves it attached; the next start replaces it.
        let stale = first.id();
        std::mem::forget(first);
        let second = XdpProgram::load_and_attach(&[veth0]).unwrap();
        assert_ne!(second.id(), stale);
        assert_eq!(attached(&name, "veth0"), Some((second.id(), false)));
        let table = second.table();
        table
            .install(
                0,
                sa("192.0.2.1:30000"),
                &Rule {
                    source: sa("192.0.2.1:30002"),
                    dest: sa("192.0.2.3:5000"),
                    expect: None,
                    kind: RuleKind::Rtp,
                    block: None,
                },
            )
            .unwrap();
        drop(second);
        assert_eq!(attached(&name, "veth0"), None);
        // The table outlives the program.
        assert_eq!(table.installed(), 1);
        assert_eq!(table.stats().unwrap().aborted, 0);
    });
}

#[test]
fn foreign_program_is_never_replaced() {
    if !can_load() {
        return;
    }
    let ns = Netns::new(false);
    let name = ns.name.clone();
    ns.run(move || {
        let veth0 = ifindex("veth0").unwrap();
        let foreign = foreign_pass_program();
        xdp_attach_raw(veth0, foreign.as_raw_fd());
        let err = XdpProgram::load_and_attach(&[veth0]).unwrap_err();
        assert!(
            matches!(&err, XdpError::Busy { ifname, program } if ifname == "veth0" && program.contains("foreign")),
            "{err}"
        );
        // Still the foreign one.
        let (id, _) = attached(&name, "veth0").unwrap();
        assert_eq!(
            libbpf_rs::ProgramHandle::from_prog_id(id).unwrap().name(),
            "foreign"
        );
    });
}

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// A minimal XDP program named "foreign" (`return XDP_PASS`).
pub(crate) fn foreign_pass_program() -> OwnedFd {
    use libbpf_rs::libbpf_sys;
    // r0 = 2 (XDP_PASS); exit
    let insns = [
        libbpf_sys::bpf_insn {
            code: (libbpf_sys::BPF_ALU64 | libbpf_sys::BPF_MOV | libbpf_sys::BPF_K) as u8,
            imm: 2,
            ..Default::default()
        },
        libbpf_sys::bpf_insn {
            code: (libbpf_sys::BPF_JMP | libbpf_sys::BPF_EXIT) as u8,
            ..Default::default()
        },
    ];
    let name = c"foreign";
    let license = c"GPL";
    // SAFETY: the name, license and instruction array are valid for the call; no options.
    let fd = unsafe {
        libbpf_sys::bpf_prog_load(
            libbpf_sys::BPF_PROG_TYPE_XDP,
            name.as_ptr(),
            license.as_ptr(),
            insns.as_ptr(),
            insns.len() as _,
            std::ptr::null_mut(),
        )
    };
    assert!(fd >= 0, "bpf_prog_load: {}", -fd);
    // SAFETY: bpf_prog_load returned a new fd that nothing else owns.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

pub(crate) fn xdp_attach_raw(ifindex: u32, fd: i32) {
    use libbpf_rs::libbpf_sys;
    // SAFETY: plain syscall wrapper; a null opts pointer is allowed.
    let rc = unsafe {
        libbpf_sys::bpf_xdp_attach(
            ifindex as i32,
            fd,
            libbpf_sys::XDP_FLAGS_DRV_MODE,
            std::ptr::null(),
        )
    };
    assert_eq!(rc, 0, "attaching the foreign program");
}
