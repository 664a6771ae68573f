//! Builds the status report from the server's state.

use super::core::Core;
use crate::civil::format_timestamp;
use crate::ledger::{seat_id, Now, Seat};
use crate::protocol::status::{FeatureStatus, Holder, RoamStatus, StatusReport};
use std::collections::HashMap;

/// Most holders listed per pool in one report (STATUS, /status.json, the
/// page): what one report costs stays bounded however many seats are out.
/// The rest are counted in `more_holders`.
pub const MAX_HOLDERS_LISTED: usize = 50;

/// The `STATUS` reply, listing at most `holders` holders a pool (the
/// admin's `STATUS holders=all`: every one).
pub fn reply(core: &Core, now: Now, holders: usize) -> String {
    let report = build_listing(core, now, holders);
    let json = serde_json::to_string(&report).expect("status serialises");
    format!("STATUS {json}\n")
}

/// The status report, listing at most [`MAX_HOLDERS_LISTED`] holders a pool.
pub fn build(core: &Core, now: Now) -> StatusReport {
    build_listing(core, now, MAX_HOLDERS_LISTED)
}

fn build_listing(core: &Core, now: Now, holders: usize) -> StatusReport {
    let today = crate::civil::Date::from_days((now.unix / 86_400) as i64);
    let mut index = HashMap::new();
    let mut features: Vec<FeatureStatus> = core
        .ledger
        .pools()
        .enumerate()
        .map(|(i, view)| {
            index.insert(&view.pool.key, i);
            let key = &view.pool.key;
            FeatureStatus {
                name: key.feature.to_string(),
                version: key.version.to_string(),
                count: view.pool.limit(),
                in_use: view.used,
                expires: key.expiry.to_string(),
                days_left: key.expiry.days_left(today),
                share: key.share.as_str().to_string(),
                queue: core.ledger.queue_len(&key.feature),
                holders: Vec::new(),
                more_holders: 0,
                roaming: 0,
            }
        })
        .collect();
    let mut by_pool: Vec<Vec<&Seat>> = vec![Vec::new(); features.len()];
    for seat in core.ledger.seats() {
        if let Some(&i) = index.get(&seat.grant.pool) {
            by_pool[i].push(seat);
        }
    }
    for (f, seats) in features.iter_mut().zip(by_pool) {
        f.roaming = seats
            .iter()
            .filter(|s| s.grant.roam.is_some())
            .map(|s| s.grant.count as u64)
            .sum();
        let (listed, more) = longest_held(seats, holders);
        f.more_holders = more as u64;
        f.holders = listed.into_iter().map(|s| holder(s, now)).collect();
    }
    let mut alerts = Vec::new();
    let (servers, witness) = match &core.pair {
        Some(p) => {
            alerts.extend(p.status.alerts.iter().cloned());
            (p.status.servers.clone(), p.status.witness.clone())
        }
        None => (Vec::new(), None),
    };
    if let Some(failure) = core.journal.failure() {
        alerts.push(format!("journal failure: {failure}"));
    }
    if let Some(first) = core.served.skipped.first() {
        alerts.push(format!(
            "{} broken licence line(s) or file(s) skipped, first {first}: fix and reread \
             (seats they served stay out; new checkouts of them are refused)",
            core.served.skipped.len()
        ));
    }
    StatusReport {
        server: core.presence.server.clone(),
        role: core.presence.role.clone(),
        state: core.shown_state(now.mono).to_string(),
        epoch: core.presence.epoch,
        uptime_secs: core.started.elapsed().as_secs(),
        lease_secs: core.ledger.lease().as_secs(),
        connections: core.connections,
        seq: core.ledger.last_seq(),
        features,
        servers,
        witness,
        alerts,
    }
}

/// The `limit` seats held longest (oldest grant first; ties in a stable order),
/// and how many were left out. Selects before sorting: linear in the seats.
fn longest_held(mut seats: Vec<&Seat>, limit: usize) -> (Vec<&Seat>, usize) {
    let order =
        |a: &&Seat, b: &&Seat| (a.grant.at, &a.grant.handle).cmp(&(b.grant.at, &b.grant.handle));
    let more = seats.len().saturating_sub(limit);
    if more > 0 {
        seats.select_nth_unstable_by(limit, order);
        seats.truncate(limit);
    }
    seats.sort_unstable_by(order);
    (seats, more)
}

fn holder(seat: &Seat, now: Now) -> Holder {
    let g = &seat.grant;
    Holder {
        seat: seat_id(&g.handle),
        user: g.user.to_string(),
        host: g.host.to_string(),
        client: g.client.to_string(),
        count: g.count,
        version: g.version.to_string(),
        granted_at: g.at,
        age_secs: now.unix.saturating_sub(g.at),
        // A roam returns by the calendar, not by its lease.
        returns_in_secs: match &g.roam {
            Some(r) => r.until.saturating_sub(now.unix),
            None => seat
                .returns_at()
                .saturating_duration_since(now.mono)
                .as_secs(),
        },
        roam: g.roam.as_ref().map(|r| RoamStatus {
            hostid: r.hostid.clone(),
            from: format_timestamp(r.from),
            until: format_timestamp(r.until),
        }),
    }
}

/// The STATUS= text of a licence server: role, state, epoch, seats in use.
pub fn systemd_status(core: &Core, now: std::time::Instant) -> String {
    let mut used = 0u64;
    let mut total = 0u64;
    let mut uncounted = 0u64;
    for view in core.ledger.pools() {
        match view.pool.limit() {
            Some(limit) => {
                used += view.used;
                total += limit;
            }
            None => uncounted += view.used,
        }
    }
    let mut text = format!(
        "{} {}, epoch {}: {used} of {total} seats in use",
        core.presence.role,
        core.shown_state(now),
        core.presence.epoch
    );
    if uncounted > 0 {
        text.push_str(&format!(" (+{uncounted} uncounted)"));
    }
    if core.journal.failure().is_some() {
        text.push_str("; JOURNAL FAILED, no grants");
    }
    text
}
