//! The vendor workflow through the real `floatctl` binary: keygen, sign,
//! verify, pools, hostid, in a temporary directory.
//!
//! Builds with `embedded-keys-only` refuse `--vendor-key`, which most of
//! the workflow needs; there, the refusal itself is tested instead.

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

fn floatctl(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_floatctl"))
        .args(args)
        .current_dir(dir)
        .env_remove("FLOATD_LICENSE")
        .output()
        .expect("run floatctl")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs floatctl and checks its exit code, showing its output if it differs.
fn expect(dir: &Path, args: &[&str], code: i32) -> Output {
    let out = floatctl(dir, args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "floatctl {args:?}\nstdout:\n{}\nstderr:\n{}",
        stdout(&out),
        stderr(&out)
    );
    out
}

/// Signs `text` as `name` with the key in `keys/`, writing `signed-name`.
fn sign(dir: &Path, name: &str, text: &str) -> String {
    fs::write(dir.join(name), text).unwrap();
    let out = expect(dir, &["sign", "--key", "keys/vendor.key", name], 0);
    let signed = stdout(&out);
    fs::write(dir.join(format!("signed-{name}")), &signed).unwrap();
    signed
}

const SITE: &str = "\
# Acme site licence
SERVER lic1 hostid=any port=27000
FAILOVER lic2 hostid=any port=27001

FEATURE cad version=2.0 count=10 expires=permanent share=user customer=\"Acme Ltd\" _comment=\"for Bob\"
FEATURE viewer version=1.0 count=uncounted expires=permanent   # free viewer
";

#[cfg(not(feature = "embedded-keys-only"))]
#[test]
fn keygen_sign_verify_tamper() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    let out = expect(dir, &["keygen", "--out", "keys"], 0);
    let printed = stdout(&out);
    assert!(printed.starts_with("key id "), "{printed}");
    assert!(printed.contains("keys/vendor.key") && printed.contains("keys/vendor.pub"));
    let public = fs::read_to_string(dir.join("keys/vendor.pub")).unwrap();
    assert!(public.starts_with("floatd-ed25519-public "));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(dir.join("keys/vendor.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let key_id = printed["key id ".len()..]
        .lines()
        .next()
        .unwrap()
        .to_string();

    let signed = sign(dir, "site.lic", SITE);
    assert!(signed.contains(&format!("sig=ed25519:{key_id}:")));
    assert!(signed.starts_with("# Acme site licence\nSERVER lic1 hostid=any port=27000\n"));
    assert!(signed.contains("   # free viewer\n"));

    let verify = [
        "verify",
        "--vendor-key",
        "keys/vendor.pub",
        "signed-site.lic",
    ];
    let out = expect(dir, &verify, 0);
    assert_eq!(
        stdout(&out),
        "signed-site.lic:5: cad 2.0 count=10 expires=permanent: ok\n\
         signed-site.lic:6: viewer 1.0 count=uncounted expires=permanent: ok\n"
    );

    // Without the vendor's key the signatures are foreign, not bad.
    let out = expect(dir, &["verify", "signed-site.lic"], 1);
    assert!(stdout(&out).contains(&format!(
        "cad 2.0 count=10 expires=permanent: unknown key {key_id}"
    )));

    // Tampering with a count is caught.
    fs::write(
        dir.join("signed-site.lic"),
        signed.replace("count=10", "count=11"),
    )
    .unwrap();
    let out = expect(dir, &verify, 1);
    assert!(
        stdout(&out)
            .contains("signed-site.lic:5: cad 2.0 count=11 expires=permanent: bad signature"),
        "{}",
        stdout(&out)
    );
    assert!(stdout(&out).contains("viewer 1.0 count=uncounted expires=permanent: ok"));

    // The host name and `_` fields are the customer's to edit.
    let edited = signed
        .replace("SERVER lic1", "SERVER licence-box.acme.example")
        .replace("_comment=\"for Bob\"", "_comment=\"for Alice, from 2027\"");
    assert_ne!(edited, signed);
    fs::write(dir.join("signed-site.lic"), edited).unwrap();
    expect(dir, &verify, 0);

    // A missing signature is reported as such.
    let unsigned = signed
        .lines()
        .map(|l| l.split(" sig=").next().unwrap().to_string() + "\n")
        .collect::<String>();
    fs::write(dir.join("unsigned.lic"), unsigned).unwrap();
    let out = expect(
        dir,
        &["verify", "--vendor-key", "keys/vendor.pub", "unsigned.lic"],
        1,
    );
    assert!(stdout(&out).contains("cad 2.0 count=10 expires=permanent: missing signature"));
}

#[test]
fn keygen_refuses_to_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    expect(dir, &["keygen", "--out", "keys"], 0);
    let before = fs::read(dir.join("keys/vendor.key")).unwrap();
    let out = expect(dir, &["keygen", "--out", "keys"], 2);
    assert!(stderr(&out).contains("already exists"), "{}", stderr(&out));
    assert_eq!(fs::read(dir.join("keys/vendor.key")).unwrap(), before);
    expect(dir, &["keygen"], 2);
}

#[cfg(not(feature = "embedded-keys-only"))]
#[test]
fn sign_names_the_bad_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    expect(dir, &["keygen", "--out", "keys"], 0);
    fs::write(
        dir.join("bad.lic"),
        "SERVER lic1 hostid=any\nFEATURE cad version=2.0 count 3 expires=permanent\n",
    )
    .unwrap();
    let out = expect(dir, &["sign", "--key", "keys/vendor.key", "bad.lic"], 2);
    assert!(stdout(&out).is_empty());
    assert!(
        stderr(&out).contains("bad.lic:2:30: expected '=' after key \"count\""),
        "{}",
        stderr(&out)
    );
}

