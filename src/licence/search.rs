//! Which licence files a server reads, in which order (RLM's start-up rules):
//!
//! 1. the licence path: `--license`, else env `FLOATD_LICENSE`, a
//!    `:`-separated list of files and directories; a directory gives its
//!    `*.lic` files in name order; `port@host` entries are for clients and
//!    ignored;
//! 2. every `*.lic` in the working directory, in name order;
//! 3. every `*.lic` in the directory of the server binary, in name order.
//!
//! Each file is read once, at its first place (compared by canonical path).
//! The working directory and binary directory are parameters so tests can
//! point them at temporary directories.

use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

/// Environment variable read when `--license` is not given.
pub const LICENCE_PATH_ENV: &str = "FLOATD_LICENSE";

/// The licence path setting: the `--license` value, else `FLOATD_LICENSE`.
pub fn licence_path_setting(flag: Option<&str>) -> Option<String> {
    flag.map(str::to_string)
        .or_else(|| std::env::var(LICENCE_PATH_ENV).ok())
        .filter(|p| !p.is_empty())
}

/// The directory holding the running binary, when it can be found.
pub fn exe_dir() -> Option<PathBuf> {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
}

/// True for a licence path entry meant for clients: `port@host` or `@host`.
pub fn is_port_at_host(entry: &str) -> bool {
    match entry.split_once('@') {
        Some((port, host)) => !host.is_empty() && port.bytes().all(|b| b.is_ascii_digit()),
        None => false,
    }
}

/// The files found and the problems met finding them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Found {
    /// In search order. Files named in the licence path are kept even when
    /// missing, so that reading them reports it.
    pub files: Vec<PathBuf>,
    /// Directories that could not be listed, one message each.
    pub problems: Vec<String>,
}

/// Applies the search rules. Relative licence path entries are taken
/// relative to `cwd`.
pub fn find_licence_files(licence_path: Option<&str>, cwd: &Path, exe_dir: Option<&Path>) -> Found {
    let mut search = Search::default();
    for entry in licence_path.unwrap_or("").split(':') {
        if entry.is_empty() {
            continue;
        }
        if is_port_at_host(entry) {
            log::debug!("licence path entry {entry:?} is a port@host for clients; ignored");
            continue;
        }
        let path = cwd.join(entry);
        if path.is_dir() {
            search.directory(&path, Dir::Named);
        } else {
            search.file(path);
        }
    }
    search.directory(cwd, Dir::Working);
    if let Some(dir) = exe_dir {
        search.directory(dir, Dir::Binary);
    }
    search.found
}

#[derive(Default)]
struct Search {
    found: Found,
    seen: HashSet<PathBuf>,
}

impl Search {
    fn file(&mut self, path: PathBuf) {
        let identity = fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
        if self.seen.insert(identity) {
            self.found.files.push(path);
        } else {
            log::debug!(
                "{} already in the licence search; read once",
                path.display()
            );
        }
    }

    /// Adds the `*.lic` files of `dir` in name order, logging what it
    /// skips as `kind` says.
    fn directory(&mut self, dir: &Path, kind: Dir) {
        let report = kind != Dir::Binary;
        let entries = match fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                let message = format!("{}: cannot list licence directory: {e}", dir.display());
                if report {
                    log::warn!("{message}");
                    self.found.problems.push(message);
                } else {
                    log::debug!("{message}");
                }
                return;
            }
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .collect();
        paths.sort();
        for path in paths {
            match skip_reason(&path) {
                None => self.file(path),
                Some(Skip::NotLic) if kind == Dir::Named => {
                    log::info!("{}: skipped: not a *.lic file", path.display())
                }
                Some(Skip::NotLic) => log::debug!("{}: skipped: not a *.lic file", path.display()),
                Some(Skip::NotAFile(why)) => {
                    let message = format!("{}: skipped: {why}", path.display());
                    log::warn!("{message}");
                    self.found.problems.push(message);
                }
            }
        }
    }
}

/// Where a searched directory comes from: what is worth saying about it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Dir {
    /// Named in the licence path: every entry it skips is logged (info).
    Named,
    /// The working directory: a listing failure is a problem; other
    /// files are its business (debug).
    Working,
    /// The binary's directory: may legitimately be out of reach.
    Binary,
}

/// Why a directory entry is not read as a licence file.
enum Skip {
    NotLic,
    /// Named `*.lic` but not a regular file (a directory, a FIFO...).
    NotAFile(String),
}

