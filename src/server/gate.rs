//! May this server grant now? One pure function answers it, from every
//! input that matters; the ledger grants only through the gate it returns
//! ([`crate::ledger::Gate`]), and nothing else sets that gate.
//!
//! The inputs come from the watchdog (role, epoch, grant lease, recovery
//! period, backup past its limit), from the loop itself (a pause it
//! noticed, a journal that failed, a shutdown, a handover to the other
//! server in progress) and the time.

use crate::codes::Code;
use crate::failover::RoleView;
use crate::ledger::{Gate, Refusal};
use std::time::Instant;

/// Everything the gate is decided from.
#[derive(Clone, Debug, Default)]
pub struct GateInputs {
    /// In a pair: where this server stands, as the watchdog last said
    /// (`None` for a standalone server, which always serves).
    pub pair: Option<RoleView>,
    /// Witness mode: grants need a grant lease.
    pub fenced: bool,
    /// Witness mode: grants are allowed until then.
    pub grant_lease: Option<Instant>,
    /// Paused past takeover_after: no grants until the watchdog re-checked.
    pub paused: bool,
    /// Standalone: reclaims only until then (records may have been lost).
    pub recovery_until: Option<Instant>,
    /// The journal failed: nothing new can be made durable.
    pub journal_failed: bool,
    pub shutting_down: bool,
    /// Stepping down: handing the seats to the other server.
    pub handing_over: bool,
}

/// What the gate allows now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// What the ledger may grant.
    pub gate: Gate,
    /// Whether leases that ran out are returned now. Only a server that
    /// serves and is sure it is the one serving makes such records.
    pub expire: bool,
    /// Whether a reclaim of a seat this server never saw may exceed the
    /// count: in two-server mode (the other server granted it while the
    /// pair was split, and a merge would honour it too) and during a
    /// recovery period (seats this server counts may have been returned
    /// unseen, while the reclaimed one is surely held). Refusing would
    /// lose a seat a client holds.
    pub reclaims_past_count: bool,
}

impl GateInputs {
    /// Serving clients at all (a standalone server always is).
    pub fn serving(&self) -> bool {
        self.pair.as_ref().is_none_or(|p| p.state.is_serving()) && !self.handing_over
    }

    /// Where the active server is, when this one is not it.
    pub fn active_addr(&self) -> Option<&String> {
        self.pair.as_ref().and_then(|p| p.active.as_ref())
    }
}

/// The gate at `now`. Every refusal names why, with a stable code.
pub fn decide(inputs: &GateInputs, now: Instant) -> Decision {
    let two_server = inputs.pair.is_some() && !inputs.fenced;
    let closed = |refusal| Decision {
        gate: Gate::Closed(refusal),
        expire: false,
        reclaims_past_count: false,
    };
    if inputs.shutting_down {
        return closed(Refusal::new(
            Code::ShuttingDown,
            "the server is shutting down",
        ));
    }
    if !inputs.serving() {
        return closed(not_serving(inputs));
    }
    if inputs.paused {
        return closed(Refusal::new(
            Code::NotActive,
            "this server was paused and is checking with the other server; retry shortly",
        ));
    }
    if let Some(refusal) = unleased(inputs, now) {
        return closed(refusal);
    }
    if inputs.journal_failed {
        // Returns (checkin, lease end) still free seats; nothing is granted.
        return Decision {
            gate: Gate::Closed(Refusal::new(
                Code::JournalFailed,
                "this server cannot record seats (its journal failed) and grants none until it is restarted",
            )),
            expire: true,
            reclaims_past_count: false,
        };
    }
    let recovery_until = inputs
        .pair
        .as_ref()
        .map_or(inputs.recovery_until, |p| p.recovery_until);
    if recovery_until.is_some_and(|until| now < until) {
        return Decision {
            gate: Gate::ReclaimOnly(Refusal::new(
                Code::Recovering,
                "this server honours reclaims only until its recovery period ends (it may have missed seats given out); retry shortly",
            )),
            expire: true,
            reclaims_past_count: true,
        };
    }
    if inputs.pair.as_ref().is_some_and(|p| p.backup_expired) {
        return Decision {
            gate: Gate::ReclaimOnly(Refusal::new(
                Code::BackupExpired,
                "this backup has served alone past backup_max_days; new checkouts are refused until the primary returns",
            )),
            expire: true,
            reclaims_past_count: two_server,
        };
    }
    Decision {
        gate: Gate::Open,
        expire: true,
        reclaims_past_count: two_server,
    }
}

/// Witness mode without a grant lease: the refusal. Such a server grants
/// nothing, and renews no seat's lease either (a heartbeat, or a reclaim
/// of a seat it holds, grants time): the other server may have taken over
/// and let those leases run out. Its clients take their seats there.
/// Woken from a pause in two-server mode it still renews: it holds the
/// seats granted while the pair was split, and hands them over on
/// stepping down.
pub fn unleased(inputs: &GateInputs, now: Instant) -> Option<Refusal> {
    (inputs.fenced && inputs.grant_lease.is_none_or(|until| now >= until)).then(|| {
        Refusal::new(
            Code::NotActive,
            "this server cannot confirm it is still the active one (no grant lease: the other server and the witness are out of reach); retry shortly",
        )
    })
}

/// The state status reports: an active server that cannot confirm it
/// still is (it was paused, or in witness mode has no grant lease) shows
/// `fenced`, so that nobody reads its seat list as the pair's truth
/// while the other server may be serving.
pub fn shown_state<'a>(state: &'a str, decision: &Decision) -> &'a str {
    match &decision.gate {
        Gate::Closed(r) if state == "active" && r.code == Code::NotActive => "fenced",
        _ => state,
    }
}

/// The refusal a server that does not serve gives seat requests.
pub fn not_serving(inputs: &GateInputs) -> Refusal {
    match inputs.active_addr() {
        Some(active) if !inputs.handing_over => Refusal::new(
            Code::Standby,
            format!("this server is standing by; the active server is {active}"),
        ),
        _ => Refusal::new(
            Code::NotActive,
            "this server is not serving now and knows no active server; try the other one",
        ),
    }
}

#[cfg(test)]
mod tests;
