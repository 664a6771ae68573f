use super::*;
use crate::ledger::{CheckoutRequest, HandleKey, Ledger, Now, Outcome, SeededEntropy, WaiterId};
use crate::licence::{Count, Expiry, Pool, PoolKey, Share, Version};
use std::path::Path;
use std::time::Duration;

fn opts(text: &str) -> Options {
    parse(text, Path::new("/etc/floatd/site.opt")).unwrap_or_else(|e| panic!("{e}"))
}

fn err(text: &str) -> OptionsError {
    match parse(text, Path::new("/etc/floatd/site.opt")) {
        Ok(o) => panic!("parsed: {:?}", o.rules()),
        Err(e) => e,
    }
}

/// Seats held, by user and by host, for one feature.
#[derive(Default)]
struct Held {
    users: HashMap<String, u64>,
    hosts: HashMap<String, u64>,
}

impl Held {
    fn with(mut self, user: &str, host: &str, n: u64) -> Held {
        *self.users.entry(user.into()).or_default() += n;
        *self.hosts.entry(host.into()).or_default() += n;
        self
    }
}

impl Usage for Held {
    fn by_user(&self, user: &str) -> u64 {
        self.users.get(user).copied().unwrap_or(0)
    }
    fn by_host(&self, host: &str) -> u64 {
        self.hosts.get(host).copied().unwrap_or(0)
    }
}

fn who<'a>(user: &'a str, host: &'a str) -> Requester<'a> {
    Requester { user, host }
}

fn code(r: Result<(), PolicyDenial>) -> Option<(Code, String)> {
    r.err().map(|d| (d.code, d.rule))
}

// ----- parsing -----------------------------------------------------------

#[test]
fn parses_every_statement_with_comments_blank_lines_and_any_case() {
    let o = opts(
        "# site policy\n\
         \n\
         GROUP eng alice bob\n\
         group eng carol   # more engineers\n\
         Host_Group lab ws1 ws2\n\
         RESERVE 2 cad group eng\n\
         max 3 cad USER dave\n\
         INCLUDE viewer host_group lab\n\
         \tEXCLUDE cad host kiosk\n\
         MAX 0 solver user \"Ada Lovelace\"\n",
    );
    assert_eq!(o.rules().len(), 5);
    assert_eq!(o.group_count(), 2);
    assert_eq!(o.features(), vec!["cad", "solver", "viewer"]);
    let r = &o.rules()[0];
    assert_eq!(r.kind, RuleKind::Reserve(2));
    assert_eq!(r.feature, "cad");
    assert_eq!(
        r.target,
        Target {
            kind: TargetKind::Group,
            name: "eng".into()
        }
    );
    assert_eq!(r.line, 6);
    assert_eq!(o.cite(r), "site.opt:6");
    assert_eq!(o.rules()[1].kind, RuleKind::Max(3));
    assert_eq!(o.rules()[1].target.kind, TargetKind::User);
    assert_eq!(o.rules()[2].kind, RuleKind::Include);
    assert_eq!(o.rules()[2].target.kind, TargetKind::HostGroup);
    assert_eq!(o.rules()[3].kind, RuleKind::Exclude);
    assert_eq!(o.rules()[3].target.kind, TargetKind::Host);
    assert_eq!(o.rules()[4].target.name, "Ada Lovelace");
    // GROUP lines of the same name add up.
    assert!(o.matches(&o.rules()[0].target, who("carol", "x")));
    assert!(o.matches(&o.rules()[0].target, who("alice", "x")));
    assert!(!o.matches(&o.rules()[0].target, who("eve", "x")));
}

#[test]
fn empty_text_is_empty_options() {
    let o = opts("\n# nothing\n   \n");
    assert!(o.is_empty());
    assert!(Options::default().is_empty());
    assert_eq!(o.admit("cad", who("a", "h"), 1, &Held::default()), Ok(()));
}

#[test]
fn crlf_and_byte_order_mark_are_accepted() {
    let o = opts("\u{feff}EXCLUDE cad user bob\r\nMAX 1 cad user amy\r\n");
    assert_eq!(o.rules().len(), 2);
}

