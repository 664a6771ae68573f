//! What every floatd process (server, witness) needs from its host, shared
//! so that the server and the failover code need nothing of each other:
//! the peer secret file and systemd notifications.

pub mod notify;

use std::path::Path;

/// Reads the peer link's shared secret: the file's first line, trimmed.
pub fn read_secret(path: &Path) -> Result<Vec<u8>, String> {
    let text = std::fs::read_to_string(path)
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
