//! NG control: the bencode codec, the `<cookie> <dict>` framing, typed commands, the retransmit
//! cache, and the UDP/TCP/HTTP transports.

pub mod bencode;
pub mod command;
