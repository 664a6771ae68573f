use super::*;
use crate::licence::hostid::HostId;
use crate::licence::load::{load_sources, Source};
use crate::licence::model::{Share, Version};
use crate::licence::signature::sign_licence;
use ed25519_dalek::SigningKey;

fn key() -> SigningKey {
    SigningKey::from_bytes(&[42; 32])
}

fn keys() -> TrustedKeys {
    let mut keys = TrustedKeys::new();
    keys.add(key().verifying_key(), "test");
    keys
}

fn today() -> Date {
    Date::parse("2027-06-01").unwrap()
}

fn host() -> HostIds {
    HostIds::from_ids([HostId::parse("host:lic1").unwrap()])
}

/// A signed source: `head` (SERVER/FAILOVER lines) and features.
fn source(name: &str, head: &str, features: &[&str]) -> Source {
    let text = format!("{head}\n{}\n", features.join("\n"));
    let signed = sign_licence(name, text.as_bytes(), &key()).unwrap();
    Source {
        name: name.into(),
        text: signed.text,
    }
}

fn load(sources: &[Source], side: Side) -> Result<Served, LoadError> {
    load_sources(sources, &keys(), &host(), side, today())
}

fn shown(served: &Served) -> Vec<String> {
    served
        .pools
        .iter()
        .map(|p| format!("{} count={} min={}", p.key, p.count, p.min_checkout_secs))
        .collect()
}

const MINE: &str = "SERVER lic1 hostid=host:lic1 port=27000";

#[test]
fn lines_combine_across_files() {
    let a = source(
        "a.lic",
        MINE,
        &[
            "FEATURE cad version=2.0 count=3 expires=2028-01-01 min_checkout=30",
            "FEATURE cad version=2 count=4 expires=2028-01-01 customer=A",
            "FEATURE cad version=2.0 count=1 expires=2028-01-01 share=user",
            "FEATURE viewer version=1 count=5 expires=permanent",
        ],
    );
    let b = source(
        "b.lic",
        "SERVER other-name hostid=any port=27000",
        &[
            "FEATURE cad version=2.0 count=10 expires=2028-01-01 min_checkout=90",
            "FEATURE cad version=3.0 count=2 expires=2027-12-01",
            "FEATURE cad version=2.0 count=1 expires=2027-12-01",
            "FEATURE viewer version=1 count=uncounted expires=permanent",
        ],
    );
    let served = load(&[a, b], Side::Primary).unwrap();
    assert_eq!(
        shown(&served),
        [
            "cad 2.0 expires=2027-12-01 share=none count=1 min=0",
            "cad 3.0 expires=2027-12-01 share=none count=2 min=0",
            "cad 2.0 expires=2028-01-01 share=none count=17 min=90",
            "cad 2.0 expires=2028-01-01 share=user count=1 min=0",
            "viewer 1.0 expires=permanent share=none count=uncounted min=0",
        ]
    );
    assert!(served.problems.is_empty(), "{:?}", served.problems);
    assert_eq!(served.files.len(), 2);
    assert_eq!(served.files[1].server.name, "other-name");
    assert_eq!(
        (served.port, served.extra_ports.clone()),
        (Some(27000), vec![])
    );
    assert!(served.expiring.is_empty());
    assert_eq!(served.pools[0].key.version, Version::parse("2").unwrap());
    assert_eq!(served.pools[3].key.share, Share::User);
}

#[test]
fn roamable_seats_keep_their_roam_length_within_a_pool() {
    let a = source(
        "a.lic",
        MINE,
        &[
            "FEATURE cad version=2 count=7 expires=permanent",
            "FEATURE cad version=2 count=2 expires=permanent roam=3 serial=1",
            "FEATURE cad version=2 count=1 expires=permanent roam=30",
            "FEATURE cad version=2 count=1 expires=permanent roam=3 serial=2",
            "FEATURE viewer version=1 count=uncounted expires=permanent roam=5",
        ],
    );
    let served = load(&[a], Side::Primary).unwrap();
    assert!(served.problems.is_empty(), "{:?}", served.problems);
    let cad = &served.pools[0];
    assert_eq!(cad.count, Count::Seats(11));
    assert_eq!(
        cad.roam,
        [
            RoamAllowance {
                days: 3,
                seats: Count::Seats(3)
            },
            RoamAllowance {
                days: 30,
                seats: Count::Seats(1)
            },
        ]
    );
    assert_eq!(
        served.pools[1].roam,
        [RoamAllowance {
            days: 5,
            seats: Count::Uncounted
        }]
    );
}

