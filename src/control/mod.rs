//! NG control: the bencode codec, the `<cookie> <dict>` framing, parsing into session commands,
//! rendering of session replies, the retransmit cache, and the UDP/TCP/HTTP transports.
//!
//! Flow: a transport receives bytes and calls a shared handler with the sender
//! ([`transport::NgPeer`]); the daemon's handler locks a [`Dispatcher`] and runs
//! [`Dispatcher::handle`], which answers retransmissions from the [`CookieCache`] (per sender and
//! cookie), decodes ([`ng`], [`bencode`]), parses ([`crate::session::Command::from_dict`]), hands
//! the [`crate::session::Command`] to the session layer and renders its typed
//! [`crate::session::Reply`] ([`render()`]). Control stands above session: session imports nothing
//! from here.

pub mod bencode;
pub mod cli;
pub mod cookie_cache;
pub mod dispatch;
pub mod error;
pub mod ng;
pub mod parse;
pub(crate) mod parse_srtp;
pub mod render;
pub mod transport;

pub use bencode::{BencodeError, Dict, DictBuilder, Value};
pub use cookie_cache::CookieCache;
pub use dispatch::Dispatcher;
pub use error::NgError;
pub use ng::{encode_reply, split_cookie, Format};
pub use render::{error_reply, render};
