//! Client requests: parsed by the server, written by the client library.
//! The wire format is documented in docs/PROTOCOL.md.

use super::line::{self, LineBuilder};
use crate::ledger::{SeatSelector, MAX_HANDLE_LEN};
use crate::licence::Version;

/// The protocol version this build speaks.
pub const PROTOCOL_VERSION: u32 = 1;
/// Longest request line accepted, newline included.
pub const MAX_LINE: usize = 4096;
/// Most seats one checkout may ask for.
pub const MAX_COUNT: u32 = 1_000_000;
/// Longest feature name, user, host or client id.
pub const MAX_NAME: usize = 128;

/// One request line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// First request of a session: who is asking.
    Hello {
        proto: u32,
        client: String,
        user: String,
        host: String,
    },
    /// Presents the admin token (needed for admin requests from other hosts).
    Auth {
        token: String,
    },
    Checkout {
        feature: String,
        version: Version,
        count: u32,
        wait: bool,
    },
    Heartbeat {
        handle: String,
    },
    Checkin {
        handle: String,
    },
    /// Claims a seat granted earlier, on this or the peer server.
    Reclaim {
        handle: String,
        feature: String,
        version: Version,
        count: u32,
    },
    /// Takes seats away roaming for `days` days, to the machine `hostid`.
    Roam {
        feature: String,
        version: Version,
        count: u32,
        days: u32,
        hostid: String,
    },
    /// Makes a roam (named by its id, the handle in its token) last `days`
    /// days from today.
    RoamExtend {
        id: String,
        days: u32,
    },
    /// Hands a roam back early.
    RoamReturn {
        id: String,
    },
    Status,
    /// `STATUS holders=all` (admin): every holder of every pool listed.
    StatusAll,
    Ping,
    Quit,
    // Admin requests.
    /// `REMOVE HANDLE_OR_SEAT_ID` or `REMOVE feature=F user=U host=H`.
    Remove {
        seats: SeatSelector,
    },
    Reread,
    /// Shut down; with `release`, return every seat first (decommissioning:
    /// the seats will not be restored on the next start).
    Down {
        release: bool,
    },
    RotateLog,
    /// A primary forgets its backup now: no longer advertised to clients
    /// until it is heard from again.
    BackupForget,
}

impl Request {
    /// True for requests that need loopback access or the admin token.
    pub fn is_admin(&self) -> bool {
        matches!(
            self,
            Request::Remove { .. }
                | Request::Reread
                | Request::Down { .. }
                | Request::RotateLog
                | Request::BackupForget
                | Request::StatusAll
        )
    }

    /// Parses one request line (without its newline).
    pub fn parse(text: &str) -> Result<Request, String> {
        let l = line::parse(text)?;
        let verb = l.word.to_ascii_uppercase();
        let known: &[&str] = match verb.as_str() {
            "HELLO" => &["proto", "client", "user", "host"],
            "CHECKOUT" => &["version", "count", "wait"],
            "RECLAIM" => &["feature", "version", "count"],
            "ROAM" => &["version", "count", "days", "hostid"],
            "ROAM-EXTEND" => &["days"],
            "DOWN" => &["release"],
            "REMOVE" => &["feature", "user", "host"],
            "STATUS" => &["holders"],
            _ => &[],
        };
        if let Some((key, _)) = l.fields.iter().find(|(k, _)| !known.contains(k)) {
            return Err(format!("{verb} takes no field {key:?}"));
        }
        let positionals = match verb.as_str() {
            "CHECKOUT" | "HEARTBEAT" | "CHECKIN" | "RECLAIM" | "AUTH" | "ROAM" | "ROAM-EXTEND"
            | "ROAM-RETURN" => 1,
            // A seat by id or handle, or (by fields) a holder's seats.
            "REMOVE" if l.fields.is_empty() => 1,
            _ => 0,
        };
        if l.args.len() != positionals {
            return Err(match positionals {
                0 => format!("{verb} takes no positional value"),
                _ => format!("{verb} takes exactly one positional value"),
            });
        }
        let handle = || handle_arg(l.arg(0).unwrap_or(""));
        Ok(match verb.as_str() {
            "HELLO" => Request::Hello {
                proto: match l.get("proto") {
                    Some(p) => p
                        .parse()
                        .map_err(|_| format!("proto={p:?} is not a number"))?,
                    None => return Err("HELLO needs proto=N".into()),
                },
                client: name("client", l.get("client").unwrap_or(""))?,
                user: name("user", l.get("user").unwrap_or(""))?,
                host: name("host", l.get("host").unwrap_or(""))?,
            },
            "AUTH" => Request::Auth {
                token: l.arg(0).unwrap_or("").to_string(),
            },
            "CHECKOUT" => Request::Checkout {
                feature: name("feature", l.arg(0).unwrap_or(""))?,
                version: version(l.get("version"))?,
                count: count(l.get("count"))?,
                wait: yes_no("wait", l.get("wait"))?,
            },
            "HEARTBEAT" => Request::Heartbeat { handle: handle()? },
            "CHECKIN" => Request::Checkin { handle: handle()? },
            "RECLAIM" => Request::Reclaim {
                handle: handle()?,
                feature: name("feature", l.get("feature").unwrap_or(""))?,
                version: version(l.get("version"))?,
                count: count(l.get("count"))?,
            },
            "ROAM" => Request::Roam {
                feature: name("feature", l.arg(0).unwrap_or(""))?,
                version: version(l.get("version"))?,
                count: count(l.get("count"))?,
                days: days(l.get("days"))?,
                hostid: hostid(l.get("hostid"))?,
            },
            "ROAM-EXTEND" => Request::RoamExtend {
                id: handle()?,
                days: days(l.get("days"))?,
            },
            "ROAM-RETURN" => Request::RoamReturn { id: handle()? },
            "STATUS" => match l.get("holders") {
                None => Request::Status,
                Some("all") => Request::StatusAll,
                Some(other) => return Err(format!("holders={other:?}: expected all")),
            },
            "PING" => Request::Ping,
            "QUIT" => Request::Quit,
            "REMOVE" if l.args.is_empty() => Request::Remove {
                seats: SeatSelector::Holder {
                    feature: name("feature", l.get("feature").unwrap_or(""))?,
                    user: name("user", l.get("user").unwrap_or(""))?,
                    host: name("host", l.get("host").unwrap_or(""))?,
                },
            },
            "REMOVE" => Request::Remove {
                seats: SeatSelector::Seat(handle()?),
            },
            "REREAD" => Request::Reread,
            "DOWN" => Request::Down {
                release: yes_no("release", l.get("release"))?,
            },
            "ROTATE-LOG" => Request::RotateLog,
            "BACKUP-FORGET" => Request::BackupForget,
            _ => return Err(format!("unknown request {:?}", l.word)),
        })
    }

