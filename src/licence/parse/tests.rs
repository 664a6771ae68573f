use super::*;
use proptest::prelude::*;

const HEAD: &str = "SERVER lic1 hostid=any port=27000\n";

fn parse(text: &str) -> Result<LicenceFile, Vec<ParseError>> {
    parse_licence("site.lic", text.as_bytes())
}

/// The errors of a file that still parses.
fn line_errors(text: &str) -> Vec<String> {
    let file = parse(text).unwrap_or_else(|e| panic!("unusable: {e:?}"));
    file.errors.iter().map(ToString::to_string).collect()
}

fn feature_error(line: &str) -> String {
    let errors = line_errors(&format!("{HEAD}{line}\n"));
    assert_eq!(errors.len(), 1, "{errors:?}");
    errors[0].clone()
}

#[test]
fn parses_the_design_example() {
    let text = "\
# site licence
SERVER  lic1 hostid=machine:3f2a9c01d4e5b6a7 port=27000
FAILOVER lic2 hostid=mac:52:54:00:12:34:56 port=27000   # the standby

FEATURE cad version=2.0 count=10 expires=2027-12-31 share=user customer=\"Acme Ltd\" min_checkout=60
feature viewer version=1.0 count=uncounted expires=permanent _note=\"say \\\"hi\\\" \\\\ bye\"
";
    let file = parse(text).unwrap();
    assert!(file.errors.is_empty(), "{:?}", file.errors);
    assert_eq!(file.server.name, "lic1");
    assert_eq!(file.server.hostid.to_string(), "machine:3f2a9c01d4e5b6a7");
    assert_eq!(file.server.port, Some(27000));
    let failover = file.failover.unwrap();
    assert_eq!(failover.hostid.to_string(), "mac:52:54:00:12:34:56");
    assert_eq!(file.features.len(), 2);
    let cad = &file.features[0];
    assert_eq!((cad.name.as_str(), cad.line), ("cad", 5));
    assert_eq!(cad.count, Count::Seats(10));
    assert_eq!(cad.share, Share::User);
    assert_eq!(cad.min_checkout_secs, 60);
    assert_eq!(cad.expiry.to_string(), "2027-12-31");
    let customer = cad.fields.iter().find(|f| f.key == "customer").unwrap();
    assert_eq!(customer.value, "Acme Ltd");
    let keys: Vec<&str> = cad.fields.iter().map(|f| f.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "version",
            "count",
            "expires",
            "share",
            "customer",
            "min_checkout"
        ]
    );
    let viewer = &file.features[1];
    assert_eq!(viewer.count, Count::Uncounted);
    assert_eq!(viewer.expiry, Expiry::Permanent);
    assert_eq!(viewer.share, Share::None);
    assert_eq!(viewer.fields[3].value, "say \"hi\" \\ bye");
    assert_eq!((cad.roam_days, viewer.roam_days), (None, None));
}

#[test]
fn roam_is_the_longest_roam_in_days() {
    let file = parse(&format!(
        "{HEAD}FEATURE cad version=2 count=3 expires=permanent roam=14\n"
    ))
    .unwrap();
    assert_eq!(file.features[0].roam_days, Some(14));
}

#[test]
fn comments_and_line_endings() {
    let text = "SERVER lic1 hostid=any\r\n\
                    \t# indented comment\r\n\
                    FEATURE a version=1 count=1 expires=permanent customer=x#1 # note\r\n\
                    FEATURE b version=1 count=1 expires=permanent note=\"# not a comment\"";
    let file = parse(text).unwrap();
    assert!(file.errors.is_empty(), "{:?}", file.errors);
    assert_eq!(file.features[0].fields[3].value, "x#1");
    assert_eq!(file.features[1].fields[3].value, "# not a comment");
    assert_eq!(file.features[1].line, 4);
}

#[test]
fn errors_name_line_and_column() {
    assert_eq!(
        feature_error("FEATURE cad version=2 count 10"),
        "site.lic:2:28: expected '=' after key \"count\""
    );
    assert_eq!(
        feature_error("FEATURE cad version=2 count=10 expires=2027-12-31 customer=\"Acme"),
        "site.lic:2:60: unterminated quoted value of \"customer\": no closing '\"' on this line"
    );
    assert_eq!(
        feature_error("FEATURE cad version=2 count=1 expires=permanent version=3"),
        "site.lic:2:49: duplicate key \"version\" (first at column 13)"
    );
    assert_eq!(
        feature_error("FEATURE cad version=2 count=4294967296 expires=permanent"),
        "site.lic:2:29: bad count= value: count 4294967296 is too large (at most 4294967295)"
    );
    assert_eq!(
            feature_error("FEATURE cad version=2 count=1 expires=2027-02-30"),
            "site.lic:2:39: bad expires= value: expected a date YYYY-MM-DD or \"permanent\", found \"2027-02-30\""
        );
    assert_eq!(
        feature_error("LICENSE cad version=2"),
        "site.lic:2:1: unknown record type \"LICENSE\": expected SERVER, FAILOVER or FEATURE"
    );
    assert_eq!(
        feature_error("FEATURE   "),
        "site.lic:2:11: expected a name after FEATURE"
    );
    assert_eq!(
        feature_error("FEATURE version=2 count=1 expires=permanent"),
        "site.lic:2:9: expected a name after FEATURE, found the field \"version=2\""
    );
    assert_eq!(
        feature_error("FEATURE cad count=1 expires=permanent"),
        "site.lic:2:1: FEATURE cad has no version= field (version, count and expires are required)"
    );
    // Columns count characters, not bytes.
    assert_eq!(
        feature_error("FEATURE cad customer=\"Müller\" x"),
        "site.lic:2:32: expected '=' after key \"x\""
    );
}

