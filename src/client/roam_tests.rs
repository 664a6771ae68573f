//! The roam store, in a temporary directory, with tokens signed here.

use super::*;
use crate::licence::HostId;
use ed25519_dalek::SigningKey;
use std::os::unix::fs::PermissionsExt;

const NOW: u64 = 1_800_100_000;

fn key(byte: u8) -> SigningKey {
    SigningKey::from_bytes(&[byte; 32])
}

fn token(id: &str, feature: &str, pool: &str, count: u32) -> RoamToken {
    RoamToken {
        id: id.into(),
        feature: feature.into(),
        version: Version::parse("0").unwrap(),
        pool: Version::parse(pool).unwrap(),
        count,
        user: "ann".into(),
        host: "ws1".into(),
        hostid: "machine:0123456789abcdef".into(),
        from: 1_800_000_000,
        until: 1_800_316_800,
        pair: "any+any".into(),
        key_id: key_id(&key(1).verifying_key()),
    }
}

fn signed(t: &RoamToken, by: u8) -> SignedToken {
    SignedToken::parse(&t.sign(&key(by))).unwrap()
}

fn here() -> HostIds {
    HostIds::from_ids([HostId::parse("machine:0123456789abcdef").unwrap()])
}

#[test]
fn tokens_are_kept_found_and_forgotten_privately() {
    let dir = tempfile::tempdir().unwrap();
    let store = RoamStore::open(dir.path().join("roams"));
    assert!(store.tokens().unwrap().is_empty());
    let a = signed(&token("id-a", "cad", "2.0", 1), 1);
    let b = signed(&token("id-b", "viewer", "1.0", 2), 1);
    let path = store.save(&a).unwrap();
    store.save(&b).unwrap();
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(store.dir()), 0o700);
    assert!(
        !path.to_string_lossy().contains("id-a"),
        "the id is a secret"
    );
    assert_eq!(store.find(None).unwrap().len(), 2);
    assert_eq!(store.find(Some("cad")).unwrap()[0].signed, a);
    assert_eq!(store.find(Some("id-b")).unwrap()[0].signed, b);
    assert_eq!(store.find(Some(&b.text)).unwrap()[0].signed, b);
    assert!(store.find(Some("solver")).unwrap().is_empty());
    // A later token of the same roam replaces the earlier one.
    let mut longer = token("id-a", "cad", "2.0", 1);
    longer.until += 86_400;
    store.save(&signed(&longer, 1)).unwrap();
    assert_eq!(store.find(Some("cad")).unwrap().len(), 1);
    store.remove(&longer).unwrap();
    store.remove(&longer).unwrap();
    assert_eq!(store.find(None).unwrap().len(), 1);
    // A damaged file is reported, not taken for a token.
    fs::write(dir.path().join("roams/junk.token"), "floatd-roam-1.x.y\n").unwrap();
    assert_eq!(store.tokens().unwrap().len(), 1);
    assert_eq!(store.damaged().unwrap().len(), 1);
}

#[test]
fn pins_are_kept_per_pair() {
    let dir = tempfile::tempdir().unwrap();
    let store = RoamStore::open(dir.path());
    assert_eq!(store.pinned("any+any").unwrap(), None);
    store.pin("any+any", &key(1).verifying_key()).unwrap();
    store
        .pin("machine:aaaaaaaaaaaaaaaa", &key(2).verifying_key())
        .unwrap();
    assert_eq!(
        store.pinned("any+any").unwrap(),
        Some(key(1).verifying_key())
    );
    assert_eq!(
        store.pinned("machine:aaaaaaaaaaaaaaaa").unwrap(),
        Some(key(2).verifying_key())
    );
}

#[test]
fn the_offline_check_wants_the_pinned_key_this_host_the_dates_and_enough() {
    let dir = tempfile::tempdir().unwrap();
    let store = RoamStore::open(dir.path());
    let cad = token("id-a", "cad", "2.0", 2);
    store.save(&signed(&cad, 1)).unwrap();
    let v = |s: &str| Version::parse(s).unwrap();
    // Nothing pinned for its pair: nothing to trust it by.
    assert!(store.check("cad", &v("2"), 1, &here(), NOW).is_err());
    store.pin("any+any", &key(1).verifying_key()).unwrap();
    assert_eq!(store.check("cad", &v("2"), 2, &here(), NOW).unwrap(), cad);
    assert_eq!(store.check("cad", &v("1.5"), 1, &here(), NOW).unwrap(), cad);
    for (feature, version, count, host, now) in [
        ("cad", "2.1", 1, here(), NOW),
        ("cad", "2", 3, here(), NOW),
        ("viewer", "1", 1, here(), NOW),
        (
            "cad",
            "2",
            1,
            HostIds::from_ids([HostId::parse("host:other").unwrap()]),
            NOW,
        ),
        ("cad", "2", 1, here(), 1_800_316_800),
    ] {
        assert!(
            store
                .check(feature, &v(version), count, &host, now)
                .is_err(),
            "{feature} {version} x{count} at {now} on {host:?}"
        );
    }
    // Re-pinned to another key (say, by hand): the token no longer counts.
    store.pin("any+any", &key(2).verifying_key()).unwrap();
    assert!(store.check("cad", &v("2"), 1, &here(), NOW).is_err());
}

#[test]
fn a_token_signed_by_another_key_than_the_pinned_one_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = RoamStore::open(dir.path());
    store.pin("any+any", &key(1).verifying_key()).unwrap();
    let text = token("id-x", "cad", "2", 1).sign(&key(2));
    let offered = STANDARD.encode(key(2).verifying_key().as_bytes());
    match store.accept(&text, &offered) {
        Err(RoamError::Unusable(why)) => assert!(why.contains("pinned"), "{why}"),
        other => panic!("{other:?}"),
    }
    assert!(store.tokens().unwrap().is_empty());
}