    /// The request as a line, newline included.
    pub fn to_line(&self) -> String {
        match self {
            Request::Hello {
                proto,
                client,
                user,
                host,
            } => LineBuilder::new("HELLO")
                .field("proto", proto)
                .field("client", client)
                .field("user", user)
                .field("host", host),
            Request::Auth { token } => LineBuilder::new("AUTH").arg(token),
            Request::Checkout {
                feature,
                version,
                count,
                wait,
            } => {
                let b = LineBuilder::new("CHECKOUT")
                    .arg(feature)
                    .field("version", version)
                    .field("count", count);
                if *wait {
                    b.field("wait", "yes")
                } else {
                    b
                }
            }
            Request::Heartbeat { handle } => LineBuilder::new("HEARTBEAT").arg(handle),
            Request::Checkin { handle } => LineBuilder::new("CHECKIN").arg(handle),
            Request::Reclaim {
                handle,
                feature,
                version,
                count,
            } => LineBuilder::new("RECLAIM")
                .arg(handle)
                .field("feature", feature)
                .field("version", version)
                .field("count", count),
            Request::Roam {
                feature,
                version,
                count,
                days,
                hostid,
            } => LineBuilder::new("ROAM")
                .arg(feature)
                .field("version", version)
                .field("count", count)
                .field("days", days)
                .field("hostid", hostid),
            Request::RoamExtend { id, days } => {
                LineBuilder::new("ROAM-EXTEND").arg(id).field("days", days)
            }
            Request::RoamReturn { id } => LineBuilder::new("ROAM-RETURN").arg(id),
            Request::Status => LineBuilder::new("STATUS"),
            Request::StatusAll => LineBuilder::new("STATUS").field("holders", "all"),
            Request::Ping => LineBuilder::new("PING"),
            Request::Quit => LineBuilder::new("QUIT"),
            Request::Remove {
                seats: SeatSelector::Seat(seat),
            } => LineBuilder::new("REMOVE").arg(seat),
            Request::Remove {
                seats:
                    SeatSelector::Holder {
                        feature,
                        user,
                        host,
                    },
            } => LineBuilder::new("REMOVE")
                .field("feature", feature)
                .field("user", user)
                .field("host", host),
            Request::Reread => LineBuilder::new("REREAD"),
            Request::Down { release: false } => LineBuilder::new("DOWN"),
            Request::Down { release: true } => LineBuilder::new("DOWN").field("release", "yes"),
            Request::RotateLog => LineBuilder::new("ROTATE-LOG"),
            Request::BackupForget => LineBuilder::new("BACKUP-FORGET"),
        }
        .finish()
    }
}

fn name(what: &str, value: &str) -> Result<String, String> {
    if value.is_empty() {
        return Err(format!("{what} is missing"));
    }
    if value.len() > MAX_NAME {
        return Err(format!("{what} is longer than {MAX_NAME} bytes"));
    }
    Ok(value.to_string())
}

fn yes_no(key: &str, value: Option<&str>) -> Result<bool, String> {
    match value {
        None | Some("0") | Some("no") => Ok(false),
        Some("1") | Some("yes") => Ok(true),
        Some(other) => Err(format!("{key}={other:?}: expected yes or no")),
    }
}