#[test]
fn a_signed_line_counts_once_however_often_it_is_pasted() {
    let a = source(
        "a.lic",
        MINE,
        &[
            "FEATURE cad version=1 count=5 expires=permanent",
            "FEATURE cad version=1 count=5 expires=permanent serial=2",
        ],
    );
    let cad = a.text.lines().nth(1).unwrap().to_string();
    let pasted = Source {
        name: "a.lic".into(),
        text: format!("{}{cad}\n", a.text),
    };
    // The same line under another host name and port, with a note: same licence.
    let copy = Source {
        name: "copy.lic".into(),
        text: format!(
            "SERVER renamed hostid=host:LIC1 port=1234\n{} _note=copied\n",
            cad
        ),
    };
    let served = load(&[pasted, copy], Side::Primary).unwrap();
    assert_eq!(served.pools[0].count, Count::Seats(10));
    assert_eq!(
        served.problems,
        [
            "a.lic:4: FEATURE cad: same signed licence as a.lic:2; counted once",
            "copy.lic:2: FEATURE cad: same signed licence as a.lic:2; counted once",
        ]
    );
}

#[test]
fn counts_saturate_with_a_warning() {
    let a = source(
        "a.lic",
        MINE,
        &["FEATURE big version=1 count=4294967295 expires=permanent"],
    );
    let b = source(
        "b.lic",
        MINE,
        &["FEATURE big version=1 count=2 expires=permanent"],
    );
    let served = load(&[a, b], Side::Primary).unwrap();
    assert_eq!(served.pools[0].count, Count::Seats(u32::MAX));
    assert_eq!(served.problems.len(), 1);
    assert!(
        served.problems[0].starts_with("b.lic:2: FEATURE big: pool big 1.0"),
        "{:?}",
        served.problems
    );
    assert!(served.problems[0].contains("capped"));
}

#[test]
fn expired_and_single_lines_are_not_served_and_soon_expiring_ones_flagged() {
    let a = source(
        "a.lic",
        MINE,
        &[
            "FEATURE old version=1 count=5 expires=2027-05-31",
            "FEATURE lastday version=1 count=5 expires=2027-06-01",
            "FEATURE soon version=1 count=5 expires=2027-06-15",
            "FEATURE later version=1 count=5 expires=2027-06-16",
            "FEATURE node version=1 count=single expires=permanent",
        ],
    );
    let served = load(&[a], Side::Primary).unwrap();
    let names: Vec<&str> = served.pools.iter().map(|p| &*p.key.feature).collect();
    assert_eq!(names, ["lastday", "later", "soon"]);
    let expiring: Vec<(String, i64)> = served
        .expiring
        .iter()
        .map(|(k, d)| (k.feature.to_string(), *d))
        .collect();
    assert_eq!(
        expiring,
        [("lastday".to_string(), 0), ("soon".to_string(), 14)]
    );
    assert_eq!(
            served.problems,
            [
                "a.lic:2: FEATURE old 1.0: expired on 2027-05-31; not served",
                "a.lic:6: FEATURE node: count=single is node-locked single use; a server does not serve it",
            ]
        );
}

#[test]
fn sides_pick_files_and_ports() {
    let head = "SERVER lic1 hostid=host:lic1 port=27000\nFAILOVER lic2 hostid=host:lic2 port=27001";
    let both = "SERVER s hostid=any port=5053\nFAILOVER b hostid=any port=5054";
    let feature = ["FEATURE cad version=1 count=1 expires=permanent"];
    let sources = [
        source("primary.lic", head, &feature),
        source("noport.lic", "SERVER lic1 hostid=host:lic1", &feature),
        source("both.lic", both, &feature),
        source("again.lic", both, &feature),
        source(
            "elsewhere.lic",
            "SERVER x hostid=host:lic9 port=6000",
            &feature,
        ),
    ];
    let primary = load(&sources, Side::Primary).unwrap();
    let files: Vec<_> = primary
        .files
        .iter()
        .map(|f| f.path.display().to_string())
        .collect();
    assert_eq!(
        files,
        ["primary.lic", "noport.lic", "both.lic", "again.lic"]
    );
    assert_eq!(primary.port, Some(27000));
    assert_eq!(primary.extra_ports, [5053]);
    // again.lic repeats both.lic's signed line: served, but counted once.
    assert_eq!(primary.pools[0].count, Count::Seats(3));
    assert!(primary.problems.contains(
        &"again.lic:3: FEATURE cad: same signed licence as both.lic:3; counted once".to_string()
    ));
    assert!(primary
        .problems
        .iter()
        .any(|p| p.starts_with("elsewhere.lic: not for this host")));

    // lic1 is the SERVER host of primary.lic, so its backup serves only both/again.
    let backup = load(&sources, Side::Backup).unwrap();
    let files: Vec<_> = backup
        .files
        .iter()
        .map(|f| f.path.display().to_string())
        .collect();
    assert_eq!(files, ["both.lic", "again.lic"]);
    assert_eq!(
        (backup.port, backup.extra_ports.clone()),
        (Some(5054), vec![])
    );
    assert!(backup.problems.contains(
        &"this host is the SERVER host of primary.lic: run with --role primary to serve it"
            .to_string()
    ));
    assert!(backup.problems.contains(
        &"this host is the SERVER host of noport.lic: run with --role primary to serve it"
            .to_string()
    ));
    assert!(backup.problems.contains(
        &"elsewhere.lic: not served by a backup: the file has no FAILOVER line".to_string()
    ));
}