#[test]
fn every_bad_feature_is_reported_and_skipped() {
    let cases = [
        (
            "FEATURE cad version=2 count=1 expires=permanent share=team",
            "bad share= value",
        ),
        (
            "FEATURE cad version=2 count=1 expires=permanent min_checkout=4294967296",
            "bad min_checkout= value",
        ),
        (
            "FEATURE cad version=2 count=1 expires=permanent min_checkout=-1",
            "bad min_checkout= value",
        ),
        (
            "FEATURE cad version=2 count=1 expires=permanent roam=0",
            "bad roam= value",
        ),
        (
            "FEATURE cad version=2 count=1 expires=permanent roam=3651",
            "bad roam= value",
        ),
        (
            "FEATURE cad version=2 count=1 expires=permanent roam=7d",
            "bad roam= value",
        ),
        (
            "FEATURE cad version=x count=1 expires=permanent",
            "bad version= value",
        ),
        (
            "FEATURE cad version=2 count=-1 expires=permanent",
            "bad count= value",
        ),
        (
            "FEATURE cad version=2 count=1 expires=2027-1-1",
            "bad expires= value",
        ),
        ("FEATURE cad version=2 count=1", "has no expires= field"),
        (
            "FEATURE cad version=2 expires=permanent",
            "has no count= field",
        ),
        (
            "FEATURE cad version=2 count=1 expires=permanent sig=rsa:1:2",
            "bad sig= value",
        ),
        (
            "FEATURE cad version=2 count=1 expires=permanent x=\"a\\n\"",
            "unknown escape '\\n'",
        ),
        (
            "FEATURE cad version=2 count=1 expires=permanent x=\"a\"b",
            "expected a space after the closing quote",
        ),
        (
            "FEATURE cad version=2 count=1 expires=permanent x=a\"b\"",
            "unexpected '\"' inside the value",
        ),
        (
            "FEATURE cad version=2 count=1 expires=permanent x=",
            "expected a value after x=",
        ),
        (
            "FEATURE cad version=2 count=1 expires=permanent 9x=1",
            "expected a key",
        ),
        (
            "FEATURE cad version=2 count=1 expires=permanent a.b=1",
            "expected '=' after key \"a\", found '.'",
        ),
        (
            "FEATURE ca$d version=2 count=1 expires=permanent",
            "unexpected '$' in name",
        ),
        (
            "FEATURE cad version=2 count=1 expires=permanent \u{1}",
            "unexpected control character U+0001",
        ),
        (
            "FEATURE cad version=2 count=1 expires=permanent \"quoted\"",
            "expected a key",
        ),
        ("\u{0}\u{0}\u{0}", "unexpected control character U+0000"),
    ];
    for (line, expected) in cases {
        let text = format!(
                "{HEAD}FEATURE ok1 version=1 count=1 expires=permanent\n{line}\nFEATURE ok2 version=1 count=1 expires=permanent\n"
            );
        let file = parse(&text).unwrap_or_else(|e| panic!("{line}: unusable: {e:?}"));
        assert_eq!(file.errors.len(), 1, "{line}");
        let message = file.errors[0].to_string();
        assert!(message.starts_with("site.lic:3:"), "{message}");
        assert!(message.contains(expected), "{line}: {message}");
        let names: Vec<&str> = file.features.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["ok1", "ok2"], "{line}");
    }
}

#[test]
fn invalid_utf8_names_line_and_column() {
    let mut bytes = HEAD.as_bytes().to_vec();
    bytes.extend_from_slice(b"FEATURE caf\xc3\xa9 version=\xff\xfe\n");
    bytes.extend_from_slice(b"FEATURE ok version=1 count=1 expires=permanent\n");
    let file = parse_licence("site.lic", &bytes).unwrap();
    assert_eq!(
        file.errors[0].to_string(),
        "site.lic:2:22: invalid UTF-8 (byte 0xff); licence files are UTF-8 text"
    );
    assert_eq!(file.features.len(), 1);
}

#[test]
fn long_lines_and_big_files_are_refused_with_the_limit() {
    let long = format!("{HEAD}FEATURE cad note={}\n", "x".repeat(10 * 1024 * 1024));
    let errors = line_errors(&long);
    assert_eq!(
        errors,
        ["site.lic:2:1: line is 10485777 bytes long; lines are limited to 65536 bytes (64 KiB)"]
    );
    let huge = vec![b'\n'; MAX_FILE_BYTES + 1];
    let errors = parse_licence("big.lic", &huge).unwrap_err();
    assert_eq!(
        errors[0].to_string(),
        "big.lic: file is 16777217 bytes; licence files are limited to 16777216 bytes (16 MiB)"
    );
}

