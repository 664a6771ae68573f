//! The server's entry points: find, read, parse, verify and combine
//! licence files in one call.

use super::hostid::HostIds;
use super::keys::TrustedKeys;
use super::parse::{parse_licence, MAX_FILE_BYTES};
use super::pools::{serve, LoadError, Problems, Served, Side};
use super::search::find_licence_files;
use crate::civil::Date;
use std::path::{Path, PathBuf};

/// A licence file's name (used in messages) and text, for licences that do
/// not come from disk (the demo, tests).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Source {
    pub name: String,
    pub text: String,
}

/// What [`load`] needs to know.
#[derive(Clone, Copy, Debug)]
pub struct LoadRequest<'a> {
    /// The licence path: `--license`, else `FLOATD_LICENSE`
    /// (see [`super::search::licence_path_setting`]).
    pub license_path: Option<&'a str>,
    /// The working directory, searched for `*.lic`.
    pub cwd: &'a Path,
    /// The server binary's directory, searched for `*.lic`
    /// (see [`super::search::exe_dir`]).
    pub exe_dir: Option<&'a Path>,
    pub keys: &'a TrustedKeys,
    pub host: &'a HostIds,
    pub side: Side,
    pub today: Date,
    /// Every file and directory the licence path names must be readable:
    /// the operator named them explicitly (`--license`), so a missing one
    /// is an error rather than a warning. (`FLOATD_LICENSE`, which may be
    /// meant for clients too, is read leniently.)
    pub strict: bool,
}

/// The licence files the search rules find, in order (see
/// [`super::search`]). Directories that cannot be listed are logged.
pub fn find_files(req: &LoadRequest<'_>) -> Vec<PathBuf> {
    find_licence_files(req.license_path, req.cwd, req.exe_dir).files
}

/// Finds, reads, parses, verifies and combines the licence files for this
/// host. `Err` when nothing at all can be served, with every reason.
pub fn load(req: &LoadRequest<'_>) -> Result<Served, LoadError> {
    if req.strict {
        let unreadable = check_named(req.license_path.unwrap_or(""), req.cwd);
        if !unreadable.is_empty() {
            return Err(LoadError {
                reasons: unreadable,
            });
        }
    }
    let found = find_licence_files(req.license_path, req.cwd, req.exe_dir);
    let mut problems = Problems::logged_skips(found.problems);
    if found.files.is_empty() {
        let licence_path = match req.license_path {
            Some(path) => format!("licence path {path:?}"),
            None => "no licence path (--license or FLOATD_LICENSE)".into(),
        };
        let exe_dir = req
            .exe_dir
            .map(|d| format!(", none beside the binary in {}", d.display()))
            .unwrap_or_default();
        problems.all.push(format!(
            "no licence files found: {licence_path}, no *.lic in {}{exe_dir}",
            req.cwd.display()
        ));
        return Err(LoadError {
            reasons: problems.all,
        });
    }
    load_paths(
        &found.files,
        problems,
        req.keys,
        req.host,
        req.side,
        req.today,
    )
}

/// Why each file or directory the licence path names cannot be read
/// (empty when all can).
fn check_named(licence_path: &str, cwd: &Path) -> Vec<String> {
    let mut reasons = Vec::new();
    for entry in licence_path.split(':') {
        if entry.is_empty() || super::search::is_port_at_host(entry) {
            continue;
        }
        let path = cwd.join(entry);
        let problem = if path.is_dir() {
            std::fs::read_dir(&path)
                .err()
                .map(|e| format!("cannot list the directory: {e}"))
        } else {
            crate::files::open_regular(&path, MAX_FILE_BYTES as u64)
                .err()
                .map(|e| e.to_string())
        };
        if let Some(problem) = problem {
            reasons.push(format!(
                "{}: {problem} (named by --license)",
                path.display()
            ));
        }
    }
    reasons
}

/// Like [`load`] for the given files, without the search (`floatctl pools`).
pub fn load_files(
    paths: &[PathBuf],
    keys: &TrustedKeys,
    host: &HostIds,
    side: Side,
    today: Date,
) -> Result<Served, LoadError> {
    load_paths(paths, Problems::default(), keys, host, side, today)
}

/// Like [`load`] for texts already in memory (`floatd --demo`, tests).
pub fn load_sources(
    sources: &[Source],
    keys: &TrustedKeys,
    host: &HostIds,
    side: Side,
    today: Date,
) -> Result<Served, LoadError> {
    let mut problems = Problems::default();
    let parsed = sources
        .iter()
        .filter_map(|s| {
            parse_or_report(&s.name, s.text.as_bytes(), &mut problems)
                .map(|f| (PathBuf::from(&s.name), f))
        })
        .collect();
    serve(parsed, problems, keys, host, side, today)
}

fn load_paths(
    paths: &[PathBuf],
    mut problems: Problems,
    keys: &TrustedKeys,
    host: &HostIds,
    side: Side,
    today: Date,
) -> Result<Served, LoadError> {
    let mut parsed = Vec::new();
    for path in paths {
        let name = path.display().to_string();
        match read_licence_file(path) {
            Ok(bytes) => {
                if let Some(file) = parse_or_report(&name, &bytes, &mut problems) {
                    parsed.push((path.clone(), file));
                }
            }
            Err(e) => problems.skip(format!("{name}: {e}")),
        }
    }
    serve(parsed, problems, keys, host, side, today)
}

