//! The bodies of the fuzz targets (`fuzz/fuzz_targets/`), here so that
//! `cargo test` replays every corpus and regression input through exactly
//! the same code (tests/fuzz_corpus.rs), and so the properties they check
//! live beside the code they check.
//!
//! Each takes arbitrary bytes, must never panic, hang or allocate without
//! bound, and checks a property of what it could decode (a round trip, a
//! signature that verifies). A panic here is a bug found.

use crate::civil::Date;
use crate::licence::{self, HostIds, Side, Source};
use std::path::Path;

/// A fuzz target's body.
pub type Target = fn(&[u8]);

/// The fuzz targets by name, for the corpus replay.
pub const TARGETS: &[(&str, Target)] = &[
    ("licence", licence),
    ("options", options),
    ("client_line", client_line),
    ("peer_frame", peer_frame),
    ("journal", journal),
    ("snapshot", snapshot),
    ("http_request", http_request),
];

/// The licence parser and verifier: a file that parses, once signed,
/// verifies line by line (the canonical form is stable), and loading it
/// never panics, signed or not.
pub fn licence(data: &[u8]) {
    let keys = licence::demo::demo_keys();
    let host = HostIds::from_ids([licence::HostId::parse("host:lic1").expect("a host id")]);
    let today = Date::parse("2027-01-01").expect("a date");
    let load = |text: String| {
        licence::load_sources(
            &[Source {
                name: "fuzz.lic".into(),
                text,
            }],
            &keys,
            &host,
            Side::Primary,
            today,
        )
    };
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = load(text.to_string());
    }
    let Ok(signed) = licence::sign_licence("fuzz.lic", data, &licence::demo::demo_signing_key())
    else {
        return;
    };
    if let Ok(served) = load(signed.text.clone()) {
        for problem in &served.problems {
            assert!(
                !problem.contains("bad signature") && !problem.contains("missing signature"),
                "a line signed just now does not verify: {problem}\n{}",
                signed.text
            );
        }
    }
}

/// The options file parser.
pub fn options(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::ledger::policy::parse(text, Path::new("fuzz.opt"));
    }
}

/// The client's request line parser: what parses, written out again,
/// parses to the same request.
pub fn client_line(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = crate::protocol::line::parse(text);
    if let Ok(request) = crate::protocol::Request::parse(text) {
        let line = request.to_line();
        // Exactly the newline it wrote: a value may end in a character
        // Unicode counts as space (U+00A0), which `trim_end` would eat.
        let written = line.strip_suffix('\n').unwrap_or(&line);
        let again = crate::protocol::Request::parse(written)
            .unwrap_or_else(|e| panic!("{request:?} written as {line:?} does not parse: {e}"));
        assert_eq!(again, request, "written as {line:?}");
    }
}

/// The peer link's frame decoder, as a stranger (first frame) and as a
/// proven peer would feed it, and the message decoder behind it: a
/// message that decodes, sealed again, opens to the same message.
pub fn peer_frame(data: &[u8]) {
    use crate::protocol::peer::{FrameAuth, PeerMessage};
    const SECRET: &[u8] = b"fuzzing-secret-0123456789";
    let challenge = [7u8; crate::protocol::peer::CHALLENGE_LEN];
    let mut stranger = FrameAuth::new(SECRET, challenge, false);
    let mut rest = data;
    while let Ok((_, used)) = stranger.open(rest) {
        rest = &rest[used..];
    }
    // A valid first frame, then the input: the proven path's limits.
    let mut dialer = FrameAuth::new(SECRET, challenge, true);
    let mut proven = FrameAuth::new(SECRET, challenge, false);
    let first = dialer.seal(&PeerMessage::Ack { seq: 1 });
    proven.open(&first).expect("a sealed frame opens");
    let _ = proven.open(data);
    if let Ok(message) = serde_json::from_slice::<PeerMessage>(data) {
        let frame = dialer.seal(&message);
        let (again, used) = proven.open(&frame).expect("a sealed frame opens");
        assert_eq!(used, frame.len());
        assert_eq!(again, message);
    }
}

/// The journal's entry decoder over a whole file: each entry that
/// decodes, encoded again, decodes to the same record.
pub fn journal(data: &[u8]) {
    use crate::journal::codec;
    let mut at = codec::check_journal_header(data).unwrap_or(0);
    while at < data.len() {
        match codec::decode_entry(&data[at..]) {
            Ok((record, used)) => {
                assert!(used > 0);
                let bytes = codec::encode_record(&record);
                assert_eq!(codec::decode_record(&bytes).expect("re-encoded"), record);
                at += used;
            }
            Err(_) => break,
        }
    }
}

/// The snapshot decoder: a snapshot that decodes, encoded again, decodes
/// to the same snapshot.
pub fn snapshot(data: &[u8]) {
    use crate::journal::codec;
    if let Ok(snapshot) = codec::decode_snapshot(data) {
        let bytes = codec::encode_snapshot(&snapshot);
        assert_eq!(
            codec::decode_snapshot(&bytes).expect("re-encoded"),
            snapshot
        );
    }
}

/// The HTTP port's request path: a head is answered once complete or too
/// large, and a partial one never holds more than the limit.
pub fn http_request(data: &[u8]) {
    use crate::server::http::{read_head, Head, MAX_HEAD};
    let head = read_head(data);
    if head == Head::Partial {
        assert!(data.len() <= MAX_HEAD, "a partial head past the limit");
    }
    if let Head::Get { path, .. } = head {
        assert!(!path.contains(['?', '#']));
    }
}
