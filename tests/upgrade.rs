//! A state directory written by a floatd of file format 2 (text-framed
//! JSON) carries on under this build (binary format 3): every seat it
//! held is still held, its returns stay returned, new records follow the
//! old ones in the new encoding, and the next snapshot is format 3.
//!
//! `tests/fixtures/state-format-2/` was made by a format 2 release build
//! (see its README): four seats held, two returned, a snapshot from a
//! clean stop and journal entries after it, then `kill -9`.

mod common;

use common::*;
use std::path::{Path, PathBuf};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/state-format-2");

/// The fixture copied to a fresh directory (the server rewrites it).
struct OldSite {
    dir: tempfile::TempDir,
    held: Vec<String>,
    returned: Vec<String>,
}

impl OldSite {
    fn copy() -> OldSite {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("temp dir");
        let state = dir.path().join("state");
        std::fs::create_dir(&state).unwrap();
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
        for name in ["site.lic", "vendor.pub"] {
            std::fs::copy(Path::new(FIXTURE).join(name), dir.path().join(name)).unwrap();
        }
        for name in ["journal", "snapshot", "handle.key"] {
            let to = state.join(name);
            std::fs::copy(Path::new(FIXTURE).join("state").join(name), &to).unwrap();
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        let handles = std::fs::read_to_string(Path::new(FIXTURE).join("handles")).unwrap();
        let of = |kind: &str| -> Vec<String> {
            handles
                .lines()
                .filter_map(|l| l.strip_prefix(kind))
                .map(|h| h.trim().to_string())
                .collect()
        };
        OldSite {
            held: of("held "),
            returned: of("returned "),
            dir,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn args(&self) -> Vec<String> {
        [
            "--license",
            self.path("site.lic").to_str().unwrap(),
            "--vendor-key",
            self.path("vendor.pub").to_str().unwrap(),
            "--state-dir",
            self.path("state").to_str().unwrap(),
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
        ]
        .map(String::from)
        .to_vec()
    }

    fn file(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.path("state").join(name)).unwrap()
    }
}

/// The seat ids the server lists as held.
fn listed(addr: &str) -> ListedSeats {
    let status = status_json(addr);
    ListedSeats(
        status["features"]
            .as_array()
            .expect("features")
            .iter()
            .flat_map(|f| f["holders"].as_array().expect("holders").iter())
            .map(|h| h["seat"].as_str().expect("seat").to_string())
            .collect(),
    )
}

#[test]
fn a_format_2_state_directory_is_read_and_carried_on() {
    let site = OldSite::copy();
    assert_eq!((site.held.len(), site.returned.len()), (4, 2));
    let old_journal = site.file("journal");
    assert!(old_journal.starts_with(b"floatd-journal 2\n"));
    assert!(site.file("snapshot").starts_with(b"floatd-snapshot 2\n"));

    // Start on the old files: the seats of the snapshot and of the journal
    // after it are held, the returned ones are not.
    let mut server = Floatd::start(&site.args(), &site.path("first.log"));
    let seats = listed(&server.addr);
    for h in &site.held {
        assert!(seats.contains(h), "{h} lost: {seats:?}");
    }
    for h in &site.returned {
        assert!(!seats.contains(h), "{h} came back");
    }
    assert_eq!(seats.len(), site.held.len());
    assert_eq!(in_use(&server.addr, "cad") + in_use(&server.addr, "cam"), 4);
    assert!(!server.log_text().contains("journal cut"));

    // The header now says format 3; the old entries are kept as they were.
    let journal = site.file("journal");
    assert!(
        journal.starts_with(b"floatd-journal 3\n"),
        "header upgraded"
    );
    assert_eq!(journal[17..old_journal.len()], old_journal[17..]);

    // An old seat is returned by its handle, a new one granted; both go to
    // the journal as binary entries after the text ones.
    let mut c = LineClient::connect(&server.addr);
    let hello = c.ask("HELLO proto=1 client=fixture-ann user=ann host=ws-1");
    assert!(hello.starts_with("OK"), "{hello}");
    assert_eq!(c.ask(&format!("CHECKIN {}", site.held[0])), "OK");
    let fresh = c.checkout("cad").expect("checkout after the upgrade");
    let journal = site.file("journal");
    assert!(journal.len() > old_journal.len());
    assert_eq!(journal[old_journal.len()], 0xB3, "a binary entry follows");
    server.kill9();

    // Old text entries and new binary ones recover together.
    let mut server = Floatd::start(&site.args(), &site.path("second.log"));
    assert!(!server.log_text().contains("journal cut"));
    let seats = listed(&server.addr);
    for h in site.held[1..].iter().chain([&fresh]) {
        assert!(seats.contains(h), "{h} lost after the second start");
    }
    assert!(!seats.contains(&site.held[0]));
    assert_eq!(seats.len(), 4);

    // A clean stop writes a format 3 snapshot, which the next start reads.
    server.signal("TERM");
    assert_eq!(server.wait_exit(PATIENCE), Some(0), "{}", server.log_text());
    assert!(site.file("snapshot").starts_with(b"floatd-snapshot 3\n"));
    assert_eq!(site.file("journal"), b"floatd-journal 3\n");
    let server = Floatd::start(&site.args(), &site.path("third.log"));
    let seats = listed(&server.addr);
    for h in site.held[1..].iter().chain([&fresh]) {
        assert!(seats.contains(h), "{h} lost after the snapshot");
    }
    assert_eq!(seats.len(), 4);
}
