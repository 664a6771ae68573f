//! The numbers of the C API: result codes, seat states and event kinds.
//!
//! Result codes are stable: a code never changes meaning once shipped, and
//! new conditions get new codes. Success is 0, every failure is negative;
//! there is one code per condition an application must tell apart.
#![forbid(unsafe_code)]

use floatd::client::ClientError;
use floatd::codes::Code;
use std::ffi::CStr;

/// Success.
pub const FLOATD_OK: i32 = 0;
/// A NULL pointer, a string that is not UTF-8, or a bad option, server
/// list, version or count.
pub const FLOATD_E_BAD_ARGUMENT: i32 = -1;
/// No server could be reached, or none was active, within the failover
/// timeout; or every server refused the connection (then at once).
pub const FLOATD_E_UNREACHABLE: i32 = -2;
/// The wait for a seat (`wait_ms`) ended without one.
pub const FLOATD_E_TIMEOUT: i32 = -3;
/// All seats are in use (or promised to clients waiting for one).
pub const FLOATD_E_NO_SEATS: i32 = -4;
/// No licence for the feature is served.
pub const FLOATD_E_NO_SUCH_FEATURE: i32 = -5;
/// The feature is served, but not at the version asked for or newer.
pub const FLOATD_E_NO_VERSION: i32 = -6;
/// Every licence that would serve the checkout has expired.
pub const FLOATD_E_LICENCE_EXPIRED: i32 = -7;
/// The free seats are reserved for others by the operator.
pub const FLOATD_E_RESERVED: i32 = -8;
/// More seats than the licence will ever hold.
pub const FLOATD_E_COUNT_TOO_LARGE: i32 = -9;
/// The operator caps this user, host or group, and the cap is reached.
pub const FLOATD_E_MAX_REACHED: i32 = -10;
/// The operator excludes this user, host or group from the feature.
pub const FLOATD_E_EXCLUDED: i32 = -11;
/// The operator allows only a list of users, hosts or groups, without this one.
pub const FLOATD_E_NOT_INCLUDED: i32 = -12;
/// The seat is no longer held (removed by an administrator, expired on the
/// server, or its licence gone).
pub const FLOATD_E_SEAT_LOST: i32 = -13;
/// The backup took over without being in sync and grants only seats
/// already out, for one lease period: try again later.
pub const FLOATD_E_RECOVERING: i32 = -14;
/// The backup has served alone longer than the licence allows.
pub const FLOATD_E_BACKUP_EXPIRED: i32 = -15;
/// A blocking call made from inside the event callback, where it would
/// deadlock: nothing was done.
pub const FLOATD_E_WOULD_BLOCK: i32 = -16;
/// floatd_client_cancel interrupted the call.
pub const FLOATD_E_CANCELLED: i32 = -17;
/// A server answered with something this library does not understand.
pub const FLOATD_E_PROTOCOL: i32 = -18;
/// The server failed (cannot record seats, overloaded) or refused with a
/// reason this library does not know.
pub const FLOATD_E_SERVER: i32 = -19;
/// A fault inside the library itself (a bug): the message says where.
pub const FLOATD_E_INTERNAL: i32 = -20;
/// The feature's licence does not let its seats roam (no `roam=`), or the
/// operator turned roaming of it off.
pub const FLOATD_E_NOT_ROAMABLE: i32 = -21;
/// A longer roam than the licence, the operator or the licence's expiry
/// allows.
pub const FLOATD_E_ROAM_TOO_LONG: i32 = -22;
/// As many seats of the feature are out roaming as the licence or the
/// operator allows.
pub const FLOATD_E_TOO_MANY_ROAMING: i32 = -23;
/// The operator keeps this user, host or group from roaming the feature.
pub const FLOATD_E_ROAM_EXCLUDED: i32 = -24;
/// No kept roam token lets the feature run on this machine now (none
/// kept, the roam ended, made for another machine, or not signed by the
/// key pinned for its server pair); or no kept roam matches.
pub const FLOATD_E_NO_ROAM: i32 = -25;
/// The server's roam token cannot be used here: it is signed by another
/// key than the one pinned for the server pair. The roam was handed back.
pub const FLOATD_E_ROAM_KEY: i32 = -26;
/// The roam store (the directory of kept tokens) cannot be read or written.
pub const FLOATD_E_ROAM_STORE: i32 = -27;
/// The other server of the pair is catching up or not acknowledging, so
/// no roam is granted or extended now: try again shortly.
pub const FLOATD_E_ROAM_UNAVAILABLE: i32 = -28;

