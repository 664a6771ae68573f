//! Who a client is and which servers it talks to.

use std::time::Duration;

/// Environment variable with the server list (`host:port,host:port`).
pub const SERVERS_ENV: &str = "FLOATD_SERVERS";

/// Who the client says it is (HELLO). Handles are bound to it: a reclaim
/// must come from the same identity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub client: String,
    pub user: String,
    pub host: String,
}

impl Identity {
    /// The login user (`$USER`, `$LOGNAME`, else the account name), this
    /// host's name and a client id unique to this
    /// process.
    pub fn from_environment() -> Identity {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| account_name());
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .or_else(|_| std::fs::read_to_string("/etc/hostname"))
            .map(|h| h.trim().to_string())
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "localhost".into());
        let mut random = [0u8; 6];
        let _ = getrandom::fill(&mut random);
        let tag: String = random.iter().map(|b| format!("{b:02x}")).collect();
        Identity {
            client: format!("{}-{}", std::process::id(), tag),
            user,
            host,
        }
    }
}

/// Client settings.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Servers to try, in order (`host:port`).
    pub servers: Vec<String>,
    pub identity: Identity,
    /// Connect and reply timeout for one server.
    pub io_timeout: Duration,
    /// How long an operation keeps walking the server list before it gives
    /// up (unless nobody listens anywhere: then it gives up at once).
    pub failover_timeout: Duration,
}

impl ClientConfig {
    pub fn new(servers: Vec<String>, identity: Identity) -> ClientConfig {
        ClientConfig {
            servers,
            identity,
            io_timeout: Duration::from_secs(5),
            failover_timeout: Duration::from_secs(30),
        }
    }
}

/// Parses `host:port[,host:port]...`.
pub fn parse_server_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// The name of the account this process runs as (from /etc/passwd, by
/// the owner of /proc/self), for when neither `$USER` nor `$LOGNAME` says
/// (cron, systemd services, `env -i`). `uid-N` when the account has no name.
pub fn account_name() -> String {
    use std::os::unix::fs::MetadataExt;
    let Ok(uid) = std::fs::metadata("/proc/self").map(|m| m.uid()) else {
        return "unknown".into();
    };
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    name_of_uid(&passwd, uid).unwrap_or_else(|| format!("uid-{uid}"))
}

fn name_of_uid(passwd: &str, uid: u32) -> Option<String> {
    passwd.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id: u32 = fields.nth(1)?.parse().ok()?;
        (id == uid && !name.is_empty()).then(|| name.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_account_name_comes_from_the_passwd_line_of_the_uid() {
        let passwd =
            "root:x:0:0:root:/root:/bin/bash\n# comment\nann:x:1000:1000::/home/ann:/bin/sh\n";
        assert_eq!(name_of_uid(passwd, 1000).as_deref(), Some("ann"));
        assert_eq!(name_of_uid(passwd, 0).as_deref(), Some("root"));
        assert_eq!(name_of_uid(passwd, 7), None);
    }
}
