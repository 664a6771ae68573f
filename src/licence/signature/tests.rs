use super::*;
use crate::licence::keys::TrustedKeys;
use crate::licence::parse::parse_licence;

fn signing_key(byte: u8) -> SigningKey {
    SigningKey::from_bytes(&[byte; 32])
}

fn trusting(key: &SigningKey) -> TrustedKeys {
    let mut keys = TrustedKeys::new();
    keys.add(key.verifying_key(), "test");
    keys
}

const LICENCE: &str = "\
# Acme site licence
SERVER lic1 hostid=host:lic1 port=27000
FAILOVER lic2 hostid=mac:52:54:00:12:34:56 port=27001

FEATURE cad version=2.0 count=10 expires=2027-12-31 share=user min_checkout=60 customer=\"Acme Ltd\" _note=\"seat for Bob\"   # renewal due
FEATURE viewer version=1.0 count=uncounted expires=permanent sig=ed25519:00000000:AAAA
";

/// Every feature's check against `keys`.
fn checks(text: &str, keys: &TrustedKeys) -> Vec<SigCheck> {
    let file = parse_licence("site.lic", text.as_bytes()).unwrap();
    assert!(file.errors.is_empty(), "{:?}", file.errors);
    file.features
        .iter()
        .map(|f| {
            check_feature(
                f,
                &file.server.hostid,
                file.failover.as_ref().map(|f| &f.hostid),
                keys,
            )
        })
        .collect()
}

fn signed() -> String {
    sign_licence("site.lic", LICENCE.as_bytes(), &signing_key(7))
        .unwrap()
        .text
}

/// A line signed before `roam=` existed: its signature must verify
/// for as long as floatd reads licence files.
const SIGNED_BEFORE_ROAM: &str = "SERVER lic1 hostid=host:lic1 port=27000\n\
        FEATURE cad version=2.0 count=10 expires=2027-12-31 customer=Acme \
        sig=ed25519:fe812c12:mINmp/TVZdVl29/fSBA+Y8Lh+FPX6vmrd1TiWep7DnYpA3HeZkK46cZTyR1hx7giobAPuvMYw8L4toKaJ8+5CQ==\n";

#[test]
fn licences_signed_before_roaming_still_verify() {
    let key = signing_key(7);
    let id = key_id(&key.verifying_key());
    assert_eq!(
        checks(SIGNED_BEFORE_ROAM, &trusting(&key)),
        [SigCheck::Valid { key_id: id }]
    );
}

#[test]
fn roam_is_signed_like_any_field() {
    let keys = trusting(&signing_key(7));
    let text = sign_licence(
        "site.lic",
        b"SERVER lic1 hostid=any\n\
              FEATURE cad version=2 count=3 expires=permanent roam=7\n\
              FEATURE viewer version=1 count=2 expires=permanent\n",
        &signing_key(7),
    )
    .unwrap()
    .text;
    assert!(checks(&text, &keys).iter().all(SigCheck::is_valid));
    for (from, to) in [
        ("roam=7", "roam=30"),
        (" roam=7", ""),
        (
            "FEATURE viewer version=1",
            "FEATURE viewer version=1 roam=7",
        ),
    ] {
        let edited = text.replacen(from, to, 1);
        assert!(
            checks(&edited, &keys)
                .iter()
                .any(|c| matches!(c, SigCheck::Bad { .. })),
            "{from} -> {to}"
        );
    }
}

#[test]
fn signing_keeps_the_layout_and_adds_or_replaces_sig() {
    let key = signing_key(7);
    let out = sign_licence("site.lic", LICENCE.as_bytes(), &key).unwrap();
    assert_eq!(out.features, 2);
    let id = key_id(&key.verifying_key());
    let lines: Vec<&str> = out.text.lines().collect();
    let original: Vec<&str> = LICENCE.lines().collect();
    assert_eq!(lines[..4], original[..4]);
    assert!(lines[4].starts_with(&format!(
            "FEATURE cad version=2.0 count=10 expires=2027-12-31 share=user min_checkout=60 customer=\"Acme Ltd\" _note=\"seat for Bob\" sig=ed25519:{id}:"
        )));
    assert!(lines[4].ends_with("   # renewal due"));
    assert!(lines[5].starts_with(&format!(
        "FEATURE viewer version=1.0 count=uncounted expires=permanent sig=ed25519:{id}:"
    )));
    assert!(!lines[5].contains("AAAA "));
    assert!(out.text.ends_with('\n'));
    assert_eq!(
        checks(&out.text, &trusting(&key)),
        vec![SigCheck::Valid { key_id: id.clone() }; 2]
    );
    // Signing again gives the same file: Ed25519 is deterministic.
    let again = sign_licence("site.lic", out.text.as_bytes(), &key).unwrap();
    assert_eq!(again.text, out.text);
}

