//! Applying the control thread's flow changes to a worker's flow table and plane.

use std::os::fd::AsRawFd;

use super::run::{FlowIo, Worker};
use super::FlowUpdate;
use crate::dataplane::{FlowSocket, Plane};
use crate::flow::table::{FlowChange, FlowSpec};
use crate::flow::FlowId;

impl Worker {
    /// Apply queued flow changes, registering opened flows' sockets with `plane`.
    pub(super) fn apply_updates<P: Plane>(&mut self, plane: &mut P) {
        let now = self.clock.mono();
        while let Ok(batch) = self.updates.try_recv() {
            for u in batch {
                match u {
                    FlowUpdate::Open {
                        id,
                        kind,
                        socket,
                        egress,
                        rtcp_egress,
                        latch,
                        counters,
                        record,
                        crypto,
                    } => {
                        self.close(id, plane);
                        let local = socket.local_addr().ok();
                        let registered = plane.register(FlowSocket {
                            token: id.0,
                            fd: socket.as_raw_fd(),
                            local,
                            counters: &counters,
                        });
                        if let Err(e) = registered {
                            tracing::error!(flow = id.0, error = %e, "flow not opened");
                            continue;
                        }
                        let spec = FlowSpec {
                            kind,
                            egress,
                            rtcp_egress,
                            latch,
                            counters,
                            record,
                            local,
                            crypto,
                        };
                        let io = FlowIo {
                            socket,
                            offloaded: None,
                            connected: None,
                        };
                        self.flows.open(id, spec, io, now);
                        self.mark(id.0);
                    }
                    FlowUpdate::Update {
                        id,
                        kind,
                        egress,
                        rtcp_egress,
                        latch,
                        record,
                        crypto,
                    } => {
                        let change = FlowChange {
                            kind,
                            egress,
                            rtcp_egress,
                            latch,
                            record,
                            crypto,
                        };
                        if self.flows.update(id, change, now) {
                            self.mark(id.0);
                        } else {
                            tracing::debug!(flow = id.0, "update for unknown flow");
                        }
                    }
                    FlowUpdate::Tap { id, record } => {
                        if self.flows.tap(id, record) {
                            self.mark(id.0);
                        } else {
                            tracing::debug!(flow = id.0, "tap for unknown flow");
                        }
                    }
                    FlowUpdate::Block { id, block } => match self.flows.block(id, block) {
                        Some(true) => self.mark(id.0),
                        Some(false) => {}
                        None => tracing::debug!(flow = id.0, "block for unknown flow"),
                    },
                    FlowUpdate::Close { id } => self.close(id, plane),
                }
            }
        }
        // Before this pass's packets: a flow that learns again takes every source from now on.
        // The send queue is empty here.
        self.sync_connect();
    }

    fn close<P: Plane>(&mut self, id: FlowId, plane: &mut P) {
        if let Some(mut f) = self.flows.close(id) {
            if let Some(off) = self.offload.as_mut() {
                // Out of the kernel first, with its last counts, before the socket goes.
                let (io, counters) = f.io_and_counters();
                off.remove(id.0, &mut io.offloaded, counters, self.clock.mono());
            }
            plane.deregister(FlowSocket {
                token: id.0,
                fd: f.io.socket.as_raw_fd(),
                local: f.local(),
                counters: f.counters(),
            });
        }
    }
}
