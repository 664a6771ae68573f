//! Options every operator command takes: the servers, who floatctl says
//! it is, the admin token, how long to keep trying; and the one client a
//! command uses, which says on stderr what it is waiting for and stops at
//! once on SIGTERM or SIGINT.

use crate::client::{parse_server_list, Client, ClientConfig, ClientEvent, Identity, SERVERS_ENV};
use crate::ledger::seat_id;
use std::ffi::OsString;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// The server list when neither `--server` nor `FLOATD_SERVERS` is given.
pub const DEFAULT_SERVER: &str = "127.0.0.1:27000";

/// The client id floatctl gives unless `--client` is said. One id for
/// every floatctl run, so a seat `floatctl checkout` took can be returned
/// by a later `floatctl checkin` of the same user on the same host (seats
/// are renewed and returned only by the client, user and host they were
/// granted to).
pub const CLIENT_ID: &str = "floatctl";

pub struct Common {
    pub servers: Vec<String>,
    pub identity: Identity,
    /// `--user` and `--host` as given (remove takes them as the holder).
    pub user_given: Option<String>,
    pub host_given: Option<String>,
    pub admin_token_file: Option<PathBuf>,
    pub timeout: Duration,
    client: OnceLock<Client>,
    /// Set by SIGTERM or SIGINT.
    interrupted: Arc<AtomicBool>,
}

impl Common {
    /// The command's client (made at first use): events go to stderr, and
    /// SIGTERM or SIGINT cancel whatever it is doing.
    pub fn client(&self) -> Client {
        self.client
            .get_or_init(|| {
                let mut config = ClientConfig::new(self.servers.clone(), self.identity.clone());
                config.failover_timeout = self.timeout;
                let client = Client::new(config);
                client.on_event(|event| {
                    if let Some(text) = describe(event) {
                        eprintln!("floatctl: {text}");
                    }
                });
                cancel_on_signals(&client, self.interrupted.clone());
                client
            })
            .clone()
    }

    /// Whether SIGTERM or SIGINT came.
    pub fn interrupted(&self) -> bool {
        self.interrupted.load(Ordering::SeqCst)
    }

    pub fn admin_token(&self) -> Result<Option<String>, String> {
        match &self.admin_token_file {
            None => Ok(None),
            Some(path) => std::fs::read_to_string(path)
                .map(|t| Some(t.lines().next().unwrap_or("").trim().to_string()))
                .map_err(|e| format!("admin token file {}: {e}", path.display())),
        }
    }
}

/// Who floatctl says it is unless told: client id [`CLIENT_ID`], the
/// login user (`$USER`, `$LOGNAME`, else the account name), this host.
pub fn default_identity() -> Identity {
    let mut identity = Identity::from_environment();
    identity.client = CLIENT_ID.to_string();
    identity
}

/// Parses the common options out of `args`, leaving the rest.
pub fn parse(args: Vec<OsString>) -> Result<(Common, Vec<OsString>), String> {
    let mut servers = std::env::var(SERVERS_ENV)
        .ok()
        .map(|s| parse_server_list(&s));
    let mut identity = default_identity();
    let (mut user_given, mut host_given) = (None, None);
    let mut admin_token_file = std::env::var_os("FLOATD_ADMIN_TOKEN_FILE").map(PathBuf::from);
    let mut timeout = Duration::from_secs(30);
    let mut rest = Vec::new();
    let mut iter = args.into_iter();
    while let Some(arg) = iter.next() {
        let text = arg.to_string_lossy().to_string();
        let (name, inline) = match text.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
            _ => (text.clone(), None),
        };
        let mut value = || -> Result<String, String> {
            inline
                .clone()
                .or_else(|| iter.next().map(|v| v.to_string_lossy().to_string()))
                .ok_or_else(|| format!("{name} needs a value"))
        };
        match name.as_str() {
            "--server" => servers = Some(parse_server_list(&value()?)),
            "--user" => {
                identity.user = value()?;
                user_given = Some(identity.user.clone());
            }
            "--host" => {
                identity.host = value()?;
                host_given = Some(identity.host.clone());
            }
            "--client" => identity.client = value()?,
            "--admin-token-file" => admin_token_file = Some(value()?.into()),
            "--timeout" => {
                let v = value()?;
                timeout = Duration::from_secs_f64(
                    v.parse::<f64>()
                        .ok()
                        .filter(|s| s.is_finite() && *s >= 0.0)
                        .ok_or_else(|| format!("--timeout {v:?}: expected seconds"))?,
                );
            }
            _ => rest.push(arg),
        }
    }
    let servers = servers
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| vec![DEFAULT_SERVER.to_string()]);
    Ok((
        Common {
            servers,
            identity,
            user_given,
            host_given,
            admin_token_file,
            timeout,
            client: OnceLock::new(),
            interrupted: Arc::default(),
        },
        rest,
    ))
}

/// What floatctl says about a client event (seats by their public id).
fn describe(event: &ClientEvent) -> Option<String> {
    Some(match event {
        ClientEvent::Trying { server } => format!("trying {server}..."),
        ClientEvent::Moved {
            from: Some(from),
            to,
        } => format!("server {from} is gone; now served by {to}"),
        ClientEvent::Reclaimed { handle, server } => {
            format!("seat {} kept on {server}", seat_id(handle))
        }
        ClientEvent::Lost { handle, reason } => format!("seat {} lost: {reason}", seat_id(handle)),
        ClientEvent::Disconnected { server, reason } => {
            format!("lost {server} ({reason}); looking for the active server")
        }
        ClientEvent::Expired { handle } => format!(
            "seat {}: lease ran out; still trying to reclaim it",
            seat_id(handle)
        ),
        _ => return None,
    })
}

/// A thread that cancels the client's calls when SIGTERM or SIGINT comes
/// (and notes it), so floatctl stops at once rather than at the end of
/// its timeout.
fn cancel_on_signals(client: &Client, interrupted: Arc<AtomicBool>) {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
        return;
    };
    let client = client.clone();
    let _ = std::thread::Builder::new()
        .name("floatctl-signals".into())
        .spawn(move || {
            for _ in signals.forever() {
                interrupted.store(true, Ordering::SeqCst);
                client.cancel();
            }
        });
}