fn handle_arg(value: &str) -> Result<String, String> {
    if value.is_empty() || value.len() > MAX_HANDLE_LEN {
        return Err(format!("a handle is 1 to {MAX_HANDLE_LEN} characters"));
    }
    Ok(value.to_string())
}

fn version(value: Option<&str>) -> Result<Version, String> {
    Version::parse(value.unwrap_or("0"))
}

fn days(value: Option<&str>) -> Result<u32, String> {
    let max = crate::licence::parse::MAX_ROAM_DAYS;
    let Some(value) = value else {
        return Err("days=N is required".into());
    };
    match value.parse::<u32>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!("days={value:?}: expected 1 to {max}")),
    }
}

/// A roam's host id: a machine, MAC address or host name (never `any`).
fn hostid(value: Option<&str>) -> Result<String, String> {
    let value = value.ok_or("hostid=ID is required (the machine the seats roam to)")?;
    if value.len() > MAX_NAME {
        return Err(format!("hostid is longer than {MAX_NAME} bytes"));
    }
    match crate::licence::HostId::parse(value)? {
        crate::licence::HostId::Any => Err("hostid=any names no machine".into()),
        id => Ok(id.to_string()),
    }
}

fn count(value: Option<&str>) -> Result<u32, String> {
    let Some(value) = value else { return Ok(1) };
    match value.parse::<u32>() {
        Ok(n) if (1..=MAX_COUNT).contains(&n) => Ok(n),
        _ => Err(format!("count={value:?}: expected 1 to {MAX_COUNT}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_request_round_trips() {
        let v = Version::parse("2.0").unwrap();
        let all = vec![
            Request::Hello {
                proto: 1,
                client: "c 1".into(),
                user: "alice".into(),
                host: "ws1".into(),
            },
            Request::Auth {
                token: "s3cret".into(),
            },
            Request::Checkout {
                feature: "cad".into(),
                version: v,
                count: 2,
                wait: true,
            },
            Request::Heartbeat {
                handle: "h.x".into(),
            },
            Request::Checkin {
                handle: "h.x".into(),
            },
            Request::Reclaim {
                handle: "h.x".into(),
                feature: "cad".into(),
                version: v,
                count: 1,
            },
            Request::Roam {
                feature: "cad".into(),
                version: Version::parse("2").unwrap(),
                count: 2,
                days: 7,
                hostid: "machine:0123456789abcdef".into(),
            },
            Request::RoamExtend {
                id: "h.x".into(),
                days: 3,
            },
            Request::RoamReturn { id: "h.x".into() },
            Request::Status,
            Request::StatusAll,
            Request::Ping,
            Request::Quit,
            Request::Remove {
                seats: SeatSelector::Seat("h.x".into()),
            },
            Request::Remove {
                seats: SeatSelector::Holder {
                    feature: "cad".into(),
                    user: "Ada Lovelace".into(),
                    host: "ws1".into(),
                },
            },
            Request::Reread,
            Request::Down { release: false },
            Request::Down { release: true },
            Request::RotateLog,
            Request::BackupForget,
        ];
        for r in all {
            let line = r.to_line();
            assert_eq!(Request::parse(line.trim_end()).unwrap(), r, "{line}");
        }
    }

    #[test]
    fn defaults_and_case() {
        assert_eq!(
            Request::parse("checkout cad").unwrap(),
            Request::Checkout {
                feature: "cad".into(),
                version: Version::parse("0").unwrap(),
                count: 1,
                wait: false
            }
        );
    }

    #[test]
    fn rejects_bad_requests() {
        for bad in [
            "FROB",
            "CHECKOUT",
            "CHECKOUT cad count=0",
            "CHECKOUT cad count=-1",
            "CHECKOUT cad count=99999999999",
            "CHECKOUT cad version=x",
            "CHECKOUT cad colour=red",
            "CHECKOUT cad wait=maybe",
            "HELLO user=a host=b client=c",
            "HELLO proto=1 user=a host=b",
            "HEARTBEAT",
            "HEARTBEAT a b",
            "STATUS now",
            "REMOVE",
            "REMOVE feature=cad user=alice",
            "REMOVE h.x user=alice",
            "ROAM cad",
            "ROAM cad days=3",
            "ROAM cad hostid=machine:0123456789abcdef",
            "ROAM cad days=0 hostid=machine:0123456789abcdef",
            "ROAM cad days=3651 hostid=machine:0123456789abcdef",
            "ROAM cad days=3 hostid=any",
            "ROAM cad days=3 hostid=machine:xyz",
            "ROAM-EXTEND h.x",
            "ROAM-RETURN",
            "ROAM-RETURN h.x days=3",
        ] {
            assert!(Request::parse(bad).is_err(), "{bad}");
        }
        let long = format!("CHECKIN {}", "h".repeat(MAX_HANDLE_LEN + 1));
        assert!(Request::parse(&long).is_err());
    }
}