#[test]
fn errors_name_file_line_column_and_what_was_expected() {
    let cases: &[(&str, usize, usize, &str)] = &[
        (
            "RESERVE 2 cad user bob\nRESRVE 1 cad user amy\n",
            2,
            1,
            "expected GROUP, HOST_GROUP",
        ),
        ("MAX x cad user bob", 1, 5, "expected a number of seats"),
        ("MAX -1 cad user bob", 1, 5, "expected a number of seats"),
        (
            "MAX 99999999999 cad user bob",
            1,
            5,
            "expected a number of seats",
        ),
        ("MAX 2", 1, 6, "expected a feature name after \"MAX 2\""),
        (
            "MAX 2 cad",
            1,
            10,
            "expected user, host, group or host_group",
        ),
        (
            "MAX 2 cad person bob",
            1,
            11,
            "expected user, host, group or host_group, found \"person\"",
        ),
        ("# c\n\nEXCLUDE cad user", 3, 17, "expected a user name"),
        (
            "INCLUDE cad user Ada Lovelace",
            1,
            22,
            "expected the end of the line",
        ),
        ("GROUP eng", 1, 10, "expected at least one user name"),
        ("HOST_GROUP", 1, 11, "expected a host group name"),
        ("EXCLUDE cad user \"bob", 1, 18, "closing double quote"),
        ("EXCLUDE cad user \"\"", 1, 18, "expected a name"),
        (
            "EXCLUDE cad user bo\"b\"",
            1,
            20,
            "space before the double quote",
        ),
        ("EXCLUDE cad user \"b\\x\"", 1, 21, "after a backslash"),
        (
            "GROUP eng a\nMAX 1 cad group eng\nRESERVE 1 cad group ops\n",
            3,
            21,
            "group \"ops\" is not defined",
        ),
        (
            "HOST_GROUP lab ws1\nINCLUDE cad group lab\n",
            2,
            19,
            "write host_group lab",
        ),
        (
            "GROUP eng a\nINCLUDE cad host_group eng\n",
            2,
            24,
            "write group eng",
        ),
    ];
    for (text, line, column, wanted) in cases {
        let e = err(text);
        assert_eq!((e.line, e.column), (*line, *column), "{text:?}: {e}");
        assert!(e.message.contains(wanted), "{text:?}: {e}");
        assert!(
            e.to_string()
                .starts_with(&format!("/etc/floatd/site.opt:{line}:{column}: ")),
            "{e}"
        );
    }
}

#[test]
fn quoted_names_take_escapes_and_hash_inside_a_word_is_not_a_comment() {
    let o = opts("EXCLUDE cad user \"a \\\"b\\\" \\\\c\"\nEXCLUDE cad host ws#1 # comment\n");
    assert_eq!(o.rules()[0].target.name, "a \"b\" \\c");
    assert_eq!(o.rules()[1].target.name, "ws#1");
}

// ----- rules ---------------------------------------------------------------

#[test]
fn exclude_denies_the_user_host_or_group_it_names_and_nobody_else() {
    let o = opts(
        "GROUP temps tim tina\nHOST_GROUP kiosks k1 k2\n\
         EXCLUDE cad user bob\nEXCLUDE cad host h9\nEXCLUDE cad group temps\nEXCLUDE cad host_group kiosks\n",
    );
    let none = Held::default();
    let denied = |u: &str, h: &str| code(o.admit("cad", who(u, h), 1, &none));
    assert_eq!(
        denied("bob", "h1"),
        Some((Code::Excluded, "site.opt:3".into()))
    );
    assert_eq!(
        denied("amy", "h9"),
        Some((Code::Excluded, "site.opt:4".into()))
    );
    assert_eq!(
        denied("tina", "h1"),
        Some((Code::Excluded, "site.opt:5".into()))
    );
    assert_eq!(
        denied("amy", "k2"),
        Some((Code::Excluded, "site.opt:6".into()))
    );
    assert_eq!(denied("amy", "h1"), None);
    // Other features are untouched.
    assert_eq!(code(o.admit("viewer", who("bob", "k1"), 1, &none)), None);
}