#[test]
fn signing_warns_about_lines_a_server_would_count_once() {
    let text = "SERVER s hostid=any\n\
                    FEATURE cad version=2 count=5 expires=permanent\n\
                    FEATURE cad count=5 version=2 expires=permanent _po=\"PO 7\"\n\
                    FEATURE cad version=2 count=5 expires=permanent serial=2\n";
    let out = sign_licence("in.lic", text.as_bytes(), &signing_key(1)).unwrap();
    assert_eq!(out.features, 3);
    assert_eq!(
        out.warnings,
        [
            "in.lic:3: FEATURE cad has the same signed fields as line 2; a server counts it \
              once (add a field such as serial= to tell them apart)"
        ]
    );
}

#[test]
fn signing_refuses_files_with_bad_lines() {
    let text = "SERVER s hostid=any\nFEATURE cad version=2 count 3 expires=permanent\n";
    let errors = sign_licence("in.lic", text.as_bytes(), &signing_key(1)).unwrap_err();
    assert_eq!(
        errors[0].to_string(),
        "in.lic:2:28: expected '=' after key \"count\""
    );
    let errors = sign_licence(
        "in.lic",
        b"FEATURE a version=1 count=1 expires=permanent\n",
        &signing_key(1),
    )
    .unwrap_err();
    assert!(errors[0].to_string().contains("no SERVER line"));
}

#[test]
fn tampering_any_signed_character_breaks_the_signature() {
    let keys = trusting(&signing_key(7));
    let text = signed();
    let cad = text.lines().nth(4).unwrap();
    let signed_end = cad.find(" sig=").unwrap();
    let note = cad.find(" _note=").unwrap()..cad.find(" sig=").unwrap();
    let mut tried = 0;
    for (i, c) in cad[..signed_end].char_indices() {
        if !c.is_ascii_alphanumeric() || note.contains(&i) {
            continue;
        }
        let mut line = cad.to_string();
        line.replace_range(i..i + 1, if c == '1' { "2" } else { "1" });
        let edited = text.replacen(cad, &line, 1);
        let parsed = parse_licence("site.lic", edited.as_bytes()).unwrap();
        if parsed.features.len() < 2 {
            continue; // the edit no longer parses (FEATURE -> F1ATURE): skipped, also refused
        }
        let check = checks(&edited, &keys).remove(0);
        assert!(
            matches!(check, SigCheck::Bad { .. }),
            "editing column {} of {cad:?} went unnoticed",
            i + 1
        );
        tried += 1;
    }
    assert!(
        tried >= 40,
        "only {tried} edits reached the signature check"
    );
}

#[test]
fn each_signed_field_is_covered() {
    let keys = trusting(&signing_key(7));
    let text = signed();
    for (from, to) in [
        ("FEATURE cad", "FEATURE cae"),
        ("version=2.0", "version=3.0"),
        ("count=10", "count=11"),
        ("expires=2027-12-31", "expires=2028-12-31"),
        ("share=user", "share=host"),
        ("min_checkout=60", "min_checkout=6"),
        ("customer=\"Acme Ltd\"", "customer=\"Acme Ltc\""),
        ("share=user ", ""),
        ("FEATURE viewer", "FEATURE viewer extra=1"),
    ] {
        assert!(text.contains(from), "{from}");
        let edited = text.replacen(from, to, 1);
        let results = checks(&edited, &keys);
        assert!(
            results.iter().any(|c| matches!(c, SigCheck::Bad { .. })),
            "{from} -> {to}: {results:?}"
        );
    }
}

#[test]
fn customer_editable_parts_keep_it_valid() {
    let keys = trusting(&signing_key(7));
    let text = signed();
    for (from, to) in [
        ("SERVER lic1", "SERVER licence-box"),
        ("FAILOVER lic2", "FAILOVER standby.example.com"),
        ("port=27000", "port=5053"),
        ("port=27001", ""),
        (
            "_note=\"seat for Bob\"",
            "_note=\"seat for Alice\" _added=1",
        ),
        ("# renewal due", "# renewed"),
        ("hostid=host:lic1", "hostid=HOST:LIC1"),
        (
            "hostid=mac:52:54:00:12:34:56",
            "hostid=mac:52-54-00-12-34-56",
        ),
        ("customer=\"Acme Ltd\"", "customer=\"Acme Ltd\"  "),
        (
            "share=user min_checkout=60",
            "min_checkout=\"60\" share=user",
        ),
    ] {
        let edited = text.replacen(from, to, 1);
        assert_ne!(edited, text, "{from}");
        assert!(
            checks(&edited, &keys).iter().all(SigCheck::is_valid),
            "{from} -> {to}"
        );
    }
}

