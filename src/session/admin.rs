//! Operator commands (what rtpengine's CLI offers): the session list, ending calls on demand and
//! the settings that change at run time. Values arrive checked; time comes in with the command.

use std::time::Duration;

use crate::session::command::{Setting, Terminate};
use crate::session::engine::Engine;
use crate::session::error::SessionError;
use crate::session::reply::{Reply, SessionSummary};
use crate::time::Now;

impl Engine {
    /// Every call, oldest first.
    pub(crate) fn sessions(&self) -> Reply {
        let mut calls: Vec<_> = self.calls.values().collect();
        calls.sort_by_key(|c| (c.created.mono, c.id.clone()));
        Reply::Sessions(
            calls
                .into_iter()
                .map(|c| SessionSummary {
                    call_id: c.id.clone(),
                    deleted: c.destroy_at.is_some(),
                    created: c.created.unix_us / 1_000_000,
                    recording: c.recording,
                    proxy: c.created_from,
                })
                .collect(),
        )
    }

    /// Ends the calls now: no delete-delay, their ports and flows go at once.
    pub(crate) fn terminate(&mut self, now: Now, which: &Terminate) -> Result<Reply, SessionError> {
        let ids: Vec<String> = match which {
            Terminate::All => self.calls.keys().cloned().collect(),
            Terminate::Call(id) if self.calls.contains_key(id) => vec![id.clone()],
            Terminate::Call(_) => return Err(SessionError::UnknownCall),
        };
        for id in &ids {
            self.totals.calls_terminated += 1;
            let _span = crate::session::log::call_span(id, None).entered();
            tracing::info!("call terminated by operator");
            self.destroy(now, id);
        }
        Ok(Reply::Terminated(ids.len()))
    }

    pub(crate) fn get_setting(&self, s: Setting) -> Reply {
        let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        Reply::Setting(match s {
            Setting::MaxSessions => self.cfg.max_sessions,
            Setting::Timeout => secs(self.cfg.timeout),
            Setting::SilentTimeout => secs(self.cfg.silent_timeout),
            Setting::OfferTimeout => secs(self.cfg.offer_timeout),
            Setting::FinalTimeout => self.cfg.final_timeout.map_or(0, secs),
            Setting::DeleteDelay => secs(self.cfg.delete_delay),
        })
    }

    pub(crate) fn set_setting(&mut self, s: Setting, value: i64) -> Reply {
        let secs = Duration::from_secs(u64::try_from(value).unwrap_or(0));
        match s {
            Setting::MaxSessions => self.cfg.max_sessions = value.max(-1),
            Setting::Timeout => self.cfg.timeout = secs,
            Setting::SilentTimeout => self.cfg.silent_timeout = secs,
            Setting::OfferTimeout => self.cfg.offer_timeout = secs,
            Setting::FinalTimeout => self.cfg.final_timeout = (!secs.is_zero()).then_some(secs),
            Setting::DeleteDelay => self.cfg.delete_delay = secs,
        }
        tracing::info!(setting = ?s, value, "setting changed by operator");
        Reply::Ok
    }
}
