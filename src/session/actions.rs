//! What the session layer asks the data plane to do. The runtime turns these into worker updates,
//! taking the sockets the [`PortBinder`](crate::session::ports::PortBinder) bound.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::session::latch::LatchConfig;
use crate::worker::{FlowId, FlowKind, StreamCounters};

#[derive(Debug, Clone)]
pub enum MediaAction {
    /// Start relaying on the socket bound at `local`.
    Open {
        shard: u64,
        flow: FlowId,
        kind: FlowKind,
        local: SocketAddr,
        egress: Option<FlowId>,
        latch: LatchConfig,
        counters: Arc<StreamCounters>,
    },
    /// New peer information for a flow that is already open.
    Update {
        shard: u64,
        flow: FlowId,
        kind: FlowKind,
        egress: Option<FlowId>,
        latch: LatchConfig,
    },
    /// Stop relaying and close the socket.
    Close { shard: u64, flow: FlowId },
}
