//! Reading the files an operator names (licences, options, keys, secrets,
//! the config) so that no file can hang or swamp the server.
//!
//! A FIFO blocks `open` until somebody writes to it, and `/dev/zero` never
//! ends: read on the event loop at a reread, either would stop the server.
//! So a file is opened non-blocking, checked with `fstat` to be a regular
//! file (symbolic links to one are fine), refused beyond a size limit
//! before anything is read, and read only up to that limit.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// Mode of every file floatd writes to its state directory: they hold
/// handles (bearer secrets) and who used what.
pub const PRIVATE_FILE_MODE: u32 = 0o600;
/// Mode of the state directory.
pub const PRIVATE_DIR_MODE: u32 = 0o700;
/// The largest secret, token or key file read.
pub const SMALL_FILE_BYTES: u64 = 64 << 10;

/// Why a file could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// Opening or reading failed (missing, no permission...).
    Io(io::Error),
    /// Not a regular file; names what it is.
    NotRegular(&'static str),
    /// Larger than the limit for its kind.
    TooLarge { size: u64, limit: u64 },
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "cannot read: {e}"),
            ReadError::NotRegular(kind) => {
                write!(f, "is {kind}, not a regular file; refused")
            }
            ReadError::TooLarge { size, limit } => {
                write!(
                    f,
                    "file is {size} bytes; the limit is {limit} bytes ({})",
                    human(*limit)
                )
            }
        }
    }
}

impl std::error::Error for ReadError {}

fn human(bytes: u64) -> String {
    if bytes >= 1 << 20 && bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else if bytes >= 1 << 10 && bytes.is_multiple_of(1 << 10) {
        format!("{} KiB", bytes >> 10)
    } else {
        format!("{bytes} bytes")
    }
}

/// Opens `path` for reading without blocking, and only if it is a regular
/// file of at most `limit` bytes.
pub fn open_regular(path: &Path, limit: u64) -> Result<File, ReadError> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(ReadError::Io)?;
    let meta = file.metadata().map_err(ReadError::Io)?;
    let kind = meta.file_type();
    if !kind.is_file() {
        return Err(ReadError::NotRegular(if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a FIFO (named pipe)"
        } else if kind.is_char_device() {
            "a character device"
        } else if kind.is_block_device() {
            "a block device"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "not a file"
        }));
    }
    if meta.len() > limit {
        return Err(ReadError::TooLarge {
            size: meta.len(),
            limit,
        });
    }
    Ok(file)
}

/// Reads a regular file of at most `limit` bytes (see the module docs).
pub fn read_regular(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let file = open_regular(path, limit)?;
    let mut bytes = Vec::new();
    // The file may grow after fstat: never read past the limit.
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge {
            size: bytes.len() as u64,
            limit,
        });
    }
    Ok(bytes)
}

/// [`read_regular`], as UTF-8 text.
pub fn read_regular_text(path: &Path, limit: u64) -> Result<String, String> {
    let bytes = read_regular(path, limit).map_err(|e| e.to_string())?;
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "not UTF-8 text (invalid byte at offset {})",
            e.utf8_error().valid_up_to()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_files_up_to_the_limit_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"hello").unwrap();
        assert_eq!(read_regular(&path, 5).unwrap(), b"hello");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        assert_eq!(read_regular_text(&link, 5).unwrap(), "hello");
        let err = read_regular(&path, 4).unwrap_err();
        assert_eq!(
            err.to_string(),
            "file is 5 bytes; the limit is 4 bytes (4 bytes)"
        );
        std::fs::write(&path, [0xff]).unwrap();
        assert!(read_regular_text(&path, 5).unwrap_err().contains("UTF-8"));
    }

    #[test]
    fn devices_fifos_and_directories_are_refused_without_blocking() {
        let err = read_regular(Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert_eq!(
            err.to_string(),
            "is a character device, not a regular file; refused"
        );
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            read_regular(dir.path(), 10),
            Err(ReadError::NotRegular("a directory"))
        ));
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        // A blocking open would wait here for a writer for ever.
        assert!(matches!(
            read_regular(&fifo, 10),
            Err(ReadError::NotRegular("a FIFO (named pipe)"))
        ));
        assert!(matches!(
            read_regular(&dir.path().join("missing"), 10),
            Err(ReadError::Io(e)) if e.kind() == io::ErrorKind::NotFound
        ));
    }
}
