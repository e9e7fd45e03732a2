//! rtpengine's command-line interface (`--listen-cli`, spoken by `rtpengine-ctl` and
//! `rtprelay-ctl`): one text line in, a text answer out, the connection closed after it.
//!
//! [`parse()`] turns the line into a [`CliRequest`]; what needs the call table becomes a session
//! [`Command`] ([`CliRequest::command`]) that the daemon hands to the engine, and [`render()`] lays
//! the typed reply out in rtpengine-ctl's text shapes. Log levels live with the daemon's logger
//! ([`render_local`]). No I/O here.

pub mod parse;
pub mod render;

pub use parse::{parse, MAX_LINE};
pub use render::{render, render_local};

use crate::session::command::{CallRef, Command, DrainOp, Setting, Terminate};

/// Which calls `list sessions` shows. rtprelay has no foreign (redis-replicated) calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionFilter {
    All,
    Own,
    Foreign,
}

/// Which calls `terminate` ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TerminateScope {
    All,
    Own,
    Foreign,
    Call(String),
}

/// One CLI command, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliRequest {
    /// `list numsessions`
    NumSessions,
    /// `list sessions all|own|foreign`
    Sessions(SessionFilter),
    /// `list sessions CALLID`
    Session(String),
    /// `list totals`
    Totals,
    /// `get maxsessions|timeout|...`
    Get(Setting),
    /// `set maxsessions|timeout|... VALUE`, the value checked.
    Set(Setting, i64),
    /// `terminate all|own|foreign|CALLID`
    Terminate(TerminateScope),
    /// `get loglevel [SUBSYSTEM]`
    GetLogLevel(Option<String>),
    /// `list loglevels`
    LogLevels,
    /// `set loglevel [SUBSYSTEM] N`
    SetLogLevel(i64),
    /// `drain` / `drain status` (rtprelay's own: rtpengine has no drain).
    Drain(DrainOp),
    /// `takeover`: a hot standby takes the calls of the nodes it follows (rtprelay's own).
    Takeover,
    /// Answered without looking at anything: errors and refusals, rtpengine's words.
    Answer(String),
}

impl CliRequest {
    /// The session command this request needs, if any.
    pub fn command(&self) -> Option<Command> {
        Some(match self {
            CliRequest::NumSessions | CliRequest::Totals => Command::Statistics,
            CliRequest::Sessions(SessionFilter::Foreign) => return None,
            CliRequest::Sessions(_) => Command::Sessions,
            CliRequest::Session(id) => Command::Query(CallRef {
                call_id: id.clone(),
                ..CallRef::default()
            }),
            CliRequest::Get(s) => Command::GetSetting(*s),
            CliRequest::Set(s, v) => Command::SetSetting(*s, *v),
            CliRequest::Terminate(TerminateScope::All | TerminateScope::Own) => {
                Command::Terminate(Terminate::All)
            }
            CliRequest::Terminate(TerminateScope::Call(id)) => {
                Command::Terminate(Terminate::Call(id.clone()))
            }
            CliRequest::Drain(op) => Command::Drain(*op),
            CliRequest::Terminate(TerminateScope::Foreign)
            | CliRequest::GetLogLevel(_)
            | CliRequest::LogLevels
            | CliRequest::SetLogLevel(_)
            | CliRequest::Takeover
            | CliRequest::Answer(_) => return None,
        })
    }
}
