//! What `--version` says: the release, the git commit it was built from
//! (when the build could tell), and the client protocol it speaks.

/// The git commit the build was made from (short hash),
/// if build.rs could ask git.
pub const GIT_COMMIT: Option<&str> = option_env!("FLOATD_GIT_COMMIT");

/// `PROGRAM VERSION (commit HASH, protocol N)`.
pub fn version_line(program: &str) -> String {
    let commit = GIT_COMMIT
        .filter(|c| !c.is_empty())
        .map(|c| format!("commit {c}, "))
        .unwrap_or_default();
    format!(
        "{program} {} ({commit}protocol {})",
        env!("CARGO_PKG_VERSION"),
        crate::protocol::PROTOCOL_VERSION
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_program_version_and_protocol() {
        let line = super::version_line("floatd");
        assert!(line.starts_with(concat!("floatd ", env!("CARGO_PKG_VERSION"), " (")));
        assert!(line.ends_with("protocol 1)"), "{line}");
    }
}