#[test]
fn a_line_moved_to_another_host_file_breaks() {
    let keys = trusting(&signing_key(7));
    let text = signed();
    for (from, to) in [
        ("hostid=host:lic1", "hostid=host:lic9"),
        ("hostid=host:lic1", "hostid=any"),
        (
            "hostid=mac:52:54:00:12:34:56",
            "hostid=mac:52:54:00:12:34:57",
        ),
    ] {
        let moved = text.replacen(from, to, 1);
        assert!(
            checks(&moved, &keys)
                .iter()
                .all(|c| matches!(c, SigCheck::Bad { .. })),
            "{from} -> {to}"
        );
    }
    // Dropping the FAILOVER line is a move too.
    let without_failover: String = text
        .lines()
        .filter(|l| !l.starts_with("FAILOVER"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(checks(&without_failover, &keys)
        .iter()
        .all(|c| matches!(c, SigCheck::Bad { .. })));
}

#[test]
fn foreign_missing_and_bad_are_told_apart() {
    let ours = signing_key(7);
    let theirs = signing_key(8);
    let text = signed();
    let foreign = checks(&text, &trusting(&theirs));
    assert_eq!(
        foreign[0],
        SigCheck::UnknownKey {
            key_id: key_id(&ours.verifying_key())
        }
    );
    assert_eq!(
        foreign[0].to_string(),
        format!("unknown key {}", key_id(&ours.verifying_key()))
    );
    let unsigned = checks(
        LICENCE.replace(" sig=ed25519:00000000:AAAA", "").as_str(),
        &trusting(&ours),
    );
    assert_eq!(unsigned[0], SigCheck::Missing);
    assert_eq!(unsigned[0].to_string(), "missing signature");
    // A signature from another key, relabelled with our key id: bad.
    let forged_id = text.replace(
        &key_id(&ours.verifying_key()),
        &key_id(&theirs.verifying_key()),
    );
    assert!(matches!(
        checks(&forged_id, &trusting(&theirs))[0],
        SigCheck::Bad { .. }
    ));
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
    #[test]
    fn any_signed_values_verify_and_any_change_breaks(
        customer in "[ -~é]{0,30}",
        note in "[ -~]{0,30}",
        count in 0u32..,
        other in "[ -~é]{0,30}",
    ) {
        let quote = |v: &str| format!("\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""));
        let line = |customer: &str| format!(
            "SERVER s hostid=any\nFEATURE cad version=1 count={count} expires=permanent customer={} _note={}\n",
            quote(customer),
            quote(&note)
        );
        let key = signing_key(4);
        let keys = trusting(&key);
        let signed = sign_licence("p.lic", line(&customer).as_bytes(), &key).unwrap().text;
        proptest::prop_assert!(checks(&signed, &keys)[0].is_valid());
        // The signature goes last on the line; the note may contain " sig=" itself.
        let sig = &signed[signed.rfind(" sig=").unwrap()..];
        let edited = line(&other).trim_end().to_string() + sig;
        proptest::prop_assert_eq!(checks(&edited, &keys)[0].is_valid(), other == customer);
    }
}

#[test]
fn sig_fields_parse_strictly() {
    let sig = sign_feature(
        &parse_licence(
            "t",
            b"SERVER s hostid=any\nFEATURE a version=1 count=1 expires=permanent\n",
        )
        .unwrap()
        .features[0],
        &HostId::Any,
        None,
        &signing_key(3),
    );
    let text = sig.to_string();
    assert_eq!(SigField::parse(&text).unwrap(), sig);
    for bad in [
        "",
        "ed25519",
        "ed25519:abcd1234",
        "rsa:abcd1234:AAAA",
        "ed25519:abcd123:AAAA",
        "ed25519:abcd123g:AAAA",
        "ed25519:abcd1234:!!!!",
        "ed25519:abcd1234:AAAA",
    ] {
        assert!(SigField::parse(bad).is_err(), "{bad}");
    }
}
