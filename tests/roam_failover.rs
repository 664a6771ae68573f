//! Roaming across failover (docs/ROAMING.md): a roam granted by the
//! primary is counted, extended and returned on the backup after a
//! takeover, is still there after failback, and both servers sign with the
//! one roam key the user pinned.

mod common;

use common::*;
use floatd::client::RoamStore;
use std::process::Output;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const FEATURES: &str = "FEATURE cad version=2.0 count=3 expires=permanent roam=5";

/// `floatctl` as `user` against the pair, with `store` for roam tokens.
fn ctl(pair: &Pair, store: &std::path::Path, user: &str, args: &[&str]) -> Output {
    let servers = pair.servers();
    let dir = store.display().to_string();
    let mut all = vec!["--server", &servers, "--user", user, "--host", "ws1"];
    all.extend_from_slice(args);
    if args.first() == Some(&"roam") {
        all.extend(["--roam-dir", &dir]);
    }
    floatctl(&all)
}

fn ok(pair: &Pair, out: Output) -> String {
    assert!(
        out.status.success(),
        "floatctl failed ({:?}): {}{}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        pair.logs()
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Seats of cad in use and roaming, as a server shows them.
fn counts(addr: &str) -> (u64, u64) {
    (
        feature_sum(addr, "cad", "in_use"),
        feature_sum(addr, "cad", "roaming"),
    )
}

fn wait_counts(addr: &str, want: (u64, u64), what: &str) {
    wait_until(PATIENCE, what, || counts(addr) == want);
}

/// Waits until `addr` counts the other server in sync (roams need it).
fn wait_in_sync(addr: &str) {
    wait_until(PATIENCE, "the standby to be in sync", || {
        status_json(addr)["servers"][1]["state"] == "ready"
    });
}

fn roam_key_id(state: &std::path::Path) -> String {
    let text = std::fs::read_to_string(state.join("roam.key")).expect("roam.key");
    let key = floatd::licence::keys::parse_secret_key(&text).unwrap();
    floatd::licence::keys::key_id(&key.verifying_key())
}

#[test]
fn roams_are_counted_extended_and_returned_on_the_backup_and_survive_failback() {
    let mut pair = Pair::start(FEATURES, FAST);
    wait_in_sync(&pair.primary_addr());
    let ann = pair.site.path("ann-roams");
    let bob = pair.site.path("bob-roams");
    ok(
        &pair,
        ctl(&pair, &ann, "ann", &["roam", "cad", "--days", "2"]),
    );
    ok(
        &pair,
        ctl(&pair, &bob, "bob", &["roam", "cad", "--days", "1"]),
    );
    let first = RoamStore::open(&ann).tokens().unwrap()[0].token().clone();
    // The standby counts them as it applies the records.
    wait_counts(
        &pair.backup_addr(),
        (2, 2),
        "the backup to count both roams",
    );
    assert_eq!(counts(&pair.primary_addr()), (2, 2));

    // The primary dies; the backup takes over with the roams.
    pair.primary.as_mut().unwrap().kill9();
    wait_until(PATIENCE, "the backup to take over", || {
        server_state(&pair.backup_addr()) == "active"
    });
    assert_eq!(counts(&pair.backup_addr()), (2, 2));

    // Extended there: the backup signs with the key ann pinned at her
    // first roam, from the primary, so her store takes the new token.
    let said = ok(
        &pair,
        ctl(
            &pair,
            &ann,
            "ann",
            &["roam", "--extend", "cad", "--days", "4"],
        ),
    );
    assert!(said.contains("extended"), "{said}");
    let extended = RoamStore::open(&ann).tokens().unwrap()[0].token().clone();
    assert_eq!(extended.id, first.id);
    assert_eq!(extended.until, first.until + 2 * 86_400);
    // A new roam there is accepted by the same pin; one returned there is
    // back at once.
    ok(
        &pair,
        ctl(&pair, &ann, "ann", &["roam", "cad", "--days", "1"]),
    );
    assert_eq!(RoamStore::open(&ann).tokens().unwrap().len(), 2);
    ok(&pair, ctl(&pair, &bob, "bob", &["roam", "--return"]));
    assert_eq!(counts(&pair.backup_addr()), (2, 2));
    let primary_state = pair.site.path("state-primary");
    let backup_state = pair.site.path("state-backup");
    assert_eq!(roam_key_id(&backup_state), roam_key_id(&primary_state));

    // The primary comes back and takes over again: the same roams on both,
    // none doubled, none lost.
    pair.start_primary();
    pair.wait_states("active", "ready");
    assert_eq!(counts(&pair.primary_addr()), (2, 2));
    wait_counts(&pair.backup_addr(), (2, 2), "the backup to agree");
    let holders = &status_json(&pair.primary_addr())["features"][0]["holders"];
    let ends: Vec<String> = holders
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["roam"]["until"].as_str().unwrap().to_string())
        .collect();
    assert!(
        ends.contains(&floatd::civil::format_timestamp(extended.until)),
        "the extension made on the backup holds: {ends:?}"
    );
    // The backup's usage is in the primary's report log.
    let report = report_log(&primary_state);
    assert!(report.contains(" roam_extend "), "{report}");
    assert!(report.contains("reason=roam_return"), "{report}");

    // Returned on the primary: free on both.
    ok(&pair, ctl(&pair, &ann, "ann", &["roam", "--return"]));
    assert_eq!(counts(&pair.primary_addr()), (0, 0));
    wait_counts(&pair.backup_addr(), (0, 0), "the backup to free them");
    assert!(RoamStore::open(&ann).tokens().unwrap().is_empty());
}

#[test]
fn a_roam_ends_by_itself_on_the_server_that_took_over() {
    let mut flags = FAST.to_vec();
    flags.extend(["--roam-day", "3s"]);
    let mut pair = Pair::start(FEATURES, &flags);
    wait_in_sync(&pair.primary_addr());
    let ann = pair.site.path("ann-roams");
    ok(
        &pair,
        ctl(&pair, &ann, "ann", &["roam", "cad", "--days", "1"]),
    );
    let until = RoamStore::open(&ann).tokens().unwrap()[0].token().until;
    wait_counts(&pair.backup_addr(), (1, 1), "the backup to count the roam");
    pair.primary.as_mut().unwrap().kill9();
    wait_until(PATIENCE, "the backup to take over", || {
        server_state(&pair.backup_addr()) == "active"
    });
    let now = || {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    };
    wait_until(
        Duration::from_secs(until.saturating_sub(now())) + PATIENCE,
        "the roam to end on the backup",
        || counts(&pair.backup_addr()) == (0, 0),
    );
    let state = pair.site.path("state-backup");
    wait_until(PATIENCE, "the roam's end in the report log", || {
        report_log(&state).contains("reason=roam_end")
    });
}

#[test]
fn a_server_serving_alone_roams_and_the_returning_standby_learns_of_it() {
    let mut pair = Pair::start(FEATURES, FAST);
    let ann = pair.site.path("ann-roams");
    pair.backup.as_mut().unwrap().kill9();
    let primary = pair.primary_addr();
    wait_until(PATIENCE, "the primary to see its backup gone", || {
        status_json(&primary)["servers"][1]["state"] == "inaccessible"
    });
    ok(
        &pair,
        ctl(&pair, &ann, "ann", &["roam", "cad", "--days", "1"]),
    );
    assert_eq!(counts(&primary), (1, 1));
    pair.start_backup();
    pair.wait_states("active", "ready");
    wait_counts(
        &pair.backup_addr(),
        (1, 1),
        "the backup to learn of the roam",
    );
}