fn skip_reason(path: &Path) -> Option<Skip> {
    if path.extension().is_none_or(|ext| ext != "lic") {
        return Some(Skip::NotLic);
    }
    // Follows symbolic links; never opens the file (a FIFO would block).
    match fs::metadata(path) {
        Ok(meta) if meta.is_file() => None,
        Ok(meta) => Some(Skip::NotAFile(format!(
            "named *.lic but {}",
            describe(&meta.file_type())
        ))),
        Err(e) => Some(Skip::NotAFile(format!("cannot read: {e}"))),
    }
}

fn describe(kind: &fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(dir: &Path, name: &str) -> PathBuf {
        let path = dir.join(name);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, "").unwrap();
        path
    }

    /// Paths relative to `root`, for readable assertions.
    fn relative(found: &Found, root: &Path) -> Vec<String> {
        found
            .files
            .iter()
            .map(|p| {
                let canonical = fs::canonicalize(p).unwrap_or(p.clone());
                let root = fs::canonicalize(root).unwrap();
                canonical
                    .strip_prefix(&root)
                    .map(|r| r.display().to_string())
                    .unwrap_or_else(|_| p.display().to_string())
            })
            .collect()
    }

    #[test]
    fn order_is_licence_path_then_cwd_then_binary_dir() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        touch(r, "lp/b.lic");
        touch(r, "lp/a.lic");
        touch(r, "lp/notes.txt");
        touch(r, "lp/sub.lic/inner.lic"); // a directory named *.lic is not a file
        touch(r, "single/site.lic");
        touch(r, "cwd/z.lic");
        touch(r, "cwd/m.lic");
        touch(r, "cwd/readme.md");
        touch(r, "bin/vendor.lic");
        let licence_path = format!(
            "{}:27000@lic1:@lic2::{}",
            r.join("single/site.lic").display(),
            r.join("lp").display()
        );
        let found = find_licence_files(Some(&licence_path), &r.join("cwd"), Some(&r.join("bin")));
        assert_eq!(
            relative(&found, r),
            [
                "single/site.lic",
                "lp/a.lic",
                "lp/b.lic",
                "cwd/m.lic",
                "cwd/z.lic",
                "bin/vendor.lic"
            ]
        );
        // lp/sub.lic is a directory named *.lic: skipped, and said so.
        assert_eq!(found.problems.len(), 1, "{:?}", found.problems);
        assert!(found.problems[0].ends_with("sub.lic: skipped: named *.lic but a directory"));
    }

    #[test]
    fn fifos_named_lic_are_skipped_without_opening_them() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        touch(r, "dir/a.lic");
        let fifo = r.join("dir/b.lic");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        let found = find_licence_files(Some("dir"), r, None);
        assert_eq!(relative(&found, r), ["dir/a.lic"]);
        assert_eq!(
            found.problems,
            [format!(
                "{}: skipped: named *.lic but a FIFO (named pipe)",
                fifo.display()
            )]
        );
    }

    #[test]
    fn each_file_once_at_its_first_place() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        touch(r, "a.lic");
        touch(r, "b.lic");
        // The licence path names cwd's b.lic (relative to cwd), then cwd
        // itself; the binary lives in cwd too.
        let found = find_licence_files(Some("b.lic:./:b.lic"), r, Some(r));
        assert_eq!(relative(&found, r), ["b.lic", "a.lic"]);
    }

    #[test]
    fn missing_entries_are_kept_and_unlistable_directories_reported() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        let found = find_licence_files(Some("missing.lic"), r, Some(&r.join("no-such-bin-dir")));
        assert_eq!(found.files, [r.join("missing.lic")]);
        assert!(
            found.problems.is_empty(),
            "the binary's directory may be unreadable"
        );
        let found = find_licence_files(None, &r.join("gone"), None);
        assert!(found.files.is_empty());
        assert_eq!(found.problems.len(), 1);
        assert!(found.problems[0].contains("cannot list licence directory"));
    }

    #[test]
    fn port_at_host_entries() {
        assert!(is_port_at_host("27000@lic1"));
        assert!(is_port_at_host("@lic1.example.com"));
        assert!(!is_port_at_host("/opt/lic@v2/site.lic"));
        assert!(!is_port_at_host("site.lic"));
        assert!(!is_port_at_host("27000@"));
    }
}
