//! Stable error codes. Clients and scripts match on these strings, so a
//! code never changes meaning once shipped; the human message beside it may.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! codes {
    ($( $(#[$doc:meta])* $name:ident = $text:literal, )*) => {
        /// A stable, machine-readable reason for an error or denial.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum Code { $( $(#[$doc])* #[serde(rename = $text)] $name, )* }

        impl Code {
            /// The code as it appears on the wire and in logs.
            pub fn as_str(self) -> &'static str {
                match self { $( Code::$name => $text, )* }
            }

            /// Parses a code read from the wire.
            pub fn parse(text: &str) -> Option<Code> {
                match text { $( $text => Some(Code::$name), )* _ => None }
            }

            /// Every code, for documentation and tests.
            pub const ALL: &'static [Code] = &[ $( Code::$name, )* ];
        }
    };
}

codes! {
    /// The request line could not be parsed.
    BadRequest = "BAD_REQUEST",
    /// A request line was longer than the limit; the connection is closed.
    LineTooLong = "LINE_TOO_LONG",
    /// A request other than HELLO arrived before the greeting.
    NotGreeted = "NOT_GREETED",
    /// The client speaks a protocol version this server does not.
    ProtocolVersion = "PROTOCOL_VERSION",
    /// No licence for this feature is served here.
    NoSuchFeature = "NO_SUCH_FEATURE",
    /// The feature is served, but no pool has the requested version or newer.
    NoVersion = "NO_VERSION",
    /// Every pool that would serve the request has expired.
    Expired = "EXPIRED",
    /// All seats are in use.
    NoSeats = "NO_SEATS",
    /// The free seats are reserved for others by the options file.
    Reserved = "RESERVED",
    /// More seats than the pool will ever hold.
    CountTooLarge = "COUNT_TOO_LARGE",
    /// An options-file MAX rule caps this user, host or group.
    MaxReached = "MAX_REACHED",
    /// An options-file EXCLUDE rule names this user, host or group.
    Excluded = "EXCLUDED",
    /// An options-file INCLUDE list exists for the feature and does not name the requester.
    NotIncluded = "NOT_INCLUDED",
    /// The handle is not (or no longer) held here.
    UnknownHandle = "UNKNOWN_HANDLE",
    /// The handle's authentication tag does not match its grant.
    BadHandle = "BAD_HANDLE",
    /// The seat's licence disappeared on reread.
    LicenceGone = "LICENCE_GONE",
    /// The server took over without being in sync and grants only reclaims until the recovery period ends.
    Recovering = "RECOVERING",
    /// This server is the standby; the reply names the active server.
    Standby = "STANDBY",
    /// The server may not grant now (it lost its grant lease or the pair cannot agree who is active).
    NotActive = "NOT_ACTIVE",
    /// The backup has served alone for longer than backup_max_days.
    BackupExpired = "BACKUP_EXPIRED",
    /// The server is shutting down.
    ShuttingDown = "SHUTTING_DOWN",
    /// The feature's licence does not let its seats roam (no `roam=`), or the options file turns roaming off.
    NotRoamable = "NOT_ROAMABLE",
    /// The roam asked for is longer than the licence, the options file or the licence's expiry allows.
    RoamTooLong = "ROAM_TOO_LONG",
    /// As many seats of the feature are out roaming as the licence or the options file allows.
    TooManyRoaming = "TOO_MANY_ROAMING",
    /// An options-file EXCLUDE_ROAM or INCLUDE_ROAM rule keeps the requester from roaming the feature.
    RoamExcluded = "ROAM_EXCLUDED",
    /// The other server of the pair is catching up or not acknowledging, so no roam is granted or extended now: a server that took over without knowing of it would give its seats out again.
    RoamUnavailable = "ROAM_UNAVAILABLE",
    /// An admin request without loopback access or the admin token.
    AdminRequired = "ADMIN_REQUIRED",
    /// The server is at its connection cap.
    Busy = "BUSY",
    /// The server cannot record seats (its journal failed: a full or broken disk); it grants nothing until restarted, and a grant it could not record is taken back.
    JournalFailed = "JOURNAL_FAILED",
    /// Something failed inside the server (I/O, a reread that could not load).
    Internal = "INTERNAL",
    /// The client already holds (and waits for) as many checkouts as one client may.
    ClientLimit = "CLIENT_LIMIT",
    /// Too many wrong admin tokens from this address (or in all): AUTH is refused for a while.
    AuthLimit = "AUTH_LIMIT",
    /// `BACKUP-FORGET` to a server that has no backup to forget (it is standalone, or the backup itself).
    NoBackup = "NO_BACKUP",
    /// `BACKUP-FORGET` while the backup is heard from: a running backup would be advertised again at once.
    BackupAlive = "BACKUP_ALIVE",
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for code in Code::ALL {
            assert_eq!(Code::parse(code.as_str()), Some(*code));
        }
        assert_eq!(Code::parse("NOPE"), None);
    }
}
