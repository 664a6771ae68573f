//! One epoch truth, through real processes: what a server of a pair shows
//! of itself (its systemd STATUS=, /status.json, the STATUS request, the
//! floatd_state and floatd_epoch metrics, its own line in its status) is
//! what the other server reports for it (in its STATUS, and in
//! `floatctl status --json`), in every state: starting, syncing, ready,
//! active, after a failover and after a failback.

mod common;

use common::notify::{count, NotifySocket};
use common::*;
use serde_json::Value;
use std::time::{Duration, Instant};

const CAD: &str = "FEATURE cad version=1.0 count=3 expires=permanent";

/// Test timings (takeover after 1 s), and the status page on.
fn flags() -> Vec<&'static str> {
    let mut flags = FAST.to_vec();
    flags.extend(["--fence-after", "600ms", "--lease", "4s"]);
    flags.extend(["--http", "127.0.0.1:0"]);
    flags
}

/// A pair whose servers tell systemd (a notify socket each) how they are.
struct Watched {
    pair: Pair,
    primary_notify: NotifySocket,
    backup_notify: NotifySocket,
}

impl Watched {
    fn build(flags: &[&str]) -> Watched {
        let mut pair = Pair::build(CAD, flags);
        let (primary_notify, backup_notify) = (NotifySocket::new(), NotifySocket::new());
        for (role, notify) in [("primary", &primary_notify), ("backup", &backup_notify)] {
            pair.env.push((
                role.to_string(),
                "NOTIFY_SOCKET".to_string(),
                notify.path.clone(),
            ));
        }
        Watched {
            pair,
            primary_notify,
            backup_notify,
        }
    }

    /// Every view of the server of `role`: (where, state, epoch).
    fn views(&self, role: &str) -> Vec<(&'static str, String, u64)> {
        let pair = &self.pair;
        let (server, addr, notify, other) = match role {
            "primary" => (
                &pair.primary,
                pair.primary_addr(),
                &self.primary_notify,
                pair.backup.as_ref().map(|_| pair.backup_addr()),
            ),
            _ => (
                &pair.backup,
                pair.backup_addr(),
                &self.backup_notify,
                pair.primary.as_ref().map(|_| pair.primary_addr()),
            ),
        };
        let server = server.as_ref().expect("the server runs");
        let mut views = vec![systemd_view(notify.last_status())];
        let http = server.http_addr.as_deref().expect("--http");
        let page: Value = serde_json::from_str(&http_get(http, "/status.json")).unwrap();
        views.push(("/status.json", text(&page["state"]), number(&page["epoch"])));
        let own = LineClient::connect(&addr).status();
        views.push(("STATUS", text(&own["state"]), number(&own["epoch"])));
        views.push(line_of(&own, role, "its own line in STATUS"));
        views.push(metrics_view(&http_get(http, "/metrics")));
        if let Some(other) = other {
            let report = LineClient::connect(&other).status();
            views.push(line_of(&report, role, "the other server's STATUS"));
        }
        // floatctl asks the active server, whichever it is.
        let out = floatctl(&[
            "--server",
            &pair.servers(),
            "--timeout",
            "5",
            "status",
            "--json",
        ]);
        if out.status.success() {
            let report: Value = serde_json::from_slice(&out.stdout).unwrap();
            views.push(line_of(&report, role, "floatctl status --json"));
        }
        views
    }