/// The seat is held: its lease was renewed in time.
pub const FLOATD_SEAT_HELD: i32 = 1;
/// The connection was lost; the library is reclaiming the seat on the
/// active server. Its lease still runs.
pub const FLOATD_SEAT_RECONNECTING: i32 = 2;
/// The lease ran out before the library could renew it; it keeps trying,
/// and the seat is held again if that succeeds.
pub const FLOATD_SEAT_EXPIRED: i32 = 3;
/// A server refused the seat: it will not come back.
pub const FLOATD_SEAT_LOST: i32 = 4;
/// Returned to the server when the client was freed.
pub const FLOATD_SEAT_RETURNED: i32 = 5;

/// A call has waited 2 s and is still trying `server`.
pub const FLOATD_EVENT_TRYING: i32 = 1;
/// The connection to `server` was lost while seats were held; the
/// library is looking for the active server. `detail` says why.
pub const FLOATD_EVENT_RECONNECTING: i32 = 2;
/// Now served by `server`, another server than before (`detail`).
pub const FLOATD_EVENT_FAILED_OVER: i32 = 3;
/// The seat is held again, on `server`, after a reconnect or an expiry.
pub const FLOATD_EVENT_RECOVERED: i32 = 4;
/// The seat's lease ran out before the library could renew it.
pub const FLOATD_EVENT_EXPIRED: i32 = 5;
/// A server refused the seat; `detail` says why.
pub const FLOATD_EVENT_LOST: i32 = 6;

/// A failed call: its code and the message `floatd_last_error` returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub code: i32,
    pub message: String,
}

impl Failure {
    pub fn new(code: i32, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
        }
    }

    pub fn bad_argument(message: impl Into<String>) -> Failure {
        Failure::new(FLOATD_E_BAD_ARGUMENT, message)
    }
}

impl From<ClientError> for Failure {
    fn from(error: ClientError) -> Failure {
        let code = match &error {
            ClientError::Denied { code, .. } => code.map_or(FLOATD_E_SERVER, code_of_refusal),
            ClientError::Unreachable(_) => FLOATD_E_UNREACHABLE,
            ClientError::Protocol(_) => FLOATD_E_PROTOCOL,
            ClientError::Timeout => FLOATD_E_TIMEOUT,
            ClientError::Cancelled => FLOATD_E_CANCELLED,
            ClientError::Reentrant => FLOATD_E_WOULD_BLOCK,
            _ => FLOATD_E_INTERNAL,
        };
        Failure::new(code, error.to_string())
    }
}

/// The result code for a server's refusal.
pub fn code_of_refusal(code: Code) -> i32 {
    match code {
        Code::BadRequest => FLOATD_E_BAD_ARGUMENT,
        Code::NoSuchFeature => FLOATD_E_NO_SUCH_FEATURE,
        Code::NoVersion => FLOATD_E_NO_VERSION,
        Code::Expired => FLOATD_E_LICENCE_EXPIRED,
        Code::NoSeats => FLOATD_E_NO_SEATS,
        Code::Reserved => FLOATD_E_RESERVED,
        Code::CountTooLarge => FLOATD_E_COUNT_TOO_LARGE,
        // max_checkouts_per_client: an operator's cap too.
        Code::MaxReached | Code::ClientLimit => FLOATD_E_MAX_REACHED,
        Code::Excluded => FLOATD_E_EXCLUDED,
        Code::NotIncluded => FLOATD_E_NOT_INCLUDED,
        Code::UnknownHandle | Code::BadHandle | Code::LicenceGone => FLOATD_E_SEAT_LOST,
        Code::Recovering => FLOATD_E_RECOVERING,
        Code::BackupExpired => FLOATD_E_BACKUP_EXPIRED,
        Code::NotRoamable => FLOATD_E_NOT_ROAMABLE,
        Code::RoamTooLong => FLOATD_E_ROAM_TOO_LONG,
        Code::TooManyRoaming => FLOATD_E_TOO_MANY_ROAMING,
        Code::RoamExcluded => FLOATD_E_ROAM_EXCLUDED,
        Code::RoamUnavailable => FLOATD_E_ROAM_UNAVAILABLE,
        // The library walks on to the active server for these; they reach
        // the application only when no server was active in time.
        Code::Standby | Code::NotActive | Code::ShuttingDown => FLOATD_E_UNREACHABLE,
        Code::LineTooLong | Code::NotGreeted | Code::ProtocolVersion => FLOATD_E_PROTOCOL,
        Code::AdminRequired
        | Code::AuthLimit
        | Code::NoBackup
        | Code::BackupAlive
        | Code::Busy
        | Code::JournalFailed
        | Code::Internal => FLOATD_E_SERVER,
    }
}

