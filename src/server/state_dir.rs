//! The state directory: where it is, the lock that keeps a second server
//! off it, and keeping it private.
//!
//! Its files hold handles (bearer secrets) and who used what, so the
//! directory is 0700 and every file in it 0600. At start a directory of
//! ours that is open to others is closed (and the files in it), and said
//! so; a directory that is not ours, or is shared (sticky, like /tmp), is
//! refused.

use crate::config::Config;
use crate::files::{PRIVATE_DIR_MODE, PRIVATE_FILE_MODE};
use std::fs;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The state directory in use, locked for this process. A demo's own
/// temporary directory is removed when this is dropped, whether the
/// server stopped or failed to start.
pub struct StateDir {
    pub path: PathBuf,
    _lock: fs::File,
    remove_on_drop: bool,
}

impl Drop for StateDir {
    fn drop(&mut self) {
        if self.remove_on_drop {
            // The demo's seats were never meant to outlive it.
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

/// Finds, creates, secures and locks the state directory.
pub fn open(config: &Config) -> Result<StateDir, String> {
    let (path, demo_temp) = match (&config.state_dir, config.demo) {
        (Some(dir), _) => (dir.clone(), false),
        (None, true) => {
            let dir = std::env::temp_dir().join(format!("floatd-demo-{}", std::process::id()));
            log::info!("demo: state in {}", dir.display());
            (dir, true)
        }
        (None, false) => (default_state_dir(), false),
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR_MODE)
        .create(&path)
        .map_err(|e| format!("state directory {}: {e}", path.display()))?;
    // From here on a demo's temporary directory is removed on any failure.
    let lock_path = path.join("lock");
    let lock = fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(PRIVATE_FILE_MODE)
        .open(&lock_path);
    let lock = match lock {
        Ok(lock) => lock,
        Err(e) => {
            if demo_temp {
                let _ = fs::remove_dir_all(&path);
            }
            return Err(format!("{}: {e}", lock_path.display()));
        }
    };
    if lock.try_lock().is_err() {
        return Err(format!(
            "state directory {} is in use by another floatd (lock held on {})",
            path.display(),
            lock_path.display()
        ));
    }
    let dir = StateDir {
        path,
        _lock: lock,
        remove_on_drop: demo_temp,
    };
    make_private(&dir.path, effective_uid())?;
    Ok(dir)
}

/// What to do about a state directory's ownership and mode.
#[derive(Debug, PartialEq, Eq)]
pub enum DirVerdict {
    /// Private already.
    Fine,
    /// Ours but open to others: close it.
    Close,
    /// Not ours, or shared: refuse, saying why.
    Refuse(String),
}

/// The rule for the directory itself: `mode` and `owner` as `stat` gives
/// them, `uid` this process's effective uid (`None` when unknown).
pub fn judge_dir(mode: u32, owner: u32, uid: Option<u32>) -> DirVerdict {
    if mode & 0o1000 != 0 {
        return DirVerdict::Refuse(format!(
            "is shared (mode {:o}, sticky, like /tmp): give floatd a directory of its own",
            mode & 0o7777
        ));
    }
    if let Some(uid) = uid {
        if owner != uid && uid != 0 {
            return DirVerdict::Refuse(format!(
                "belongs to uid {owner}, not to this process (uid {uid}): give floatd a directory of its own"
            ));
        }
    }
    if mode & 0o077 != 0 {
        DirVerdict::Close
    } else {
        DirVerdict::Fine
    }
}

/// Makes the directory 0700 and its files 0600, logging what it changed.
fn make_private(dir: &Path, uid: Option<u32>) -> Result<(), String> {
    let meta = fs::metadata(dir).map_err(|e| format!("state directory {}: {e}", dir.display()))?;
    let mode = meta.mode();
    match judge_dir(mode, meta.uid(), uid) {
        DirVerdict::Fine => {}
        DirVerdict::Refuse(why) => {
            return Err(format!("state directory {} {why}", dir.display()));
        }
        DirVerdict::Close => {
            fs::set_permissions(dir, fs::Permissions::from_mode(PRIVATE_DIR_MODE)).map_err(
                |e| {
                    format!(
                        "state directory {}: cannot make it private: {e}",
                        dir.display()
                    )
                },
            )?;
            log::warn!(
                "state directory {} was mode {:o}, open to other users; changed to {:o}",
                dir.display(),
                mode & 0o777,
                PRIVATE_DIR_MODE
            );
        }
    }
    let entries =
        fs::read_dir(dir).map_err(|e| format!("state directory {}: {e}", dir.display()))?;
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        // Not followed: a link is the operator's business.
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_file() || meta.mode() & 0o077 == 0 {
            continue;
        }
        let mode = meta.mode() & 0o777;
        match fs::set_permissions(&path, fs::Permissions::from_mode(mode & 0o700)) {
            Ok(()) => log::warn!(
                "{} was mode {mode:o}, open to other users; changed to {:o}",
                path.display(),
                mode & 0o700
            ),
            Err(e) => log::warn!(
                "{} is mode {mode:o}, open to other users, and cannot be changed: {e}",
                path.display()
            ),
        }
    }
    Ok(())
}

/// This process's effective uid, read from /proc (no FFI call to geteuid).
fn effective_uid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("Uid:"))?;
    line.split_whitespace().nth(2)?.parse().ok()
}

