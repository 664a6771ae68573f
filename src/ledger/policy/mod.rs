//! Operator policy from the options file: who may check out what.
//!
//! The ledger asks two questions of the policy before a grant: may this
//! requester have these seats at all ([`Options::admit`]), and how many of
//! the free seats are reserved for somebody else
//! ([`Options::reserved_for_others`]). Empty options admit everybody and
//! reserve nothing.
//!
//! The file format and the exact meaning of each rule are in
//! `docs/OPTIONS.md`; [`parse()`] reads the text (the server reads the
//! file, so the ledger stays free of I/O). In short, for one feature:
//!
//! 1. `EXCLUDE` naming the requester denies (`EXCLUDED`), whatever else
//!    the file says.
//! 2. If the feature has any `INCLUDE` lines, a requester none of them
//!    names is denied (`NOT_INCLUDED`).
//! 3. Each `MAX n` naming the requester caps the seats its target (the
//!    user, the host, or all members of the group together) holds, this
//!    checkout included (`MAX_REACHED`).
//! 4. Each `RESERVE n` naming somebody else keeps `n` seats free for that
//!    target, less the seats the target already holds (`RESERVED`).
//!
//! Roaming has rules of its own ([`roam`](mod@roam)): `INCLUDE_ROAM`,
//! `EXCLUDE_ROAM`, `ROAM_MAX_DAYS`, `ROAM_MAX_COUNT` and `ROAM_LOWWATER`.
//!
//! A user matches `user NAME` and every `group` that lists the user; a
//! host matches `host NAME` and every `host_group` that lists it. Names
//! are compared exactly (case matters).

mod parse;
mod roam;
#[cfg(test)]
mod tests;

pub use parse::{parse, OptionsError};
pub use roam::{RoamLimit, RoamLimitKind};

use crate::codes::Code;
use std::collections::{BTreeSet, HashMap};
use std::fmt;

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

/// What a rule names: `user|host|group|host_group NAME`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TargetKind {
    User,
    Host,
    /// A `GROUP` of users.
    Group,
    /// A `HOST_GROUP` of hosts.
    HostGroup,
}

impl TargetKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetKind::User => "user",
            TargetKind::Host => "host",
            TargetKind::Group => "group",
            TargetKind::HostGroup => "host_group",
        }
    }
}

/// The user, host or group a rule applies to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Target {
    pub kind: TargetKind,
    pub name: String,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind.as_str(), self.name)
    }
}

/// What a rule does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RuleKind {
    Include,
    Exclude,
    Max(u32),
    Reserve(u32),
    /// `INCLUDE_ROAM`: only those named may roam the feature.
    IncludeRoam,
    /// `EXCLUDE_ROAM`: those named may not roam the feature.
    ExcludeRoam,
}

/// One rule line of the options file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub kind: RuleKind,
    pub feature: String,
    pub target: Target,
    /// Line number in the options file (1-based).
    pub line: usize,
}

/// The rules of one feature, as indexes into `Options::rules`, in file order.
#[derive(Clone, Debug, Default)]
struct FeatureRules {
    include: Vec<usize>,
    exclude: Vec<usize>,
    max: Vec<usize>,
    reserve: Vec<usize>,
    include_roam: Vec<usize>,
    exclude_roam: Vec<usize>,
}

/// Parsed options (empty by default: everybody admitted, nothing reserved).
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The options file's name, as rules are cited (`floatd.opt:12`).
    source: String,
    groups: HashMap<String, BTreeSet<String>>,
    host_groups: HashMap<String, BTreeSet<String>>,
    rules: Vec<Rule>,
    by_feature: HashMap<String, FeatureRules>,
    /// `ROAM_MAX_DAYS`, `ROAM_MAX_COUNT` and `ROAM_LOWWATER` lines, in file order.
    roam_limits: Vec<RoamLimit>,
}