/// Every result code with its description, for `floatd_strerror`, the
/// documentation and the Python package.
pub const RESULTS: &[(i32, &str, &CStr)] = &[
    (FLOATD_OK, "FLOATD_OK", c"success"),
    (
        FLOATD_E_BAD_ARGUMENT,
        "FLOATD_E_BAD_ARGUMENT",
        c"bad argument",
    ),
    (
        FLOATD_E_UNREACHABLE,
        "FLOATD_E_UNREACHABLE",
        c"no licence server reachable",
    ),
    (
        FLOATD_E_TIMEOUT,
        "FLOATD_E_TIMEOUT",
        c"timed out waiting for a seat",
    ),
    (
        FLOATD_E_NO_SEATS,
        "FLOATD_E_NO_SEATS",
        c"all seats are in use",
    ),
    (
        FLOATD_E_NO_SUCH_FEATURE,
        "FLOATD_E_NO_SUCH_FEATURE",
        c"no licence for this feature",
    ),
    (
        FLOATD_E_NO_VERSION,
        "FLOATD_E_NO_VERSION",
        c"no licence for this version of the feature",
    ),
    (
        FLOATD_E_LICENCE_EXPIRED,
        "FLOATD_E_LICENCE_EXPIRED",
        c"the licence has expired",
    ),
    (
        FLOATD_E_RESERVED,
        "FLOATD_E_RESERVED",
        c"the free seats are reserved for others",
    ),
    (
        FLOATD_E_COUNT_TOO_LARGE,
        "FLOATD_E_COUNT_TOO_LARGE",
        c"more seats than the licence holds",
    ),
    (
        FLOATD_E_MAX_REACHED,
        "FLOATD_E_MAX_REACHED",
        c"the operator's limit for this user, host or group is reached",
    ),
    (
        FLOATD_E_EXCLUDED,
        "FLOATD_E_EXCLUDED",
        c"the operator excludes this user, host or group",
    ),
    (
        FLOATD_E_NOT_INCLUDED,
        "FLOATD_E_NOT_INCLUDED",
        c"the operator does not include this user, host or group",
    ),
    (
        FLOATD_E_SEAT_LOST,
        "FLOATD_E_SEAT_LOST",
        c"the seat is no longer held",
    ),
    (
        FLOATD_E_RECOVERING,
        "FLOATD_E_RECOVERING",
        c"the server is recovering after a failover; try again later",
    ),
    (
        FLOATD_E_BACKUP_EXPIRED,
        "FLOATD_E_BACKUP_EXPIRED",
        c"the backup server has served alone too long",
    ),
    (
        FLOATD_E_WOULD_BLOCK,
        "FLOATD_E_WOULD_BLOCK",
        c"a blocking call from inside the event callback (it would deadlock)",
    ),
    (FLOATD_E_CANCELLED, "FLOATD_E_CANCELLED", c"cancelled"),
    (
        FLOATD_E_PROTOCOL,
        "FLOATD_E_PROTOCOL",
        c"the server's answer was not understood",
    ),
    (
        FLOATD_E_SERVER,
        "FLOATD_E_SERVER",
        c"the licence server failed",
    ),
    (
        FLOATD_E_INTERNAL,
        "FLOATD_E_INTERNAL",
        c"internal error in the floatd client library",
    ),
    (
        FLOATD_E_NOT_ROAMABLE,
        "FLOATD_E_NOT_ROAMABLE",
        c"the licence does not let this feature roam",
    ),
    (
        FLOATD_E_ROAM_TOO_LONG,
        "FLOATD_E_ROAM_TOO_LONG",
        c"a longer roam than the licence or the operator allows",
    ),
    (
        FLOATD_E_TOO_MANY_ROAMING,
        "FLOATD_E_TOO_MANY_ROAMING",
        c"as many seats are out roaming as allowed",
    ),
    (
        FLOATD_E_ROAM_EXCLUDED,
        "FLOATD_E_ROAM_EXCLUDED",
        c"the operator keeps this user, host or group from roaming",
    ),
    (
        FLOATD_E_NO_ROAM,
        "FLOATD_E_NO_ROAM",
        c"no roam kept here lets this run now",
    ),
    (
        FLOATD_E_ROAM_KEY,
        "FLOATD_E_ROAM_KEY",
        c"the server's roam token is not signed by the key pinned for it",
    ),
    (
        FLOATD_E_ROAM_STORE,
        "FLOATD_E_ROAM_STORE",
        c"the roam store cannot be read or written",
    ),
    (
        FLOATD_E_ROAM_UNAVAILABLE,
        "FLOATD_E_ROAM_UNAVAILABLE",
        c"no roaming while the other server catches up",
    ),
];

