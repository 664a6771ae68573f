//! Builds the status report from the server's state.

use super::core::Core;
use crate::ledger::Now;
use crate::protocol::status::{FeatureStatus, Holder, StatusReport};
use std::collections::HashMap;

pub fn build(core: &Core, now: Now) -> StatusReport {
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
                name: key.feature.clone(),
                version: key.version.to_string(),
                count: view.pool.limit(),
                in_use: view.used,
                expires: key.expiry.to_string(),
                days_left: key.expiry.days_left(today),
                share: key.share.as_str().to_string(),
                queue: core.ledger.queue_len(&key.feature),
                holders: Vec::new(),
            }
        })
        .collect();
    for seat in core.ledger.seats() {
        let g = &seat.grant;
        let Some(&i) = index.get(&g.pool) else {
            continue;
        };
        features[i].holders.push(Holder {
            handle: g.handle.clone(),
            user: g.user.clone(),
            host: g.host.clone(),
            client: g.client.clone(),
            count: g.count,
            age_secs: now.unix.saturating_sub(g.at),
            returns_in_secs: seat
                .returns_at()
                .saturating_duration_since(now.mono)
                .as_secs(),
        });
    }
    for f in &mut features {
        f.holders
            .sort_by(|a, b| b.age_secs.cmp(&a.age_secs).then(a.handle.cmp(&b.handle)));
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
        state: core.presence.state.clone(),
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

/// The STATUS= text of a licence server: role, state, epoch, seats in use.
pub fn systemd_status(core: &Core) -> String {
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
        core.presence.role, core.presence.state, core.presence.epoch
    );
    if uncounted > 0 {
        text.push_str(&format!(" (+{uncounted} uncounted)"));
    }
    if core.journal.failure().is_some() {
        text.push_str("; JOURNAL FAILED, no grants");
    }
    text
}