fn parse_or_report(
    name: &str,
    bytes: &[u8],
    problems: &mut Problems,
) -> Option<super::parse::LicenceFile> {
    match parse_licence(name, bytes) {
        Ok(file) => Some(file),
        Err(errors) => {
            for error in errors {
                problems.warn(error.to_string());
            }
            problems.skip(format!(
                "{name}: not used: every signature in a file depends on its SERVER and FAILOVER lines"
            ));
            None
        }
    }
}

/// Reads a licence file: a regular file (never a FIFO or a device, which
/// could block or never end) of at most [`MAX_FILE_BYTES`].
pub fn read_licence_file(path: &Path) -> Result<Vec<u8>, String> {
    crate::files::read_regular(path, MAX_FILE_BYTES as u64).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::licence::hostid::HostId;
    use crate::licence::signature::sign_licence;
    use ed25519_dalek::SigningKey;
    use std::fs;

    fn setup() -> (tempfile::TempDir, TrustedKeys, HostIds, Date) {
        let key = SigningKey::from_bytes(&[5; 32]);
        let mut keys = TrustedKeys::new();
        keys.add(key.verifying_key(), "test");
        let dir = tempfile::tempdir().unwrap();
        let write = |rel: &str, port: u16, count: u32| {
            let text = format!(
                "SERVER lic1 hostid=any port={port}\nFEATURE cad version=1 count={count} expires=permanent\n"
            );
            let signed = sign_licence(rel, text.as_bytes(), &key).unwrap().text;
            let path = dir.path().join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, signed).unwrap();
        };
        write("etc/site.lic", 27000, 1);
        write("cwd/extra.lic", 27010, 2);
        write("bin/vendor.lic", 27020, 4);
        let host = HostIds::from_ids([HostId::parse("host:lic1").unwrap()]);
        (dir, keys, host, Date::parse("2027-01-01").unwrap())
    }

    #[test]
    fn load_follows_the_search_order_for_ports() {
        let (dir, keys, host, today) = setup();
        let d = dir.path();
        let licence_path = format!("27000@lic1:{}", d.join("etc").display());
        let cwd = d.join("cwd");
        let bin = d.join("bin");
        let req = LoadRequest {
            license_path: Some(&licence_path),
            cwd: &cwd,
            exe_dir: Some(&bin),
            keys: &keys,
            host: &host,
            side: Side::Primary,
            today,
            strict: false,
        };
        assert_eq!(find_files(&req).len(), 3);
        let served = load(&req).unwrap();
        assert_eq!(served.pools.len(), 1);
        assert_eq!(served.pools[0].limit(), Some(7));
        assert_eq!(served.port, Some(27000));
        assert_eq!(served.extra_ports, [27010, 27020]);
        assert!(served.files[0].path.ends_with("etc/site.lic"));
    }

    #[test]
    fn nothing_found_and_unreadable_files_are_reasons() {
        let (dir, keys, host, today) = setup();
        let empty = dir.path().join("empty");
        fs::create_dir(&empty).unwrap();
        let req = LoadRequest {
            license_path: Some("missing.lic"),
            cwd: &empty,
            exe_dir: None,
            keys: &keys,
            host: &host,
            side: Side::Primary,
            today,
            strict: false,
        };
        let err = load(&req).unwrap_err();
        assert!(
            err.reasons[0].contains("missing.lic: cannot read:"),
            "{err}"
        );
        let req = LoadRequest {
            license_path: None,
            ..req
        };
        let err = load(&req).unwrap_err();
        assert_eq!(
            err.reasons,
            [format!(
                "no licence files found: no licence path (--license or FLOATD_LICENSE), no *.lic in {}",
                empty.display()
            )]
        );
    }

    #[test]
    fn strict_loading_fails_on_a_named_file_that_cannot_be_read() {
        let (dir, keys, host, today) = setup();
        let d = dir.path();
        // cwd holds extra.lic, which a lenient load would serve instead.
        let cwd = d.join("cwd");
        let licence_path = format!("27000@lic1:{}:missing.lic", d.join("etc").display());
        let req = LoadRequest {
            license_path: Some(&licence_path),
            cwd: &cwd,
            exe_dir: None,
            keys: &keys,
            host: &host,
            side: Side::Primary,
            today,
            strict: true,
        };
        let err = load(&req).unwrap_err();
        assert_eq!(err.reasons.len(), 1, "{err}");
        assert!(
            err.reasons[0].ends_with("missing.lic: cannot read: No such file or directory (os error 2) (named by --license)"),
            "{err}"
        );
        let lenient = load(&LoadRequest {
            strict: false,
            ..req
        })
        .unwrap();
        assert_eq!(lenient.pools[0].limit(), Some(3));
        assert!(lenient.problems.iter().any(|p| p.contains("missing.lic")));
        let named = d.join("etc/site.lic").display().to_string();
        let ok = load(&LoadRequest {
            license_path: Some(&named),
            ..req
        })
        .unwrap();
        assert_eq!(ok.pools[0].limit(), Some(3));
    }

    #[test]
    fn oversized_files_are_refused_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.lic");
        let file = fs::File::create(&path).unwrap();
        file.set_len(MAX_FILE_BYTES as u64 + 1).unwrap();
        let err = read_licence_file(&path).unwrap_err();
        assert!(
            err.contains("the limit is 16777216 bytes (16 MiB)"),
            "{err}"
        );
        assert!(read_licence_file(dir.path())
            .unwrap_err()
            .contains("directory"));
    }
}