#[test]
fn include_lists_admit_only_whom_they_name() {
    let o = opts(
        "GROUP eng alice bob\nHOST_GROUP lab ws1 ws2\n\
         INCLUDE cad group eng\nINCLUDE cad user zoe\nINCLUDE cad host_group lab\nINCLUDE cad host build\n",
    );
    let none = Held::default();
    let admitted = |u: &str, h: &str| o.admit("cad", who(u, h), 1, &none).is_ok();
    assert!(admitted("bob", "anywhere"), "group member");
    assert!(admitted("zoe", "anywhere"), "user");
    assert!(admitted("eve", "ws2"), "host group member");
    assert!(admitted("eve", "build"), "host");
    assert_eq!(
        code(o.admit("cad", who("eve", "ws9"), 1, &none)),
        Some((Code::NotIncluded, "site.opt:3".into())),
        "the first INCLUDE line of the feature is cited"
    );
    // A feature without INCLUDE lines is open to all.
    assert!(o.admit("viewer", who("eve", "ws9"), 1, &none).is_ok());
}

#[test]
fn exclude_wins_over_include() {
    let o = opts("GROUP eng alice bob\nINCLUDE cad group eng\nEXCLUDE cad user bob\n");
    let none = Held::default();
    assert!(o.admit("cad", who("alice", "h"), 1, &none).is_ok());
    assert_eq!(
        code(o.admit("cad", who("bob", "h"), 1, &none)),
        Some((Code::Excluded, "site.opt:3".into()))
    );
}

#[test]
fn max_caps_a_user_or_host() {
    let o = opts("MAX 2 cad user alice\nMAX 1 cad host ws1\n");
    let held = Held::default().with("alice", "ws2", 1);
    assert!(o.admit("cad", who("alice", "ws2"), 1, &held).is_ok());
    assert_eq!(
        code(o.admit("cad", who("alice", "ws2"), 2, &held)),
        Some((Code::MaxReached, "site.opt:1".into())),
        "the request's own count counts"
    );
    let held = held.with("alice", "ws2", 1);
    assert_eq!(
        code(o.admit("cad", who("alice", "ws2"), 1, &held)),
        Some((Code::MaxReached, "site.opt:1".into()))
    );
    assert!(
        o.admit("cad", who("bob", "ws2"), 5, &held).is_ok(),
        "others unlimited"
    );
    assert!(o.admit("cad", who("bob", "ws1"), 1, &held).is_ok());
    let held = held.with("bob", "ws1", 1);
    assert_eq!(
        code(o.admit("cad", who("carol", "ws1"), 1, &held)),
        Some((Code::MaxReached, "site.opt:2".into())),
        "a host's cap counts every user on it"
    );
    assert!(o.admit("viewer", who("alice", "ws1"), 9, &held).is_ok());
}

#[test]
fn max_on_a_group_counts_its_members_together() {
    let o = opts(
        "GROUP eng alice bob\nHOST_GROUP lab ws1 ws2\nMAX 3 cad group eng\nMAX 2 cad host_group lab\n",
    );
    let held = Held::default().with("alice", "x1", 2);
    assert!(o.admit("cad", who("bob", "x2"), 1, &held).is_ok());
    let held = held.with("bob", "x2", 1);
    assert_eq!(
        code(o.admit("cad", who("bob", "x2"), 1, &held)),
        Some((Code::MaxReached, "site.opt:3".into()))
    );
    assert!(
        o.admit("cad", who("carol", "x2"), 1, &held).is_ok(),
        "not a member"
    );
    let held = Held::default().with("u1", "ws1", 1).with("u2", "ws2", 1);
    assert_eq!(
        code(o.admit("cad", who("u3", "ws1"), 1, &held)),
        Some((Code::MaxReached, "site.opt:4".into()))
    );
    assert!(o.admit("cad", who("u3", "ws3"), 1, &held).is_ok());
}

#[test]
fn max_zero_shuts_the_target_out() {
    let o = opts("MAX 0 cad user bob\n");
    let none = Held::default();
    assert_eq!(
        code(o.admit("cad", who("bob", "h"), 1, &none)),
        Some((Code::MaxReached, "site.opt:1".into()))
    );
}