/// `$STATE_DIRECTORY` (systemd), else /var/lib/floatd when it can be used,
/// else ./floatd-state.
fn default_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("STATE_DIRECTORY") {
        // systemd may pass several, ':'-separated; the first is ours.
        let first = dir
            .to_string_lossy()
            .split(':')
            .next()
            .unwrap_or("")
            .to_string();
        if !first.is_empty() {
            return PathBuf::from(first);
        }
    }
    let system = PathBuf::from("/var/lib/floatd");
    let created = fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR_MODE)
        .create(&system)
        .is_ok();
    if created
        && fs::metadata(&system).is_ok_and(|m| !m.permissions().readonly())
        && tempfile_probe(&system)
    {
        return system;
    }
    let local = PathBuf::from("floatd-state");
    log::warn!(
        "no --state-dir and /var/lib/floatd is not writable: using {}",
        local.display()
    );
    local
}

fn tempfile_probe(dir: &Path) -> bool {
    let probe = dir.join(format!(".probe-{}", std::process::id()));
    let ok = fs::write(&probe, b"").is_ok();
    let _ = fs::remove_file(&probe);
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_directory_rule() {
        assert_eq!(judge_dir(0o40700, 1000, Some(1000)), DirVerdict::Fine);
        assert_eq!(judge_dir(0o40755, 1000, Some(1000)), DirVerdict::Close);
        assert_eq!(judge_dir(0o40750, 1000, Some(0)), DirVerdict::Close);
        assert_eq!(judge_dir(0o40700, 5, None), DirVerdict::Fine);
        assert!(matches!(
            judge_dir(0o41777, 0, Some(0)),
            DirVerdict::Refuse(why) if why.contains("sticky")
        ));
        assert!(matches!(
            judge_dir(0o40700, 1000, Some(1001)),
            DirVerdict::Refuse(why) if why.contains("uid 1000")
        ));
    }

    #[test]
    fn an_open_directory_and_its_files_are_made_private() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("state");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(dir.join("journal"), b"x").unwrap();
        fs::set_permissions(dir.join("journal"), fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(dir.join("report.log"), b"x").unwrap();
        fs::set_permissions(dir.join("report.log"), fs::Permissions::from_mode(0o600)).unwrap();
        make_private(&dir, effective_uid()).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("journal")), 0o600);
        assert_eq!(mode(&dir.join("report.log")), 0o600);
        assert!(effective_uid().is_some());
    }
}