#[test]
fn worst_case_lines_parse_quickly() {
    // ~16k distinct fields on one line at the length limit, 64 such lines.
    let mut line = String::from("FEATURE cad version=1 count=1 expires=permanent");
    let mut i = 0;
    while line.len() < MAX_LINE_BYTES - 16 {
        line.push_str(&format!(" k{i}=1"));
        i += 1;
    }
    let text = format!("{HEAD}{}", format!("{line}\n").repeat(64));
    let started = std::time::Instant::now();
    let file = parse(&text).unwrap();
    assert_eq!(file.features.len(), 64);
    // Generous for a debug build on a slow machine; quadratic took minutes.
    assert!(started.elapsed().as_secs() < 20, "{:?}", started.elapsed());
}

#[test]
fn garbage_files_keep_a_bounded_error_list() {
    let text = format!("{HEAD}{}", "garbage line\n".repeat(1000));
    let file = parse(&text).unwrap();
    assert_eq!(file.errors.len(), MAX_ERRORS_PER_FILE + 1);
    assert_eq!(
        file.errors.last().unwrap().to_string(),
        "site.lic: 900 more errors not shown"
    );
}

#[test]
fn server_and_failover_problems_make_the_file_unusable() {
    let feature = "FEATURE cad version=2 count=1 expires=permanent\n";
    let cases = [
            (feature.to_string(), "site.lic: no SERVER line; a licence file needs exactly one"),
            (format!("{HEAD}{HEAD}{feature}"), "site.lic:2:1: second SERVER line (the first is line 1); a licence file has at most one"),
            (format!("{HEAD}FAILOVER a hostid=any\nFAILOVER b hostid=any\n"), "site.lic:3:1: second FAILOVER line (the first is line 2); a licence file has at most one"),
            ("SERVER lic1 port=27000\n".to_string(), "site.lic:1:1: SERVER lic1 has no hostid= field (required)"),
            ("SERVER lic1 hostid=any port=70000\n".to_string(), "site.lic:1:29: bad port= value: expected a port 1-65535, found \"70000\""),
            ("SERVER lic1 hostid=ip:1.2.3.4\n".to_string(), "site.lic:1:20: bad hostid= value: unknown host id kind \"ip\""),
            (format!("{HEAD}FAILOVER hostid=any\n"), "site.lic:2:10: expected a name after FAILOVER, found the field \"hostid=any\""),
            (format!("{HEAD}FAILOVER lic2 hostid=\"any\n"), "site.lic:2:22: unterminated quoted value"),
            ("SERVER lic1 hostid=any \u{ff}\n".to_string(), "site.lic:1:24: expected a key"),
        ];
    for (text, expected) in cases {
        let errors = parse(&text).expect_err(&text);
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert!(
            shown.iter().any(|e| e.starts_with(expected)),
            "{text:?}: {shown:?}"
        );
    }
    // A SERVER line that is not UTF-8 is still recognised as one.
    let errors = parse_licence("site.lic", b"SERVER lic1 hostid=any \xff\n").unwrap_err();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0]
        .to_string()
        .starts_with("site.lic:1:24: invalid UTF-8"));
}

#[test]
fn server_lines_ignore_unknown_keys_and_accept_any_case() {
    let file = parse("server lic1 hostid=HOST:Lic1 weight=3\nFailover lic2 hostid=any\n").unwrap();
    assert_eq!(file.server.hostid.to_string(), "host:lic1");
    assert_eq!(file.server.port, None);
    assert_eq!(file.failover.unwrap().name, "lic2");
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_licence("fuzz.lic", &bytes);
    }

    #[test]
    fn random_licence_like_text_never_panics(
        lines in proptest::collection::vec(
            proptest::string::string_regex(
                "(SERVER|FAILOVER|FEATURE|feature|#)?[ \\ta-z0-9_=\"\\\\#:.é-]{0,60}"
            ).unwrap(),
            0..12,
        )
    ) {
        let text = format!("SERVER s hostid=any\n{}", lines.join("\n"));
        let file = parse_licence("fuzz.lic", text.as_bytes());
        // Every error carries a position inside the file.
        if let Ok(file) = file {
            for e in &file.errors {
                if let Some(at) = e.at {
                    prop_assert!(at.line >= 1 && at.line <= lines.len() + 1);
                    prop_assert!(at.column >= 1);
                }
            }
        }
    }

    #[test]
    fn quoted_values_round_trip(value in "[ -~é\u{263a}]{0,40}") {
        let quoted = value.replace('\\', "\\\\").replace('"', "\\\"");
        let text = format!(
            "{HEAD}FEATURE cad version=1 count=1 expires=permanent note=\"{quoted}\"\n"
        );
        let file = parse_licence("q.lic", text.as_bytes()).unwrap();
        prop_assert!(file.errors.is_empty(), "{:?}", file.errors);
        prop_assert_eq!(&file.features[0].fields[3].value, &value);
    }
}
