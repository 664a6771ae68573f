//! What every floatd process (server, witness) needs from its host, shared
//! so that the server and the failover code need nothing of each other:
//! the peer secret file, systemd notifications, randomness, and how a
//! start-up failure is told (exit status, a port already in use).

pub mod notify;

use std::path::Path;

/// Reads the peer link's shared secret: the file's first line, trimmed.
pub fn read_secret(path: &Path) -> Result<Vec<u8>, String> {
    let text = crate::files::read_regular_text(path, crate::files::SMALL_FILE_BYTES)
        .map_err(|e| format!("peer secret file {}: {e}", path.display()))?;
    let secret = text.lines().next().unwrap_or("").trim();
    if secret.len() < 16 {
        return Err(format!(
            "peer secret file {}: the secret must be at least 16 characters (e.g. `head -c 32 /dev/urandom | base64`)",
            path.display()
        ));
    }
    Ok(secret.as_bytes().to_vec())
}

/// Handle ids from the operating system's randomness, fetched in bulk (one
/// `getrandom` call per 32 handles instead of one per grant).
pub struct OsEntropy {
    pool: [u8; 12 * 32],
    used: usize,
}

impl OsEntropy {
    pub fn new() -> OsEntropy {
        OsEntropy {
            pool: [0; 12 * 32],
            used: 12 * 32,
        }
    }
}

impl Default for OsEntropy {
    fn default() -> OsEntropy {
        OsEntropy::new()
    }
}

impl crate::ledger::Entropy for OsEntropy {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), String> {
        if buf.len() > self.pool.len() {
            return getrandom::fill(buf).map_err(|e| e.to_string());
        }
        if self.used + buf.len() > self.pool.len() {
            getrandom::fill(&mut self.pool).map_err(|e| e.to_string())?;
            self.used = 0;
        }
        buf.copy_from_slice(&self.pool[self.used..self.used + buf.len()]);
        self.used += buf.len();
        Ok(())
    }
}

/// A fresh random 32-byte key.
pub fn random_key() -> std::io::Result<[u8; 32]> {
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(std::io::Error::other)?;
    Ok(key)
}

/// Exit status of a server that stopped because its configuration cannot
/// work (flags, config file, licences, options, secrets): EX_CONFIG of
/// sysexits.h. The systemd units do not restart it (`RestartPreventExitStatus=`).
pub const EXIT_CONFIG: i32 = 78;

/// Why `run` failed.
#[derive(Debug)]
pub enum RunError {
    /// The configuration cannot work: restarting will not help.
    Config(String),
    /// Anything else (state directory, ports, journal, I/O).
    Other(String),
}

impl From<String> for RunError {
    fn from(e: String) -> RunError {
        RunError::Other(e)
    }
}

/// Why a port could not be bound, and for "address in use" which port and
/// what to do: another floatd (or something else) holds it, or `flag`
/// picks another.
pub fn listen_error(what: &str, addr: &str, e: &std::io::Error, flag: &str) -> String {
    if e.kind() != std::io::ErrorKind::AddrInUse {
        return format!("cannot listen {what} on {addr}: {e}");
    }
    let port = addr.rsplit_once(':').map_or(addr, |(_, p)| p);
    format!(
        "cannot listen {what} on {addr}: port {port} is already in use: another floatd may \
         be running (`ss -ltnp 'sport = :{port}'` shows what holds it), or choose another port \
         with {flag}"
    )
}
