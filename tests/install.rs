//! scripts/install.sh in a temporary prefix: what it installs, that a
//! second run changes nothing and keeps an edited config, that --dry-run
//! writes nothing, and that the config it writes is a valid floatd config
//! naming every key. Also the systemd units through systemd-analyze.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The directory of the binaries under test (target/debug).
fn bin_dir() -> PathBuf {
    Path::new(FLOATD).parent().unwrap().to_path_buf()
}

fn install(prefix: &Path, extra: &[&str]) -> Output {
    let out = Command::new("bash")
        .arg(repo().join("scripts/install.sh"))
        .arg("--prefix")
        .arg(prefix)
        .arg("--bin-dir")
        .arg(bin_dir())
        .args(extra)
        .output()
        .expect("run install.sh");
    assert!(
        out.status.success(),
        "install.sh {extra:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

fn same(a: &Path, b: &Path) {
    assert!(
        std::fs::read(a).unwrap() == std::fs::read(b).unwrap(),
        "{} differs from {}",
        a.display(),
        b.display()
    );
}

/// Every file under `dir`, relative, sorted.
fn tree(dir: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            out.push(p.strip_prefix(root).unwrap().display().to_string());
            if p.is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = Vec::new();
    if dir.exists() {
        walk(dir, dir, &mut out);
    }
    out.sort();
    out
}

#[test]
fn installs_binaries_units_config_and_docs_and_runs_again_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let first = text(&install(&root, &[]));
    let bin = root.join("usr/local/bin");
    same(&bin.join("floatd"), Path::new(FLOATD));
    same(&bin.join("floatctl"), Path::new(FLOATCTL));
    assert_eq!(mode(&bin.join("floatd")), 0o755);
    let units = root.join("etc/systemd/system");
    same(
        &units.join("floatd.service"),
        &repo().join("scripts/floatd.service"),
    );
    same(
        &units.join("floatd@.service"),
        &repo().join("scripts/floatd@.service"),
    );
    assert_eq!(mode(&units.join("floatd.service")), 0o644);
    let config = root.join("etc/floatd/floatd.toml");
    assert_eq!(mode(&config), 0o644);
    assert!(root
        .join("usr/local/share/doc/floatd/OPERATIONS.md")
        .exists());
    assert!(first.contains("Next steps"), "{first}");
    assert!(
        first.contains("systemctl daemon-reload && systemctl enable --now floatd.service"),
        "{first}"
    );

    // Again, with the config edited meanwhile: nothing changes.
    let before = tree(&root);
    std::fs::write(&config, "# mine\nlease = \"30s\"\n").unwrap();
    let second = text(&install(&root, &[]));
    assert_eq!(tree(&root), before);
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        "# mine\nlease = \"30s\"\n"
    );
    assert!(second.contains("keeping existing"), "{second}");
    for line in second
        .lines()
        .filter(|l| l.contains(root.to_str().unwrap()))
    {
        assert!(
            line.starts_with("unchanged ") || line.starts_with("keeping existing "),
            "second run changed something: {line}"
        );
    }
}

#[test]
fn dry_run_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let out = text(&install(&root, &["--dry-run"]));
    assert!(tree(&root).is_empty(), "dry run wrote {:?}", tree(&root));
    assert!(out.contains("would install"), "{out}");
    assert!(out.contains("would write"), "{out}");
    // And over an installed tree it still changes nothing.
    install(&root, &["--role", "backup"]);
    let before = tree(&root);
    let config = root.join("etc/floatd/backup.toml");
    let text_before = std::fs::read(&config).unwrap();
    let out = text(&install(&root, &["--role", "backup", "--dry-run"]));
    assert_eq!(tree(&root), before);
    assert_eq!(std::fs::read(&config).unwrap(), text_before);
    assert!(!out.contains("would install"), "{out}");
}

#[test]
fn roles_get_their_own_config_for_the_template_unit() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    for role in ["primary", "backup", "witness"] {
        let out = text(&install(&root, &["--role", role]));
        assert!(
            out.contains(&format!("systemctl enable --now floatd@{role}.service")),
            "{out}"
        );
        let config = root.join(format!("etc/floatd/{role}.toml"));
        let text = std::fs::read_to_string(&config).unwrap();
        assert!(text.contains("peer.secret"), "{text}");
        if role == "witness" {
            assert!(text.contains("\npeer_listen = "), "{text}");
        } else {
            assert!(text.contains("\nlicense = \"/etc/floatd\""), "{text}");
        }
    }
    assert!(!root.join("etc/floatd/floatd.toml").exists());
    let bad = Command::new("bash")
        .arg(repo().join("scripts/install.sh"))
        .args(["--role", "boss", "--dry-run"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

/// `floatd --config FILE --help` exits 0 exactly when FILE parses.
fn config_parses(path: &Path) -> Result<(), String> {
    let out = Command::new(FLOATD)
        .arg("--config")
        .arg(path)
        .arg("--help")
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).to_string())
    }
}

#[test]
fn the_config_is_valid_and_names_every_key() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    install(&root, &[]);
    install(&root, &["--role", "primary"]);
    let usage =
        String::from_utf8(Command::new(FLOATD).arg("--help").output().unwrap().stdout).unwrap();
    let keys: Vec<String> = usage
        .split_whitespace()
        .filter_map(|w| w.strip_prefix("--"))
        .filter(|f| !["config", "demo", "help"].contains(f))
        .map(|f| f.replace('-', "_"))
        .collect();
    assert!(keys.len() > 20, "{keys:?}");
    for name in ["floatd.toml", "primary.toml"] {
        let path = root.join("etc/floatd").join(name);
        config_parses(&path).unwrap_or_else(|e| panic!("{name} as written: {e}"));
        let text = std::fs::read_to_string(&path).unwrap();
        for key in &keys {
            assert!(
                text.contains(&format!("\n{key} = ")) || text.contains(&format!("\n# {key} = ")),
                "{name} does not show the key {key}"
            );
        }
        // Every default shown must be valid too: uncomment them all.
        let all: String = text
            .lines()
            .map(|l| {
                let bare = l.strip_prefix("# ").unwrap_or(l);
                let is_key = bare
                    .split_once(" = ")
                    .is_some_and(|(k, _)| keys.iter().any(|key| key == k));
                if is_key {
                    format!("{bare}\n")
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        let uncommented = tmp.path().join(format!("all-{name}"));
        std::fs::write(&uncommented, &all).unwrap();
        config_parses(&uncommented).unwrap_or_else(|e| panic!("{name} uncommented: {e}\n{all}"));
    }
}

#[test]
fn the_units_pass_systemd_analyze() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "systemd-analyze is not installed, and CI must check the units (apt-get install systemd)"
        );
        eprintln!("SKIPPED systemd-analyze verify/security: systemd-analyze is not installed (apt-get install systemd)");
        return;
    }
    let out = Command::new("bash")
        .arg(repo().join("scripts/systemd-check.sh"))
        .arg(FLOATD)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(text.contains("verify floatd.service: clean"), "{text}");
    assert!(
        text.contains("verify floatd@primary.service: clean"),
        "{text}"
    );
    // The score docs/OPERATIONS.md records.
    let docs = std::fs::read_to_string(repo().join("docs/OPERATIONS.md")).unwrap();
    let score = text
        .lines()
        .find_map(|l| l.strip_prefix("security floatd.service: "))
        .and_then(|s| s.split_whitespace().next())
        .expect("a score")
        .to_string();
    assert!(
        docs.contains(&format!("exposure level {score}")),
        "docs/OPERATIONS.md should record the exposure level {score}"
    );
}