    /// Waits until every view of the server of `role` shows `state` and
    /// one epoch; returns that epoch.
    fn agree(&self, role: &str, state: &str) -> u64 {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let views = self.views(role);
            let epoch = views[0].2;
            if views.iter().all(|(_, s, e)| s == state && *e == epoch) {
                return epoch;
            }
            if Instant::now() > deadline {
                panic!(
                    "the {role} never showed {state} at one epoch everywhere; last seen:\n{views:#?}\n{}",
                    self.pair.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// The STATUS= sent with READY=1, the first message of a server.
fn ready_view(notify: &NotifySocket) -> (&'static str, String, u64) {
    let messages = notify.until(PATIENCE, "READY=1", |m| count(m, "READY=1") > 0);
    let ready = messages
        .iter()
        .find(|m| m.lines().any(|l| l == "READY=1"))
        .unwrap();
    systemd_view(
        ready
            .lines()
            .find_map(|l| l.strip_prefix("STATUS="))
            .map(String::from),
    )
}

/// "backup ready, epoch 3: 0 of 3 seats in use"
fn systemd_view(status: Option<String>) -> (&'static str, String, u64) {
    let parsed = status.as_deref().and_then(|text| {
        let (head, _) = text.split_once(':')?;
        let (role_state, epoch) = head.split_once(", epoch ")?;
        Some((
            role_state.split_whitespace().nth(1)?.to_string(),
            epoch.parse().ok()?,
        ))
    });
    let (state, epoch) = parsed.unwrap_or_else(|| (format!("{status:?}"), 0));
    ("STATUS=", state, epoch)
}

/// `floatd_state{state="S"} 1` and `floatd_epoch E`.
fn metrics_view(text: &str) -> (&'static str, String, u64) {
    let state = text
        .lines()
        .find_map(|l| {
            l.strip_prefix("floatd_state{state=\"")?
                .strip_suffix("\"} 1")
        })
        .unwrap_or("none");
    let epoch = text
        .lines()
        .find_map(|l| l.strip_prefix("floatd_epoch ")?.parse().ok())
        .unwrap_or(0);
    ("metrics", state.to_string(), epoch)
}

/// The line of the server of `role` in a status report's `servers`.
fn line_of(report: &Value, role: &str, view: &'static str) -> (&'static str, String, u64) {
    let line = report["servers"]
        .as_array()
        .and_then(|all| all.iter().find(|s| s["role"] == role));
    match line {
        Some(s) => (view, text(&s["state"]), number(&s["epoch"])),
        None => (view, "absent".into(), 0),
    }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or("?").to_string()
}

fn number(v: &Value) -> u64 {
    v.as_u64().unwrap_or(u64::MAX)
}

/// The primary dies and the backup takes over at a higher epoch; the
/// primary returns and takes back at a higher one still. Returns the epochs.
fn fail_over_and_back(w: &mut Watched, before: u64) {
    drop(w.pair.primary.take());
    let taken_over = w.agree("backup", "active");
    assert!(taken_over > before, "{taken_over} after {before}");
    w.pair.start_primary();
    let taken_back = w.agree("primary", "active");
    assert!(taken_back > taken_over, "{taken_back} after {taken_over}");
    assert_eq!(w.agree("backup", "ready"), taken_back);
}

#[test]
fn a_witness_mode_pair_shows_one_epoch_per_server_in_every_state() {
    let mut w = Watched::build(&flags());
    w.pair.start_witness();
    w.pair.start_primary();
    w.pair.start_backup();
    w.pair.wait_states("active", "ready");
    let first = w.agree("primary", "active");
    assert_eq!(w.agree("backup", "ready"), first);

    // The primary's messages stop reaching the backup, and a checkout
    // makes a record the backup cannot acknowledge: the primary records
    // the backup stale at the witness, which tells the backup. The witness
    // hears the primary, so it lets the backup take over no more than it
    // lets it start: each state lasts while the test looks.
    w.pair.to_backup.cut();
    let mut alice = LineClient::hello(&w.pair.primary_addr(), "alice", "ws1");
    alice.checkout("cad").expect("the primary grants alone");
    assert_eq!(w.agree("backup", "syncing"), first);
    drop(w.pair.backup.take());
    w.pair.start_backup();
    assert_eq!(w.agree("backup", "starting"), first);
    w.pair.to_backup.heal();
    assert_eq!(w.agree("backup", "ready"), first);

    fail_over_and_back(&mut w, first);
}

#[test]
fn a_two_server_pair_shows_one_epoch_per_server_after_failover_and_failback() {
    let mut w = Watched::build(&flags());
    w.pair.start_primary();
    w.pair.start_backup();
    // Ready to serve, before the pair met: the epoch its journal ends with
    // (none yet), which its first heartbeats carry too.
    for notify in [&w.primary_notify, &w.backup_notify] {
        assert_eq!(ready_view(notify), ("STATUS=", "starting".into(), 0));
    }
    w.pair.wait_states("active", "ready");
    let first = w.agree("primary", "active");
    assert_eq!(w.agree("backup", "ready"), first);
    fail_over_and_back(&mut w, first);
}
