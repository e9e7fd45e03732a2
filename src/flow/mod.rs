//! The flow layer, under both the session layer and the workers: what one receiving socket of a
//! call is (its id and kind), what it counts, and how it learns its peer (the latch). The session
//! layer decides flows; workers relay them; neither imports the other, they meet here.

pub mod counters;
pub mod crypto;
pub mod ids;
pub mod latch;
pub mod table;
pub mod tap;

pub use counters::StreamCounters;
pub use crypto::{FlowCrypto, FlowDtls, FlowIce, FullIce};
pub use ids::{FlowId, FlowKind};
