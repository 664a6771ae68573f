//! The options file's roaming rules: who may roam a feature, for how long,
//! and how many of its seats may be out roaming at once. The licence says
//! whether a feature may roam at all (`roam=DAYS`); these rules only narrow
//! that.
//!
//! For a new roam of `count` seats for `days` days, in this order (the
//! first that refuses decides):
//!
//! 1. `EXCLUDE_ROAM feature TARGET` naming the requester: `ROAM_EXCLUDED`.
//! 2. `INCLUDE_ROAM feature TARGET` lines exist and none names the
//!    requester: `ROAM_EXCLUDED`.
//! 3. `ROAM_MAX_DAYS n feature`: `days > n` is `ROAM_TOO_LONG` (`n = 0`
//!    turns roaming of the feature off: `NOT_ROAMABLE`).
//! 4. `ROAM_MAX_COUNT n feature`: more than `n` seats of the feature out
//!    roaming is `TOO_MANY_ROAMING`.
//! 5. `ROAM_LOWWATER n feature`: `n` of the feature's licensed seats never
//!    roam; fewer left is `TOO_MANY_ROAMING`.
//!
//! Extending a roam checks 1 to 3 only: its seats are already out.

use super::{Options, PolicyDenial, Requester};
use crate::codes::Code;

/// A roaming limit without a target: it concerns the feature as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoamLimitKind {
    /// `ROAM_MAX_DAYS n feature`: the longest roam, in days.
    MaxDays,
    /// `ROAM_MAX_COUNT n feature`: seats out roaming at once.
    MaxCount,
    /// `ROAM_LOWWATER n feature`: licensed seats that never roam.
    LowWater,
}

impl RoamLimitKind {
    pub fn keyword(self) -> &'static str {
        match self {
            RoamLimitKind::MaxDays => "ROAM_MAX_DAYS",
            RoamLimitKind::MaxCount => "ROAM_MAX_COUNT",
            RoamLimitKind::LowWater => "ROAM_LOWWATER",
        }
    }
}

/// One `ROAM_MAX_DAYS`, `ROAM_MAX_COUNT` or `ROAM_LOWWATER` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoamLimit {
    pub kind: RoamLimitKind,
    pub n: u32,
    pub feature: String,
    /// Line number in the options file (1-based).
    pub line: usize,
}

impl Options {
    /// Every roaming limit, in file order.
    pub fn roam_limits(&self) -> &[RoamLimit] {
        &self.roam_limits
    }

