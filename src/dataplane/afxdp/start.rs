//! Starting the AF_XDP plane on top of the XDP program: one AF_XDP socket per receive queue of
//! each device, registered in the program's socket map, so that packets to the relay's ports
//! that the kernel does not forward itself reach a worker without the socket layer.

use crate::sys::xdp::XdpProgram;
use crate::sys::xsk::XskSocket;

/// UMEM frames of one socket (half receive, half send) at most, and their size. The receive
/// half is all the buffering a burst gets (a UDP socket has its own buffer per port): on one
/// queue, with 2048 frames 500 calls lost 0.7 % whenever the worker lost its core for a moment;
/// with 8192, 0.002-0.015 %.
const FRAMES_MAX: u32 = 16384;
/// ...at least (a burst spread over many queues needs less on each)...
const FRAMES_MIN: u32 = 2048;
/// ...and for all sockets together, within those bounds: 64 MiB up to 16 sockets (then 4 MiB
/// each), rather than 32 MiB per queue of a 64-queue NIC.
const FRAMES_TOTAL: u32 = 32768;
const FRAME_SIZE: u32 = 2048;

/// Fewest frames a socket can work with at all.
const FRAMES_FLOOR: u32 = 256;

/// Frames for each of `sockets` sockets: a share of [`FRAMES_TOTAL`] within the bounds, as a
/// power of two (the rings need one).
fn frames_per_socket(sockets: u32) -> u32 {
    pow2_floor(FRAMES_TOTAL / sockets.max(1)).clamp(FRAMES_MIN, FRAMES_MAX)
}

fn pow2_floor(n: u32) -> u32 {
    if n == 0 {
        0
    } else {
        1 << (31 - n.leading_zeros())
    }
}

/// [`frames_per_socket`] within `locked` bytes of locked memory for all sockets (the UMEM is
/// pinned and counted against RLIMIT_MEMLOCK unless the process has CAP_IPC_LOCK), keeping an
/// eighth spare; None when not even [`FRAMES_FLOOR`] frames fit.
fn frames_within(sockets: u32, locked: u64) -> Option<u32> {
    let want = frames_per_socket(sockets);
    let fit = (locked - locked / 8) / u64::from(FRAME_SIZE) / u64::from(sockets.max(1));
    let fit = pow2_floor(u32::try_from(fit).unwrap_or(u32::MAX));
    let frames = want.min(fit);
    (frames >= FRAMES_FLOOR).then_some(frames)
}

/// Receive queues of `ifname`, from sysfs (1 when it cannot tell).
fn rx_queues(ifname: &str) -> u32 {
    std::fs::read_dir(format!("/sys/class/net/{ifname}/queues"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("rx-"))
                .count() as u32
        })
        .unwrap_or(1)
        .clamp(1, 64)
}

/// Bind and register a socket for every receive queue of every device the program is
/// attached to, then switch the program's redirect on.
pub fn open_sockets(p: &XdpProgram) -> Result<Vec<XskSocket>, String> {
    let table = p.table();
    let mut out: Vec<XskSocket> = Vec::new();
    let sockets: u32 = p.attachments().iter().map(|d| rx_queues(&d.ifname)).sum();
    let frames = if crate::sys::caps::effective(crate::sys::caps::CAP_IPC_LOCK) {
        frames_per_socket(sockets)
    } else {
        let locked = crate::sys::rlimit::raise_memlock().unwrap_or(0);
        let frames = frames_within(sockets, locked).ok_or_else(|| {
            format!(
                "RLIMIT_MEMLOCK ({} KiB) cannot hold the frame memory of {sockets} AF_XDP \
                 socket(s); raise it (Docker: --ulimit memlock=-1) or grant CAP_IPC_LOCK",
                locked >> 10
            )
        })?;
        if frames < frames_per_socket(sockets) {
            tracing::warn!(
                memlock_kib = locked >> 10,
                frames,
                wanted = frames_per_socket(sockets),
                "AF_XDP receive rings shortened to fit RLIMIT_MEMLOCK (bursts may drop); raise \
                 it (Docker: --ulimit memlock=-1) or grant CAP_IPC_LOCK"
            );
        }
        frames
    };
    tracing::info!(
        sockets,
        frames,
        umem_mib = (u64::from(frames) * u64::from(FRAME_SIZE) * u64::from(sockets)) >> 20,
        "AF_XDP frame memory"
    );
    for dev in p.attachments() {
        for q in 0..rx_queues(&dev.ifname) {
            let bound = XskSocket::bind(dev.ifindex, q, frames, FRAME_SIZE)
                .map_err(|e| e.to_string())
                .and_then(|s| {
                    use std::os::fd::AsFd;
                    table
                        .register_xsk(dev.ifindex, q, s.as_fd())
                        .map(|()| s)
                        .map_err(|e| e.to_string())
                });
            match bound {
                Ok(s) => {
                    log_mode(&dev.ifname, &s);
                    out.push(s)
                }
                Err(e) => {
                    for s in &out {
                        let _ = table.unregister_xsk(s.ifindex(), s.queue());
                    }
                    return Err(format!("{} queue {q}: {e}", dev.ifname));
                }
            }
        }
    }
    table.set_afxdp(true).map_err(|e| e.to_string())?;
    Ok(out)
}

fn log_mode(ifname: &str, s: &XskSocket) {
    let queue = s.queue();
    match s.zero_copy_refused() {
        None if s.zero_copy() => tracing::info!(ifname, queue, "AF_XDP socket in zero-copy mode"),
        None => tracing::info!(ifname, queue, "AF_XDP socket in copy mode"),
        Some(why) => tracing::info!(
            ifname,
            queue,
            zero_copy = %why,
            "AF_XDP socket in copy mode (the driver refused zero-copy)"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_memory_is_shared_out_within_bounds() {
        assert_eq!(frames_per_socket(0), FRAMES_MAX);
        assert_eq!(frames_per_socket(1), FRAMES_MAX);
        assert_eq!(frames_per_socket(2), FRAMES_MAX);
        assert_eq!(frames_per_socket(3), 8192);
        assert_eq!(frames_per_socket(4), 8192);
        assert_eq!(frames_per_socket(16), FRAMES_MIN);
        assert_eq!(frames_per_socket(64), FRAMES_MIN);
        for n in 1..200 {
            assert!(frames_per_socket(n).is_power_of_two());
        }
    }

    #[test]
    fn locked_memory_limit_shortens_rings_or_refuses() {
        const MIB: u64 = 1 << 20;
        assert_eq!(frames_within(1, u64::MAX), Some(FRAMES_MAX));
        assert_eq!(
            (pow2_floor(0), pow2_floor(1), pow2_floor(3584)),
            (0, 1, 2048)
        );
        assert_eq!(pow2_floor(u32::MAX), 1 << 31);
        assert_eq!(frames_within(1, 64 * MIB), Some(FRAMES_MAX));
        // Docker's default 8 MiB: 7 MiB usable, 3584 frames, rounded down.
        assert_eq!(frames_within(1, 8 * MIB), Some(2048));
        assert_eq!(frames_within(4, 8 * MIB), Some(512));
        assert_eq!(frames_within(1, 64 * 1024), None);
        assert_eq!(frames_within(64, 8 * MIB), None);
        for (n, l) in [(1, 8 * MIB), (3, 20 * MIB), (16, 100 * MIB)] {
            let f = frames_within(n, l).unwrap();
            assert!(
                u64::from(f) * u64::from(FRAME_SIZE) * u64::from(n) <= l,
                "{n} {l}"
            );
        }
    }
}
