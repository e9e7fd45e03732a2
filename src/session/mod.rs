//! Calls, streams, port allocation and latching policy (sans-IO).

pub mod latch;