#[test]
fn the_failover_host_gets_a_hint_when_started_as_primary() {
    let head = "SERVER lic0 hostid=host:lic0\nFAILOVER lic1 hostid=host:lic1 port=27001";
    let sources = [source(
        "site.lic",
        head,
        &["FEATURE cad version=1 count=1 expires=permanent"],
    )];
    let err = load(&sources, Side::Primary).unwrap_err();
    assert_eq!(
            err.to_string(),
            "no licence can be served:\n\
             this host is the FAILOVER host of site.lic: run with --role backup to serve it\n\
             no licence file names this host on its SERVER line (role primary; this host's ids: host:lic1)"
        );
    let backup = load(&sources, Side::Backup).unwrap();
    assert_eq!(backup.port, Some(27001));
}

#[test]
fn signature_problems_skip_only_their_line() {
    let good = source(
        "a.lic",
        MINE,
        &[
            "FEATURE cad version=1 count=5 expires=permanent",
            "FEATURE viewer version=1 count=5 expires=permanent",
            "FEATURE solver version=1 count=5 expires=permanent",
        ],
    );
    let foreign = SigningKey::from_bytes(&[7; 32]);
    let foreign_line = sign_licence(
        "x",
        format!("{MINE}\nFEATURE plotter version=1 count=1 expires=permanent\n").as_bytes(),
        &foreign,
    )
    .unwrap()
    .text;
    let text = good
        .text
        .replace(
            "FEATURE viewer version=1 count=5",
            "FEATURE viewer version=1 count=6",
        )
        .replace(
            &good.text.lines().nth(3).unwrap()
                [good.text.lines().nth(3).unwrap().find(" sig=").unwrap()..],
            "",
        )
        + foreign_line.lines().nth(1).unwrap()
        + "\nFEATURE broken version=1 count\n";
    let served = load(
        &[Source {
            name: "a.lic".into(),
            text,
        }],
        Side::Primary,
    )
    .unwrap();
    let names: Vec<&str> = served.pools.iter().map(|p| &*p.key.feature).collect();
    assert_eq!(names, ["cad"]);
    let problems = served.problems.join("\n");
    let foreign_id = crate::licence::keys::key_id(&foreign.verifying_key());
    assert!(
        problems.contains("a.lic:6:31: expected '=' after key \"count\"; line skipped"),
        "{problems}"
    );
    assert!(
        problems.contains("a.lic:3: FEATURE viewer: bad signature"),
        "{problems}"
    );
    assert!(
        problems.contains("a.lic:4: FEATURE solver: missing signature"),
        "{problems}"
    );
    assert!(
        problems.contains(&format!(
            "a.lic:5: FEATURE plotter: signed by key {foreign_id}, which is not trusted here"
        )),
        "{problems}"
    );
    // Those four are the broken lines; nothing else is.
    assert_eq!(served.skipped.len(), 4, "{:?}", served.skipped);
    assert!(served.skipped.iter().all(|s| served.problems.contains(s)));
}

#[test]
fn expired_repeated_and_single_lines_are_not_broken_ones() {
    let served = load(
        &[source(
            "a.lic",
            "SERVER lic1 hostid=any",
            &[
                "FEATURE cad version=1 count=1 expires=permanent",
                "FEATURE cad version=1 count=1 expires=permanent",
                "FEATURE old version=1 count=1 expires=2020-01-01",
                "FEATURE one version=1 count=single expires=permanent",
            ],
        )],
        Side::Primary,
    )
    .unwrap();
    assert_eq!(served.problems.len(), 3, "{:?}", served.problems);
    assert!(served.skipped.is_empty(), "{:?}", served.skipped);
}

#[test]
fn unusable_files_and_empty_results_list_every_reason() {
    let bad = Source {
        name: "bad.lic".into(),
        text: "FEATURE cad version=1 count=1 expires=permanent\n".into(),
    };
    let unsigned = Source {
        name: "unsigned.lic".into(),
        text: format!("{MINE}\nFEATURE cad version=1 count=1 expires=permanent\n"),
    };
    let err = load(&[bad, unsigned], Side::Primary).unwrap_err();
    assert_eq!(
        err.reasons,
        [
            "bad.lic: no SERVER line; a licence file needs exactly one",
            "bad.lic: not used: every signature in a file depends on its SERVER and FAILOVER lines",
            "unsigned.lic:2: FEATURE cad: missing signature (no sig=); line skipped",
            "no FEATURE line in this host's licence files can be served",
        ]
    );
}

#[test]
fn add_counts_rules() {
    assert_eq!(
        add_counts(Count::Seats(2), Count::Seats(3)),
        (Count::Seats(5), false)
    );
    assert_eq!(
        add_counts(Count::Seats(2), Count::Uncounted),
        (Count::Uncounted, false)
    );
    assert_eq!(
        add_counts(Count::Uncounted, Count::Seats(u32::MAX)),
        (Count::Uncounted, false)
    );
    assert_eq!(
        add_counts(Count::Seats(u32::MAX), Count::Seats(1)),
        (Count::Seats(u32::MAX), true)
    );
}
