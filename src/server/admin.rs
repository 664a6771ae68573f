//! Admin access: the token that lets a remote operator make admin requests.

use sha2::{Digest, Sha256};
use std::path::Path;

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
