//! Admin access: the token that lets a remote operator make admin
//! requests, and what the server says about seats an operator removed.

use crate::ledger::{seat_id, Grant};
use crate::protocol::reply;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::path::Path;

/// Logs a removal and answers it: `OK removed=SEATS feature=F user=U
/// host=H` (one feature, user and host: a removal names one seat, or one
/// holder's seats of one feature), with `seat=ID` when it was one seat.
pub fn removed(grants: &[Grant], operator: SocketAddr) -> String {
    let first = grants.first().expect("a removal removes at least one seat");
    let seats: u64 = grants.iter().map(|g| u64::from(g.count)).sum();
    let ids: Vec<String> = grants.iter().map(|g| seat_id(&g.handle)).collect();
    log::info!(
        "operator at {operator} removed {seats} seat(s) of {} from {}@{} (seat {})",
        first.feature,
        first.user,
        first.host,
        ids.join(", ")
    );
    reply::ok()
        .field("removed", seats)
        .field("feature", &first.feature)
        .field("user", &first.user)
        .field("host", &first.host)
        .field_opt("seat", (grants.len() == 1).then(|| &ids[0]))
        .finish()
}

/// Compares a presented token with the expected one in constant time
/// (over digests, so the length does not leak either).
pub fn token_matches(expected: &str, presented: &str) -> bool {
    let a = Sha256::digest(expected.as_bytes());
    let b = Sha256::digest(presented.as_bytes());
    a.iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// Reads the admin token file: its first line, trimmed. An empty token is
/// refused, since it would let anybody in.
pub fn read_token(path: &Path) -> Result<String, String> {
    let text = crate::files::read_regular_text(path, crate::files::SMALL_FILE_BYTES)
        .map_err(|e| format!("admin token file {}: {e}", path.display()))?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.len() < 8 {
        return Err(format!(
            "admin token file {}: the token must be at least 8 characters",
            path.display()
        ));
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_match_exactly() {
        assert!(token_matches("s3cret-token", "s3cret-token"));
        assert!(!token_matches("s3cret-token", "s3cret-tokem"));
        assert!(!token_matches("s3cret-token", "s3cret"));
        assert!(!token_matches("s3cret-token", ""));
    }
}