#[cfg(not(feature = "embedded-keys-only"))]
#[test]
fn pools_combines_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    expect(dir, &["keygen", "--out", "keys"], 0);
    sign(
        dir,
        "a.lic",
        "SERVER lic1 hostid=any port=27000\n\
         FEATURE cad version=2.0 count=3 expires=permanent\n\
         FEATURE solver version=1.0 count=2 expires=permanent share=user min_checkout=5\n",
    );
    sign(
        dir,
        "b.lic",
        "SERVER other hostid=any port=27010\n\
         FEATURE cad version=2.0 count=4 expires=permanent\n\
         FEATURE old version=1.0 count=4 expires=2020-01-01\n\
         FEATURE node version=1.0 count=single expires=permanent\n",
    );
    let out = expect(
        dir,
        &[
            "pools",
            "--vendor-key",
            "keys/vendor.pub",
            "signed-a.lic",
            "signed-b.lic",
        ],
        0,
    );
    assert_eq!(
        stdout(&out),
        "cad 2.0 count=7 expires=permanent share=none\n\
         solver 1.0 count=2 expires=permanent share=user min_checkout=5\n"
    );
    let notes = stderr(&out);
    assert!(notes.contains("expired on 2020-01-01"), "{notes}");
    assert!(notes.contains("count=single"), "{notes}");
    assert!(notes.contains("port 27000 (also 27010)"), "{notes}");

    // The file has no FAILOVER line, so a backup serves nothing; this host
    // is its SERVER host, which the hint says.
    let out = expect(
        dir,
        &[
            "pools",
            "--vendor-key",
            "keys/vendor.pub",
            "--backup",
            "signed-a.lic",
        ],
        1,
    );
    assert!(
        stderr(&out).contains("this host is the SERVER host of signed-a.lic"),
        "{}",
        stderr(&out)
    );
}

#[cfg(feature = "embedded-keys-only")]
#[test]
fn runtime_keys_are_refused_by_embedded_keys_only_builds() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    expect(dir, &["keygen", "--out", "keys"], 0);
    let signed = sign(dir, "site.lic", SITE);
    assert!(signed.contains("sig=ed25519:"));
    let out = expect(
        dir,
        &[
            "verify",
            "--vendor-key",
            "keys/vendor.pub",
            "signed-site.lic",
        ],
        2,
    );
    assert!(
        stderr(&out).contains("cargo feature `embedded-keys-only`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn hostid_prints_this_hosts_ids() {
    let tmp = tempfile::tempdir().unwrap();
    let out = expect(tmp.path(), &["hostid"], 0);
    let ids = stdout(&out);
    assert!(!ids.is_empty());
    for line in ids.lines() {
        assert!(
            line.starts_with("host:") || line.starts_with("mac:") || line.starts_with("machine:"),
            "{line}"
        );
    }
}