#[test]
fn reserve_keeps_seats_for_others_less_what_they_hold() {
    let o = opts(
        "GROUP eng alice bob\nHOST_GROUP lab ws1 ws2\n\
         RESERVE 2 cad group eng\nRESERVE 1 cad host_group lab\nRESERVE 1 cad user zoe\nRESERVE 1 cad host build\n",
    );
    let none = Held::default();
    // A stranger sees all four reservations.
    assert_eq!(o.reserved_for_others("cad", who("eve", "x"), &none), 5);
    assert_eq!(
        o.reserving_rule("cad", who("eve", "x"), &none).as_deref(),
        Some("site.opt:3")
    );
    // A member of eng is not kept out of eng's seats.
    assert_eq!(o.reserved_for_others("cad", who("bob", "x"), &none), 3);
    assert_eq!(o.reserved_for_others("cad", who("bob", "ws1"), &none), 2);
    assert_eq!(o.reserved_for_others("cad", who("zoe", "build"), &none), 3);
    // Seats the target already holds count towards its reservation.
    let held = Held::default().with("alice", "x", 1);
    assert_eq!(o.reserved_for_others("cad", who("eve", "x"), &held), 4);
    let held = held.with("bob", "x", 5);
    assert_eq!(o.reserved_for_others("cad", who("eve", "x"), &held), 3);
    assert_eq!(
        o.reserving_rule("cad", who("eve", "x"), &held).as_deref(),
        Some("site.opt:4"),
        "a fully used reservation is not cited"
    );
    assert_eq!(o.reserved_for_others("viewer", who("eve", "x"), &none), 0);
    // RESERVE never denies by itself.
    assert!(o.admit("cad", who("eve", "x"), 1, &none).is_ok());
}

// ----- through the ledger ----------------------------------------------------

fn ledger(seats: u32, options: &str) -> Ledger {
    let pool = Pool {
        key: PoolKey {
            feature: "cad".into(),
            version: Version::parse("1.0").unwrap(),
            expiry: Expiry::Permanent,
            share: Share::None,
        },
        count: Count::Seats(seats),
        min_checkout_secs: 0,
        roam: Vec::new(),
    };
    let mut l = Ledger::new(
        vec![pool],
        Duration::from_secs(60),
        HandleKey::from_bytes([7; 32]),
        Box::new(SeededEntropy::new(1)),
    );
    l.set_options(opts(options));
    l
}

fn checkout(l: &mut Ledger, user: &str, host: &str, count: u32) -> Outcome {
    l.checkout(
        CheckoutRequest {
            feature: "cad".into(),
            version: Version::parse("1.0").unwrap(),
            count,
            user: user.into(),
            host: host.into(),
            client: format!("{user}-c").into(),
            wait: false,
        },
        WaiterId(1),
        Now::current(),
    )
}

fn refusal(o: Outcome) -> (Code, Option<String>) {
    match o {
        Outcome::Denied(r) => (r.code, r.rule),
        other => panic!("expected a denial, got {other:?}"),
    }
}

fn handle(o: Outcome) -> String {
    match o {
        Outcome::Granted(g) => g.handle.to_string(),
        other => panic!("expected a grant, got {other:?}"),
    }
}

#[test]
fn ledger_subtracts_reservations_and_cites_the_rule() {
    let mut l = ledger(4, "GROUP eng alice bob\nRESERVE 2 cad group eng\n");
    handle(checkout(&mut l, "eve", "x", 1));
    handle(checkout(&mut l, "eve", "x", 1));
    assert_eq!(
        refusal(checkout(&mut l, "eve", "x", 1)),
        (Code::Reserved, Some("site.opt:2".into()))
    );
    let a = handle(checkout(&mut l, "alice", "x", 1));
    handle(checkout(&mut l, "bob", "x", 1));
    assert_eq!(refusal(checkout(&mut l, "bob", "x", 1)).0, Code::NoSeats);
    // alice's seat comes back: it is eng's again, not eve's.
    l.checkin(&a, Now::current()).unwrap();
    assert_eq!(refusal(checkout(&mut l, "eve", "x", 1)).0, Code::Reserved);
    handle(checkout(&mut l, "alice", "x", 1));
}