/// The description of a result code.
pub fn describe(code: i32) -> &'static CStr {
    RESULTS
        .iter()
        .find(|(c, _, _)| *c == code)
        .map_or(c"unknown result code", |(_, _, text)| text)
}

/// The name of a seat state (`"held"`).
pub fn state_name(state: i32) -> &'static CStr {
    match state {
        FLOATD_SEAT_HELD => c"held",
        FLOATD_SEAT_RECONNECTING => c"reconnecting",
        FLOATD_SEAT_EXPIRED => c"expired",
        FLOATD_SEAT_LOST => c"lost",
        FLOATD_SEAT_RETURNED => c"returned",
        _ => c"unknown",
    }
}

/// The name of an event kind (`"failed_over"`).
pub fn event_name(event: i32) -> &'static CStr {
    match event {
        FLOATD_EVENT_TRYING => c"trying",
        FLOATD_EVENT_RECONNECTING => c"reconnecting",
        FLOATD_EVENT_FAILED_OVER => c"failed_over",
        FLOATD_EVENT_RECOVERED => c"recovered",
        FLOATD_EVENT_EXPIRED => c"expired",
        FLOATD_EVENT_LOST => c"lost",
        _ => c"unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_negative_and_described() {
        let mut seen = std::collections::BTreeSet::new();
        for (code, name, text) in RESULTS {
            assert!(seen.insert(*code), "{name} repeats {code}");
            assert!(*code <= 0 && name.starts_with("FLOATD_"));
            assert_eq!(describe(*code), *text);
        }
        assert_eq!(seen.len(), RESULTS.len());
        assert_eq!(describe(-999), c"unknown result code");
    }

    #[test]
    fn every_server_code_maps_to_a_result() {
        for code in Code::ALL {
            let result = code_of_refusal(*code);
            assert!(RESULTS.iter().any(|(c, _, _)| *c == result), "{code}");
            assert!(result < 0);
        }
        assert_eq!(code_of_refusal(Code::NoSeats), FLOATD_E_NO_SEATS);
        assert_eq!(code_of_refusal(Code::LicenceGone), FLOATD_E_SEAT_LOST);
    }

    #[test]
    fn client_errors_map_to_results() {
        let denied = |code: Option<Code>| ClientError::Denied {
            code,
            code_text: "X".into(),
            message: "m".into(),
        };
        assert_eq!(
            Failure::from(denied(Some(Code::NoSuchFeature))).code,
            FLOATD_E_NO_SUCH_FEATURE
        );
        assert_eq!(Failure::from(denied(None)).code, FLOATD_E_SERVER);
        assert_eq!(
            Failure::from(ClientError::Reentrant).code,
            FLOATD_E_WOULD_BLOCK
        );
        assert_eq!(
            Failure::from(ClientError::Cancelled).code,
            FLOATD_E_CANCELLED
        );
        let f = Failure::from(ClientError::Unreachable("a:1: refused".into()));
        assert_eq!(f.code, FLOATD_E_UNREACHABLE);
        assert!(f.message.contains("a:1: refused"));
    }

    #[test]
    fn states_and_events_have_names() {
        for s in 1..=5 {
            assert_ne!(state_name(s), c"unknown");
        }
        for e in 1..=6 {
            assert_ne!(event_name(e), c"unknown");
        }
    }
}
