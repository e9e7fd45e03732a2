//! Drain: the relay stops taking new calls (its `ping` fails, so Kamailio's rtpengine module
//! disables it and sends new calls elsewhere) while the calls it carries go on until they end.
//! The daemon exits once [`Engine::is_drained`] says nothing is left.

use crate::session::command::DrainOp;
use crate::session::engine::Engine;
use crate::session::reply::{DrainStatus, Reply};

impl Engine {
    /// From now on: `ping` fails and offers for new call-ids are refused. There is no way back
    /// short of a restart (a draining relay is on its way out).
    pub fn start_drain(&mut self) {
        if !self.draining {
            tracing::info!(
                calls = self.live_calls(),
                "draining: no new calls from now on"
            );
        }
        self.draining = true;
    }

    /// True once a drain started.
    pub fn is_draining(&self) -> bool {
        self.draining
    }

    /// Draining and no call is left that has not been deleted (deleted calls only wait out their
    /// delete-delay, nothing uses them any more).
    pub fn is_drained(&self) -> bool {
        self.draining && self.live_calls() == 0
    }

    /// Calls not deleted yet.
    pub fn live_calls(&self) -> usize {
        self.calls
            .values()
            .filter(|c| c.destroy_at.is_none())
            .count()
    }

    /// The operator's `drain` / `drain status`.
    pub(crate) fn drain_command(&mut self, op: DrainOp) -> Reply {
        if op == DrainOp::Start {
            self.start_drain();
        }
        Reply::Drain(DrainStatus {
            draining: self.draining,
            calls: self.live_calls(),
        })
    }
}