#[test]
fn ledger_counts_held_seats_for_max_and_new_options_apply_to_new_checkouts_only() {
    let mut l = ledger(10, "MAX 2 cad user alice\n");
    let h1 = handle(checkout(&mut l, "alice", "x", 1));
    handle(checkout(&mut l, "alice", "y", 1));
    assert_eq!(
        refusal(checkout(&mut l, "alice", "x", 1)),
        (Code::MaxReached, Some("site.opt:1".into()))
    );
    l.checkin(&h1, Now::current()).unwrap();
    handle(checkout(&mut l, "alice", "x", 1));
    // Stricter options: the seats out stay out, new checkouts obey.
    l.set_options(opts("EXCLUDE cad user alice\n"));
    assert_eq!(l.seat_count(), 2);
    assert_eq!(
        refusal(checkout(&mut l, "alice", "x", 1)),
        (Code::Excluded, Some("site.opt:1".into()))
    );
}

fn waiting(l: &mut Ledger, user: &str, id: u64) -> Outcome {
    l.checkout(
        CheckoutRequest {
            feature: "cad".into(),
            version: Version::parse("1.0").unwrap(),
            count: 1,
            user: user.into(),
            host: "x".into(),
            client: format!("{user}-c").into(),
            wait: true,
        },
        WaiterId(id),
        Now::current(),
    )
}

#[test]
fn a_reserved_seat_goes_to_its_target_even_while_others_wait_for_it() {
    let mut l = ledger(3, "GROUP eng alice bob\nRESERVE 1 cad group eng\n");
    handle(checkout(&mut l, "eve", "x", 1));
    handle(checkout(&mut l, "eve", "x", 1));
    // eve waits for the last seat, which is eng's.
    assert!(matches!(
        waiting(&mut l, "eve", 7),
        Outcome::Queued { position: 1 }
    ));
    // alice is not kept from it by eve's wait, which the seat would never end.
    let a = handle(checkout(&mut l, "alice", "x", 1));
    assert_eq!(refusal(checkout(&mut l, "bob", "x", 1)).0, Code::NoSeats);
    // alice's seat comes back: it is eng's again, so eve still waits and
    // bob takes it.
    l.checkin(&a, Now::current()).unwrap();
    assert!(
        l.take_woken().is_empty(),
        "the returned seat is eng's again"
    );
    let b = handle(checkout(&mut l, "bob", "x", 1));
    // A seat that eve could use goes to her before any newcomer.
    let e = match l.seats().find(|s| &*s.grant.user == "eve") {
        Some(s) => s.grant.handle.clone(),
        None => panic!("eve holds seats"),
    };
    l.checkin(&e, Now::current()).unwrap();
    let woken = l.take_woken();
    assert_eq!(woken.len(), 1);
    assert_eq!(woken[0].waiter, WaiterId(7));
    assert!(matches!(woken[0].outcome, Outcome::Granted(_)));
    l.checkin(&b, Now::current()).unwrap();
    assert!(matches!(waiting(&mut l, "eve", 8), Outcome::Queued { .. }));
    assert_eq!(
        refusal(checkout(&mut l, "zoe", "x", 1)),
        (Code::NoSeats, None),
        "zoe, like eve, may not have eng's seat, and may not overtake eve"
    );
}

#[test]
fn without_reservations_nobody_overtakes_the_queue() {
    let mut l = ledger(2, "MAX 5 cad user alice\n");
    handle(checkout(&mut l, "eve", "x", 1));
    let h = handle(checkout(&mut l, "eve", "x", 1));
    assert!(matches!(waiting(&mut l, "bob", 7), Outcome::Queued { .. }));
    l.checkin(&h, Now::current()).unwrap();
    let woken = l.take_woken();
    assert_eq!(woken.len(), 1);
    assert!(matches!(woken[0].outcome, Outcome::Granted(_)));
    assert_eq!(refusal(checkout(&mut l, "alice", "x", 1)).0, Code::NoSeats);
}
