//! When a reply may leave. A reply that reports a seat change waits until
//! its record is durable here and, while the standby is in sync, until the
//! standby acknowledged it ([`super::output::Output`] holds it). Replies
//! that can never be confirmed that way (the journal failed, or the server
//! stepped down before its standby acknowledged them) are settled: each
//! new grant among them is taken back and answered with an error instead.

use super::core::Core;
use crate::codes::Code;
use crate::failover::ToWatchdog;
use crate::ledger::{Name, Now, Reason};
use crate::protocol::reply;

/// A reply, and what must happen before it may leave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub text: String,
    /// The record it reports must be durable (and acknowledged) first.
    pub wait_for: Option<u64>,
    /// A new grant's handle: if it can never become durable, the seat is
    /// taken back and the client told so instead.
    pub grant: Option<Name>,
}

impl Reply {
    /// A reply that may leave at once.
    pub fn now(text: String) -> Reply {
        Reply {
            text,
            wait_for: None,
            grant: None,
        }
    }
}

/// Replies for other connections than the one being served, made while
/// finishing an iteration.
#[derive(Default)]
pub struct Effects {
    /// (connection key, reply)
    pub pushes: Vec<(usize, Reply)>,
    /// A line for every connection (e.g. `* MOVED`).
    pub broadcast: Option<String>,
    /// Requests held during a handover may be read again.
    pub resume_requests: bool,
}

/// When held replies may leave (see [`super::output::Output::settle`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Release {
    /// Those waiting for this record or an earlier one.
    Upto(u64),
    /// Those waiting for `release` or earlier leave; those waiting past
    /// `fail_after` never can be confirmed (the journal failed, or the
    /// server stepped down before its standby acknowledged them).
    Settle { release: u64, fail_after: u64 },
}

impl Core {
    /// When held replies may leave: durable here, and acknowledged by the
    /// standby while it is in sync.
    pub fn release(&self) -> Release {
        let upto = self.confirmed();
        if self.journal.failure().is_some() {
            return Release::Settle {
                release: upto,
                fail_after: upto,
            };
        }
        match self.unconfirmed_after {
            Some(fail_after) => Release::Settle {
                release: upto.min(fail_after),
                fail_after,
            },
            None => Release::Upto(upto),
        }
    }

    /// Records confirmed: durable, and acknowledged while that is awaited.
    fn confirmed(&self) -> u64 {
        let durable = self.journal.durable_seq();
        match &self.pair {
            Some(p) if p.wait_for_acks => durable.min(p.acked),
            _ => durable,
        }
    }

    /// The journal failed: say so once. Grants it never recorded are
    /// taken back as their held replies settle; then the pair hands over
    /// ([`Core::after_release`]).
    pub(super) fn notice_journal_failure(&mut self) {
        let Some(failure) = self.journal.failure() else {
            return;
        };
        if self.journal_failure_logged {
            return;
        }
        self.journal_failure_logged = true;
        log::error!(
            "journal failed ({failure}): granting nothing until restarted; grants not yet recorded are taken back"
        );
    }

    /// Called by the loop once held replies were released or settled
    /// ([`Core::release`]): what had to wait for the grants that could
    /// never be confirmed to be taken back goes now, so the other server
    /// never hears of them as seats.
    pub fn after_release(&mut self, now: Now) {
        self.flush_records();
        if self.journal_failure_logged && !self.journal_failure_told {
            self.journal_failure_told = true;
            self.tell_watchdog(ToWatchdog::JournalFailed);
        }
        if std::mem::take(&mut self.handover_pending) {
            let merge = self.ledger.merge_offer(now);
            self.tell_watchdog(ToWatchdog::Handover(merge));
        }
    }

    /// A new grant whose reply can never be confirmed: the seat is taken
    /// back (if it is not already) and the client gets this instead.
    pub fn take_back(&mut self, handle: &str, now: Now) -> String {
        let _ = self.ledger.remove(handle, Reason::Unconfirmed, now);
        self.flush_records();
        if self.journal.failure().is_some() {
            reply::err(
                Code::JournalFailed,
                "the seat could not be recorded (the server's journal failed) and was not granted; retry, the other server may serve",
            )
            .finish()
        } else {
            reply::err(
                Code::NotActive,
                "this server stepped down before the grant was confirmed; the seat was not granted: retry on the active server",
            )
            .field_opt("active", self.presence.active_addr.as_ref())
            .finish()
        }
    }
}
