//! Operator policy from the options file: who may check out what.
//!
//! The ledger asks two questions of the policy before a grant: may this
//! requester have these seats at all ([`Options::admit`]), and how many of
//! the free seats are reserved for somebody else
//! ([`Options::reserved_for_others`]). Empty options admit everybody and
//! reserve nothing.

use crate::codes::Code;

/// Who is asking.
#[derive(Clone, Copy, Debug)]
pub struct Requester<'a> {
    pub user: &'a str,
    pub host: &'a str,
}

/// Seats of one feature currently held, by user and by host.
pub trait Usage {
    fn by_user(&self, user: &str) -> u64;
    fn by_host(&self, host: &str) -> u64;
}

/// A checkout refused by an options rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyDenial {
    pub code: Code,
    /// The rule as `file:line`.
    pub rule: String,
    pub message: String,
}

/// Parsed options (empty by default).
#[derive(Clone, Debug, Default)]
pub struct Options {}

impl Options {
    /// Checks INCLUDE, EXCLUDE and MAX rules for a checkout of `count`
    /// seats of `feature`.
    pub fn admit(
        &self,
        _feature: &str,
        _who: Requester,
        _count: u32,
        _usage: &dyn Usage,
    ) -> Result<(), PolicyDenial> {
        Ok(())
    }

    /// Seats of `feature` that RESERVE rules keep for others than `who`
    /// and that those others do not hold yet.
    pub fn reserved_for_others(&self, _feature: &str, _who: Requester, _usage: &dyn Usage) -> u64 {
        0
    }
}
