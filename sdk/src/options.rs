//! The server list and options string given to `floatd_client_new`.
//!
//! Options are `key=value` pairs separated by spaces, quoted like protocol
//! values when they hold spaces (`user="Ada Lovelace"`). A string keeps the
//! C API stable as options are added: an unknown key is an error that
//! names the keys this version knows.
#![forbid(unsafe_code)]

use crate::codes::Failure;
use floatd::client::{parse_server_list, ClientConfig, Identity, SERVERS_ENV};
use floatd::protocol::line;
use std::time::Duration;

/// Every option, with what it sets (for errors and documentation).
pub const OPTIONS: &[(&str, &str)] = &[
    (
        "user",
        "the user name the server sees (default: $USER, $LOGNAME, else the account name)",
    ),
    (
        "host",
        "the host name the server sees (default: this host's name)",
    ),
    (
        "client",
        "the client id (default: process id and a random tag)",
    ),
    (
        "io_timeout_ms",
        "connect and reply timeout for one server (default 5000)",
    ),
    (
        "failover_timeout_ms",
        "how long a call looks for an active server (default 30000)",
    ),
    (
        "heartbeat",
        "`auto` (a library thread renews seats, the default) or `manual`",
    ),
];

/// A parsed `floatd_client_new` call.
#[derive(Clone, Debug)]
pub struct Settings {
    pub config: ClientConfig,
    /// Run the library's heartbeat thread.
    pub heartbeat_thread: bool,
}

/// Parses the server list (`None` or empty: `FLOATD_SERVERS`) and options.
pub fn parse(
    servers: Option<&str>,
    options: Option<&str>,
    env_servers: Option<String>,
) -> Result<Settings, Failure> {
    let list = match servers.filter(|s| !s.trim().is_empty()) {
        Some(s) => parse_server_list(s),
        None => env_servers
            .as_deref()
            .map(parse_server_list)
            .unwrap_or_default(),
    };
    if list.is_empty() {
        return Err(Failure::bad_argument(format!(
            "no servers: give a list (\"host:port,host:port\") or set {SERVERS_ENV}"
        )));
    }
    for server in &list {
        floatd::net::split_host_port(server)
            .map_err(|e| Failure::bad_argument(format!("server list: {e}")))?;
    }
    let mut settings = Settings {
        config: ClientConfig::new(list, Identity::from_environment()),
        heartbeat_thread: true,
    };
    let text = options.unwrap_or("").trim();
    if text.is_empty() {
        return Ok(settings);
    }
    let text = format!("options {text}");
    let parsed = line::parse(&text).map_err(|e| Failure::bad_argument(format!("options: {e}")))?;
    if let Some(stray) = parsed.arg(0) {
        return Err(Failure::bad_argument(format!(
            "options: {stray:?} is not key=value"
        )));
    }
    for (key, value) in &parsed.fields {
        apply(&mut settings, key, value)?;
    }
    Ok(settings)
}

fn apply(settings: &mut Settings, key: &str, value: &str) -> Result<(), Failure> {
    let config = &mut settings.config;
    let millis = || -> Result<Duration, Failure> {
        value
            .parse::<u64>()
            .ok()
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis)
            .ok_or_else(|| {
                Failure::bad_argument(format!("option {key}={value:?}: expected milliseconds > 0"))
            })
    };
    let name = || -> Result<String, Failure> {
        if value.is_empty() {
            return Err(Failure::bad_argument(format!("option {key} is empty")));
        }
        Ok(value.to_string())
    };
    match key {
        "user" => config.identity.user = name()?,
        "host" => config.identity.host = name()?,
        "client" => config.identity.client = name()?,
        "io_timeout_ms" => config.io_timeout = millis()?,
        "failover_timeout_ms" => config.failover_timeout = millis()?,
        "heartbeat" => {
            settings.heartbeat_thread = match value {
                "auto" => true,
                "manual" => false,
                _ => {
                    return Err(Failure::bad_argument(format!(
                        "option heartbeat={value:?}: expected auto or manual"
                    )))
                }
            }
        }
        _ => {
            let known: Vec<&str> = OPTIONS.iter().map(|(k, _)| *k).collect();
            return Err(Failure::bad_argument(format!(
                "unknown option {key:?} (known: {})",
                known.join(", ")
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codes::FLOATD_E_BAD_ARGUMENT;

    #[test]
    fn options_set_identity_timeouts_and_heartbeat_mode() {
        let s = parse(
            Some("lic1:27000, lic2:27000"),
            Some(r#"user="Ada Lovelace" host=ws1 client=app-7 io_timeout_ms=1500 failover_timeout_ms=9000 heartbeat=manual"#),
            None,
        )
        .unwrap();
        assert_eq!(s.config.servers, vec!["lic1:27000", "lic2:27000"]);
        assert_eq!(s.config.identity.user, "Ada Lovelace");
        assert_eq!(s.config.identity.host, "ws1");
        assert_eq!(s.config.identity.client, "app-7");
        assert_eq!(s.config.io_timeout, Duration::from_millis(1500));
        assert_eq!(s.config.failover_timeout, Duration::from_secs(9));
        assert!(!s.heartbeat_thread);
        let d = parse(Some("a:1"), None, None).unwrap();
        assert!(d.heartbeat_thread);
        assert_eq!(d.config.io_timeout, Duration::from_secs(5));
    }

    #[test]
    fn the_environment_supplies_servers_when_none_are_given() {
        let s = parse(None, Some(""), Some("env1:1,env2:2".into())).unwrap();
        assert_eq!(s.config.servers, vec!["env1:1", "env2:2"]);
        let s = parse(Some("  "), None, Some("env1:1".into())).unwrap();
        assert_eq!(s.config.servers, vec!["env1:1"]);
        let e = parse(None, None, None).unwrap_err();
        assert!(e.message.contains("FLOATD_SERVERS"), "{}", e.message);
    }

    #[test]
    fn bad_options_and_servers_are_refused_with_a_reason() {
        for (servers, options, says) in [
            ("lic1", "", "HOST:PORT"),
            ("a:1", "colour=blue", "unknown option \"colour\""),
            ("a:1", "user", "not key=value"),
            ("a:1", "io_timeout_ms=0", "milliseconds"),
            ("a:1", "io_timeout_ms=soon", "milliseconds"),
            ("a:1", "heartbeat=sometimes", "auto or manual"),
            ("a:1", "user=\"\"", "empty"),
            ("a:1", "user=\"unterminated", "options"),
        ] {
            let e = parse(Some(servers), Some(options), None).unwrap_err();
            assert_eq!(e.code, FLOATD_E_BAD_ARGUMENT);
            assert!(e.message.contains(says), "{options}: {}", e.message);
        }
    }
}
