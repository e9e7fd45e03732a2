//! What the session layer asks the data plane to do. The runtime turns these into worker updates,
//! taking the sockets the [`PortBinder`](crate::session::ports::PortBinder) bound around the
//! command.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::flow::latch::LatchConfig;
use crate::flow::{FlowCrypto, FlowId, FlowKind, StreamCounters};
pub use rtprelay_recording::spool::{CodecInfo, StreamInfo};

#[derive(Debug, Clone)]
pub enum MediaAction {
    /// Start relaying on the socket bound at `local`.
    Open {
        shard: u64,
        flow: FlowId,
        kind: FlowKind,
        local: SocketAddr,
        egress: Option<FlowId>,
        /// RTCP multiplexed on this RTP flow leaves by this flow instead (the other side
        /// demuxes).
        rtcp_egress: Option<FlowId>,
        latch: LatchConfig,
        counters: Arc<StreamCounters>,
        /// Copy accepted RTP of this flow to the recorder (the flow is a stream of a recorded call).
        record: bool,
        /// SRTP to remove from what arrives and to add to what leaves.
        crypto: FlowCrypto,
    },
    /// New peer information for a flow that is already open.
    Update {
        shard: u64,
        flow: FlowId,
        kind: FlowKind,
        egress: Option<FlowId>,
        rtcp_egress: Option<FlowId>,
        latch: LatchConfig,
        record: bool,
        crypto: FlowCrypto,
    },
    /// Start or stop copying a flow's packets to the recorder.
    Tap {
        shard: u64,
        flow: FlowId,
        record: bool,
    },
    /// Start (`Some`) or stop dropping the media a flow receives (`block media`); RTCP still
    /// passes, and so do the RTP payload types set in the mask (bit n = type n: DTMF events).
    Block {
        shard: u64,
        flow: FlowId,
        block: Option<u128>,
    },
    /// Record `call_id`: open its spool entry if none is open, add the streams it does not have
    /// yet (keyed by flow), refresh codecs and metadata of the others.
    Record {
        call_id: String,
        metadata: String,
        streams: Vec<RecordStream>,
    },
    /// Finish the call's spool entry (call ended or `stop recording`); nothing if none is open.
    RecordEnd { call_id: String },
    /// Stop relaying and close the socket.
    Close { shard: u64, flow: FlowId },
}

/// One recorded stream: the packets one party sends to the relay's local socket `local`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordStream {
    pub flow: FlowId,
    pub local: SocketAddr,
    pub info: StreamInfo,
}
