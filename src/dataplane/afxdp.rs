//! Starting the AF_XDP plane on top of the XDP program: one AF_XDP socket per receive queue of
//! each device, registered in the program's socket map, so that packets to the relay's ports
//! that the kernel does not forward itself reach a worker without the socket layer.

use crate::sys::xdp::XdpProgram;
use crate::sys::xsk::XskSocket;

/// UMEM frames per socket (half receive, half send) and their size. The receive half is all
/// the buffering a burst gets (a UDP socket has its own buffer per port): with 2048 frames,
/// 500 calls lost 0.7 % whenever the worker lost its core for a moment; with 8192, 0.002-0.015 %.
const FRAMES: u32 = 16384;
const FRAME_SIZE: u32 = 2048;

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
    for dev in p.attachments() {
        for q in 0..rx_queues(&dev.ifname) {
            let bound = XskSocket::bind(dev.ifindex, q, FRAMES, FRAME_SIZE)
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