    /// Whether `who` may roam `feature` for `days` days at all (rules 1 to
    /// 3): asked for a new roam and for an extension.
    pub fn admit_roam(&self, feature: &str, who: Requester, days: u32) -> Result<(), PolicyDenial> {
        if let Some(rules) = self.by_feature.get(feature) {
            if let Some(rule) = self.first_naming(&rules.exclude_roam, who) {
                return Err(self.deny(
                    Code::RoamExcluded,
                    rule,
                    format!(
                        "{} on {} may not roam {feature}: EXCLUDE_ROAM {}",
                        who.user, who.host, rule.target
                    ),
                ));
            }
            if let Some(first) = self.left_out_by(&rules.include_roam, who) {
                return Err(self.deny(
                    Code::RoamExcluded,
                    first,
                    format!(
                        "only the users, hosts and groups INCLUDE_ROAM names may roam \
                         {feature}, and {} on {} is not among them",
                        who.user, who.host
                    ),
                ));
            }
        }
        for limit in self.limits(feature, RoamLimitKind::MaxDays) {
            if limit.n == 0 {
                return Err(self.deny_at(
                    Code::NotRoamable,
                    limit.line,
                    format!("roaming {feature} is turned off: ROAM_MAX_DAYS 0"),
                ));
            }
            if days > limit.n {
                return Err(self.deny_at(
                    Code::RoamTooLong,
                    limit.line,
                    format!(
                        "{feature} may roam for at most {} day(s); {days} asked for",
                        limit.n
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Whether `count` more seats of `feature` may go roaming while
    /// `roaming` are out already, of `licensed` seats in all (`None`:
    /// uncounted) (rules 4 and 5).
    pub fn admit_roam_count(
        &self,
        feature: &str,
        count: u32,
        roaming: u64,
        licensed: Option<u64>,
    ) -> Result<(), PolicyDenial> {
        let after = roaming.saturating_add(count as u64);
        for limit in self.limits(feature, RoamLimitKind::MaxCount) {
            if after > limit.n as u64 {
                return Err(self.deny_at(
                    Code::TooManyRoaming,
                    limit.line,
                    format!(
                        "at most {} seat(s) of {feature} may roam at once; {roaming} are out \
                         roaming and {count} more asked for",
                        limit.n
                    ),
                ));
            }
        }
        let Some(licensed) = licensed else {
            return Ok(());
        };
        for limit in self.limits(feature, RoamLimitKind::LowWater) {
            let may_roam = licensed.saturating_sub(limit.n as u64);
            if after > may_roam {
                return Err(self.deny_at(
                    Code::TooManyRoaming,
                    limit.line,
                    format!(
                        "{} of the {licensed} seat(s) of {feature} never roam; {roaming} are out \
                         roaming and {count} more asked for",
                        limit.n
                    ),
                ));
            }
        }
        Ok(())
    }

    fn limits<'a>(
        &'a self,
        feature: &'a str,
        kind: RoamLimitKind,
    ) -> impl Iterator<Item = &'a RoamLimit> + 'a {
        self.roam_limits
            .iter()
            .filter(move |l| l.kind == kind && l.feature == feature)
    }
}

#[cfg(test)]
mod tests {
    use super::super::parse;
    use super::*;
    use std::path::Path;

    fn opts(text: &str) -> Options {
        parse(text, Path::new("/etc/floatd/site.opt")).unwrap_or_else(|e| panic!("{e}"))
    }

    fn who<'a>(user: &'a str, host: &'a str) -> Requester<'a> {
        Requester { user, host }
    }

    fn code(r: Result<(), PolicyDenial>) -> Option<(Code, String)> {
        r.err().map(|d| (d.code, d.rule))
    }

    #[test]
    fn parses_roam_statements_in_any_case() {
        let o = opts(
            "GROUP eng alice bob\n\
             include_roam cad group eng\n\
             EXCLUDE_ROAM cad host kiosk\n\
             ROAM_MAX_DAYS 7 cad   # a week\n\
             roam_max_count 2 cad\n\
             ROAM_LOWWATER 1 cad\n",
        );
        assert_eq!(o.rules().len(), 2);
        assert_eq!(o.roam_limits().len(), 3);
        assert_eq!(o.roam_limits()[0].kind, RoamLimitKind::MaxDays);
        assert_eq!((o.roam_limits()[2].n, o.roam_limits()[2].line), (1, 6));
        assert_eq!(o.features(), ["cad"]);
        assert!(opts("ROAM_MAX_DAYS 3 solver\n").features() == ["solver"]);
        assert!(!opts("ROAM_MAX_DAYS 3 solver\n").is_empty());
    }

    #[test]
    fn roam_statement_errors_say_where_and_what() {
        for (text, at, wanted) in [
            ("ROAM_MAX_DAYS x cad", 15, "expected a number of days"),
            ("ROAM_MAX_COUNT -1 cad", 16, "expected a number of seats"),
            ("ROAM_LOWWATER 2", 16, "expected a feature name"),
            (
                "ROAM_MAX_DAYS 2 cad user bob",
                21,
                "expected the end of the line",
            ),
            ("INCLUDE_ROAM cad team x", 18, "expected user, host, group"),
            (
                "EXCLUDE_ROAM cad group nobody",
                24,
                "group \"nobody\" is not defined",
            ),
            (
                "ROAMING 2 cad",
                1,
                "INCLUDE_ROAM, EXCLUDE_ROAM, ROAM_MAX_DAYS",
            ),
        ] {
            let e = parse(text, Path::new("x.opt")).unwrap_err();
            assert_eq!((e.line, e.column), (1, at), "{text}: {e}");
            assert!(e.message.contains(wanted), "{text}: {e}");
        }
    }

    #[test]
    fn exclude_roam_and_include_roam_decide_who_may_roam() {
        let o = opts(
            "GROUP eng alice bob\n\
             INCLUDE_ROAM cad group eng\n\
             EXCLUDE_ROAM cad user bob\n",
        );
        assert_eq!(o.admit_roam("cad", who("alice", "h"), 5), Ok(()));
        assert_eq!(
            code(o.admit_roam("cad", who("bob", "h"), 5)),
            Some((Code::RoamExcluded, "site.opt:3".into()))
        );
        assert_eq!(
            code(o.admit_roam("cad", who("carol", "h"), 5)),
            Some((Code::RoamExcluded, "site.opt:2".into()))
        );
        // Other features, and plain checkouts, are not concerned.
        assert_eq!(o.admit_roam("viewer", who("carol", "h"), 5), Ok(()));
        assert!(o.admit("cad", who("carol", "h"), 1, &NoUse).is_ok());
    }

    #[test]
    fn max_days_caps_the_roam_and_zero_turns_roaming_off() {
        let o = opts("ROAM_MAX_DAYS 7 cad\nROAM_MAX_DAYS 0 viewer\n");
        assert_eq!(o.admit_roam("cad", who("a", "h"), 7), Ok(()));
        assert_eq!(
            code(o.admit_roam("cad", who("a", "h"), 8)),
            Some((Code::RoamTooLong, "site.opt:1".into()))
        );
        assert_eq!(
            code(o.admit_roam("viewer", who("a", "h"), 1)),
            Some((Code::NotRoamable, "site.opt:2".into()))
        );
    }

    #[test]
    fn max_count_and_low_water_cap_the_seats_out_roaming() {
        let o = opts("ROAM_MAX_COUNT 3 cad\nROAM_LOWWATER 4 cad\n");
        assert_eq!(o.admit_roam_count("cad", 1, 2, Some(10)), Ok(()));
        assert_eq!(
            code(o.admit_roam_count("cad", 2, 2, Some(10))),
            Some((Code::TooManyRoaming, "site.opt:1".into()))
        );
        // 10 seats, 4 never roam: 6 may, but MAX_COUNT says 3 first.
        assert_eq!(
            code(o.admit_roam_count("cad", 1, 2, Some(6))),
            Some((Code::TooManyRoaming, "site.opt:2".into()))
        );
        assert_eq!(o.admit_roam_count("cad", 1, 1, Some(6)), Ok(()));
        // Uncounted: the low-water mark has nothing to count against.
        assert_eq!(o.admit_roam_count("cad", 1, 2, None), Ok(()));
        assert_eq!(
            code(o.admit_roam_count("cad", 1, 0, Some(4))),
            Some((Code::TooManyRoaming, "site.opt:2".into()))
        );
    }

    struct NoUse;
    impl super::super::Usage for NoUse {
        fn by_user(&self, _: &str) -> u64 {
            0
        }
        fn by_host(&self, _: &str) -> u64 {
            0
        }
    }
}