impl Options {
    /// Builds options from parsed parts (the parser checked that every
    /// group a rule names exists).
    fn build(
        source: String,
        groups: HashMap<String, BTreeSet<String>>,
        host_groups: HashMap<String, BTreeSet<String>>,
        rules: Vec<Rule>,
        roam_limits: Vec<RoamLimit>,
    ) -> Options {
        let mut by_feature: HashMap<String, FeatureRules> = HashMap::new();
        for (i, rule) in rules.iter().enumerate() {
            let entry = by_feature.entry(rule.feature.clone()).or_default();
            match rule.kind {
                RuleKind::Include => entry.include.push(i),
                RuleKind::Exclude => entry.exclude.push(i),
                RuleKind::Max(_) => entry.max.push(i),
                RuleKind::Reserve(_) => entry.reserve.push(i),
                RuleKind::IncludeRoam => entry.include_roam.push(i),
                RuleKind::ExcludeRoam => entry.exclude_roam.push(i),
            }
        }
        for limit in &roam_limits {
            by_feature.entry(limit.feature.clone()).or_default();
        }
        Options {
            source,
            groups,
            host_groups,
            rules,
            by_feature,
            roam_limits,
        }
    }

    /// True when there are no rules (groups alone change nothing).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty() && self.roam_limits.is_empty()
    }

    /// Every rule, in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Number of `GROUP` and `HOST_GROUP` names defined.
    pub fn group_count(&self) -> usize {
        self.groups.len() + self.host_groups.len()
    }

    /// The features the rules name, sorted (for warnings about features
    /// no licence serves).
    pub fn features(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.by_feature.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// How a rule is cited in denials and the report log: `file:line`.
    pub fn cite(&self, rule: &Rule) -> String {
        format!("{}:{}", self.source, rule.line)
    }

    /// A denial citing `rule`, in the message too (clients that show only
    /// the message still point the user at the rule).
    fn deny(&self, code: Code, rule: &Rule, message: String) -> PolicyDenial {
        self.deny_at(code, rule.line, message)
    }

    /// A denial citing the options file's line `line`.
    fn deny_at(&self, code: Code, line: usize, message: String) -> PolicyDenial {
        let cited = format!("{}:{line}", self.source);
        PolicyDenial {
            code,
            message: format!("{message} ({cited})"),
            rule: cited,
        }
    }

    /// Whether `target` names the requester.
    pub fn matches(&self, target: &Target, who: Requester) -> bool {
        match target.kind {
            TargetKind::User => target.name == who.user,
            TargetKind::Host => target.name == who.host,
            TargetKind::Group => self
                .groups
                .get(&target.name)
                .is_some_and(|m| m.contains(who.user)),
            TargetKind::HostGroup => self
                .host_groups
                .get(&target.name)
                .is_some_and(|m| m.contains(who.host)),
        }
    }

    /// The first of `rules` (indexes, in file order) that names `who`.
    fn first_naming(&self, rules: &[usize], who: Requester) -> Option<&Rule> {
        rules
            .iter()
            .map(|&i| &self.rules[i])
            .find(|r| self.matches(&r.target, who))
    }

    /// For an include list: its first rule when it has rules and none of
    /// them names `who` (the rule a refusal cites).
    fn left_out_by(&self, rules: &[usize], who: Requester) -> Option<&Rule> {
        let first = &self.rules[*rules.first()?];
        self.first_naming(rules, who).is_none().then_some(first)
    }

    /// Seats of the feature `usage` describes that `target` holds: a
    /// user's or host's own, or the sum over a group's members.
    pub fn held_by(&self, target: &Target, usage: &dyn Usage) -> u64 {
        let sum = |members: Option<&BTreeSet<String>>, count: &dyn Fn(&str) -> u64| {
            members.map_or(0, |m| {
                m.iter()
                    .map(|name| count(name))
                    .fold(0u64, u64::saturating_add)
            })
        };
        match target.kind {
            TargetKind::User => usage.by_user(&target.name),
            TargetKind::Host => usage.by_host(&target.name),
            TargetKind::Group => sum(self.groups.get(&target.name), &|u| usage.by_user(u)),
            TargetKind::HostGroup => sum(self.host_groups.get(&target.name), &|h| usage.by_host(h)),
        }
    }

    /// Checks EXCLUDE, INCLUDE and MAX rules for a checkout of `count`
    /// seats of `feature`, in that order.
    pub fn admit(
        &self,
        feature: &str,
        who: Requester,
        count: u32,
        usage: &dyn Usage,
    ) -> Result<(), PolicyDenial> {
        let Some(rules) = self.by_feature.get(feature) else {
            return Ok(());
        };
        if let Some(rule) = self.first_naming(&rules.exclude, who) {
            return Err(self.deny(
                Code::Excluded,
                rule,
                format!(
                    "{} on {} may not use {feature}: EXCLUDE {}",
                    who.user, who.host, rule.target
                ),
            ));
        }
        if let Some(first) = self.left_out_by(&rules.include, who) {
            return Err(self.deny(
                Code::NotIncluded,
                first,
                format!(
                    "{feature} is only for the users, hosts and groups its INCLUDE lines name, \
                     and {} on {} is not among them",
                    who.user, who.host
                ),
            ));
        }
        for &i in &rules.max {
            let rule = &self.rules[i];
            let RuleKind::Max(limit) = rule.kind else {
                continue;
            };
            if !self.matches(&rule.target, who) {
                continue;
            }
            let held = self.held_by(&rule.target, usage);
            if held.saturating_add(count as u64) > limit as u64 {
                return Err(self.deny(
                    Code::MaxReached,
                    rule,
                    format!(
                        "{} may hold at most {limit} seat(s) of {feature} and holds {held}; \
                         {count} more requested",
                        rule.target
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Seats of `feature` that RESERVE rules keep for others than `who`
    /// and that those others do not hold yet.
    pub fn reserved_for_others(&self, feature: &str, who: Requester, usage: &dyn Usage) -> u64 {
        self.reservations_for_others(feature, who, usage)
            .map(|(_, left)| left)
            .fold(0u64, u64::saturating_add)
    }

    /// The first RESERVE rule (in file order) that keeps seats of
    /// `feature` for others than `who`, as `file:line`: the rule a
    /// `RESERVED` denial cites.
    pub fn reserving_rule(
        &self,
        feature: &str,
        who: Requester,
        usage: &dyn Usage,
    ) -> Option<String> {
        self.reservations_for_others(feature, who, usage)
            .find(|(_, left)| *left > 0)
            .map(|(rule, _)| self.cite(rule))
    }

    /// RESERVE rules of `feature` not naming `who`, each with the seats it
    /// still keeps free (its count less what its target holds).
    fn reservations_for_others<'a>(
        &'a self,
        feature: &str,
        who: Requester<'a>,
        usage: &'a dyn Usage,
    ) -> impl Iterator<Item = (&'a Rule, u64)> + 'a {
        self.by_feature
            .get(feature)
            .map(|r| r.reserve.as_slice())
            .unwrap_or(&[])
            .iter()
            .map(|&i| &self.rules[i])
            .filter(move |rule| !self.matches(&rule.target, who))
            .map(move |rule| {
                let RuleKind::Reserve(n) = rule.kind else {
                    return (rule, 0);
                };
                let left = (n as u64).saturating_sub(self.held_by(&rule.target, usage));
                (rule, left)
            })
    }

    /// Whether a new checkout by `who` of `count` seats, taking `needed`
    /// free seats of `feature`, may go ahead of the requesters waiting in
    /// the feature's queue. Only when it leaves none of them fewer seats
    /// it could use: when every seat it takes is one that reservations not
    /// naming the waiter held back, and that the checkout uses up. Without
    /// RESERVE rules for the feature nobody overtakes (strict FIFO).
    pub fn may_overtake<'w>(
        &self,
        feature: &str,
        who: Requester,
        count: u32,
        needed: u64,
        usage: &dyn Usage,
        mut waiters: impl Iterator<Item = Requester<'w>>,
    ) -> bool {
        let reserves = self.by_feature.get(feature).map_or(0, |r| r.reserve.len());
        if reserves == 0 {
            return false;
        }
        let after = Plus {
            base: usage,
            who,
            count: count as u64,
        };
        waiters.all(|w| {
            let before = self.reserved_for_others(feature, w, usage);
            let later = self.reserved_for_others(feature, w, &after);
            before.saturating_sub(later) >= needed
        })
    }

    /// A one-line summary for the log.
    pub fn summary(&self) -> String {
        format!(
            "{} rule(s) for {} feature(s), {} group(s)",
            self.rules.len() + self.roam_limits.len(),
            self.by_feature.len(),
            self.group_count()
        )
    }
}

/// Usage as it would be after `who` checked out `count` more seats.
struct Plus<'a> {
    base: &'a dyn Usage,
    who: Requester<'a>,
    count: u64,
}

impl Usage for Plus<'_> {
    fn by_user(&self, user: &str) -> u64 {
        let extra = if user == self.who.user { self.count } else { 0 };
        self.base.by_user(user).saturating_add(extra)
    }
    fn by_host(&self, host: &str) -> u64 {
        let extra = if host == self.who.host { self.count } else { 0 };
        self.base.by_host(host).saturating_add(extra)
    }
}
