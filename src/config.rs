//! Server settings: defaults, the TOML config file and command-line flags.
//!
//! Every setting is a config key and a flag of the same name (`state_dir`
//! is `--state-dir`). Flags win over the file. Durations take a unit
//! (`500ms`, `3s`, `2m`, `1h`, `21d`); a bare number is in the key's own
//! unit (seconds for `lease`, days for `backup_max_days`, ...).

use crate::journal::Durability;
use serde::Deserialize;
use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The largest config file read.
const MAX_CONFIG_BYTES: u64 = 1 << 20;

/// Which part a server plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// A lone server, no failover.
    Standalone,
    Primary,
    Backup,
    /// The licence-less tie-breaker of witness mode.
    Witness,
}

impl Role {
    pub fn parse(text: &str) -> Result<Role, String> {
        match text {
            "standalone" => Ok(Role::Standalone),
            "primary" => Ok(Role::Primary),
            "backup" => Ok(Role::Backup),
            "witness" => Ok(Role::Witness),
            _ => Err(format!(
                "role {text:?}: expected primary, backup, witness or standalone"
            )),
        }
    }

    /// The other server of a pair (a primary's is the backup).
    pub fn other(self) -> Role {
        match self {
            Role::Primary => Role::Backup,
            _ => Role::Primary,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Standalone => "standalone",
            Role::Primary => "primary",
            Role::Backup => "backup",
            Role::Witness => "witness",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Resolved settings.
#[derive(Clone, Debug)]
pub struct Config {
    pub license: Option<String>,
    pub vendor_keys: Vec<PathBuf>,
    pub bind: String,
    pub port: Option<u16>,
    pub state_dir: Option<PathBuf>,
    pub options: Option<PathBuf>,
    pub lease: Duration,
    pub max_connections: usize,
    /// Most checkouts one client may hold and wait for; 0: no limit.
    pub max_checkouts_per_client: u64,
    pub admin_token_file: Option<PathBuf>,
    /// Require the admin token from loopback too (for tests and shared hosts).
    pub admin_token_always: bool,
    pub durability: Durability,
    /// A connection that sends nothing this long is closed.
    pub idle_timeout: Duration,
    pub demo: bool,
    pub role: Role,
    pub peer: Option<String>,
    pub peer_secret_file: Option<PathBuf>,
    pub peer_listen: Option<String>,
    pub witness: Option<String>,
    pub ping_interval: Duration,
    pub takeover_after: Duration,
    pub sync_timeout: Duration,
    pub fence_after: Duration,
    pub backup_max: Duration,
    pub backup_lost_after: Duration,
    pub http: Option<String>,
    /// The address clients should use for this server, when it differs
    /// from what it binds (told to the peer and, through it, to clients).
    pub advertise: Option<String>,
    /// The length of a roam day: one day, shorter only for tests.
    pub roam_day: Duration,
    /// The config files read (`--config`), in order: a reread reads them
    /// again for the other server's address ([`Config::reread_peer`]).
    pub config_files: Vec<PathBuf>,
    /// `--peer` as given on the command line: it wins over the files, at
    /// start and at every reread.
    pub peer_flag: Option<String>,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            license: None,
            vendor_keys: Vec::new(),
            bind: "0.0.0.0".into(),
            port: None,
            state_dir: None,
            options: None,
            lease: Duration::from_secs(60),
            max_connections: 16_384,
            max_checkouts_per_client: crate::ledger::per_client::DEFAULT_LIMIT,
            admin_token_file: None,
            admin_token_always: false,
            durability: Durability::Fsync,
            idle_timeout: Duration::from_secs(300),
            demo: false,
            role: Role::Standalone,
            peer: None,
            peer_secret_file: None,
            peer_listen: None,
            witness: None,
            ping_interval: Duration::from_millis(500),
            takeover_after: Duration::from_secs(3),
            sync_timeout: Duration::from_millis(250),
            fence_after: Duration::from_secs(2),
            backup_max: Duration::from_secs(21 * 86_400),
            backup_lost_after: Duration::from_secs(7 * 86_400),
            http: None,
            advertise: None,
            roam_day: Duration::from_secs(86_400),
            config_files: Vec::new(),
            peer_flag: None,
        }
    }
}

/// A duration in a config file: a number in the key's unit or a string with a unit.
#[derive(Deserialize)]
#[serde(untagged)]
enum DurationValue {
    Number(f64),
    Text(String),
}

/// The config file as written. Every key optional.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    license: Option<String>,
    vendor_key: Option<Vec<PathBuf>>,
    bind: Option<String>,
    port: Option<u16>,
    state_dir: Option<PathBuf>,
    options: Option<PathBuf>,
    lease: Option<DurationValue>,
    max_connections: Option<usize>,
    max_checkouts_per_client: Option<u64>,
    admin_token_file: Option<PathBuf>,
    admin_token_always: Option<bool>,
    durability: Option<String>,
    idle_timeout: Option<DurationValue>,
    role: Option<String>,
    peer: Option<String>,
    peer_secret_file: Option<PathBuf>,
    peer_listen: Option<String>,
    witness: Option<String>,
    ping_interval: Option<DurationValue>,
    takeover_after: Option<DurationValue>,
    sync_timeout: Option<DurationValue>,
    fence_after: Option<DurationValue>,
    backup_max_days: Option<DurationValue>,
    backup_lost_after_days: Option<DurationValue>,
    http: Option<String>,
    advertise: Option<String>,
    roam_day: Option<DurationValue>,
}

/// The unit a bare number means for a duration key.
#[derive(Clone, Copy)]
enum Unit {
    Millis,
    Secs,
    Days,
}

/// Parses `500ms`, `3s`, `2m`, `1h`, `21d`, `0.5s`; a bare number is in `unit`.
fn parse_duration(text: &str, unit: Unit) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration (e.g. 500ms, 3s, 2m, 1h, 21d)"))?;
    let secs_per = match (suffix, unit) {
        ("ms", _) => 0.001,
        ("s", _) => 1.0,
        ("m", _) => 60.0,
        ("h", _) => 3600.0,
        ("d", _) => 86_400.0,
        ("", Unit::Millis) => 0.001,
        ("", Unit::Secs) => 1.0,
        ("", Unit::Days) => 86_400.0,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {suffix:?} (ms, s, m, h, d)"
            ))
        }
    };
    let secs = value * secs_per;
    if !secs.is_finite() || !(0.0..=1e10).contains(&secs) {
        return Err(format!("{text:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn duration_value(v: DurationValue, unit: Unit) -> Result<Duration, String> {
    match v {
        DurationValue::Number(n) => parse_duration(&n.to_string(), unit),
        DurationValue::Text(t) => parse_duration(&t, unit),
    }
}

fn durability(text: &str) -> Result<Durability, String> {
    text.parse()
}

pub const FLOATD_USAGE: &str = "\
usage: floatd [--config FILE] [--license PATH] [--demo] [options]

  --config FILE            TOML file with any of the settings below (flags win)
  --license PATH           licence files and directories, ':'-separated (else $FLOATD_LICENSE)
  --vendor-key FILE        trust licences signed by this public key (repeatable)
  --demo                   serve the embedded demo licence with a temporary state directory
  --bind ADDR              address to listen on (default 0.0.0.0)
  --port N                 client port (default: from the licence file)
  --state-dir DIR          journal, snapshot, report log (default $STATE_DIRECTORY,
                           /var/lib/floatd, or ./floatd-state)
  --options FILE           operator policy (default floatd.opt beside the licence)
  --lease DURATION         seat lease (default 60s)
  --max-connections N      connection cap (default 16384)
  --max-checkouts-per-client N
                           checkouts one client may hold and wait for (default 1000, 0: no limit)
  --admin-token-file FILE  token that admin requests from other hosts must present
  --admin-token-always     require the token from loopback too
  --durability MODE        fsync (default) or none
  --idle-timeout DURATION  close connections silent this long (default 300s)
  --role ROLE              standalone (default), primary, backup or witness
  --peer HOST:PORT         the other server's peer port (as peer in a config file it is
                           reread on SIGHUP; a flag stays until a restart)
  --peer-secret-file FILE  shared secret of the peer link
  --peer-listen ADDR:PORT  own peer port (default: client port + 1)
  --witness HOST:PORT      the witness's peer port (witness mode)
  --ping-interval DURATION (default 500ms)   --takeover-after DURATION (default 3s)
  --sync-timeout DURATION  (default 250ms)   --fence-after DURATION (default 2s)
  --backup-max-days DAYS   (default 21)      --backup-lost-after-days DAYS (default 7)
  --advertise HOST:PORT    the address clients use for this server (default: the
                           licence line's host name and the bound port)
  --http ADDR:PORT         status page and /metrics (off unless set)
  --roam-day DURATION      the length of a roam day (default 1d; shorter for tests only)
";

impl Config {
    /// Builds the settings from the arguments after the program name.
    /// Returns `Ok(None)` when `--help` was asked for.
    pub fn from_args(args: Vec<OsString>) -> Result<Option<Config>, String> {
        use lexopt::prelude::*;
        // First pass: find --config, so flags can override the file.
        let mut config = Config::default();
        let mut iter = args.iter();
        while let Some(a) = iter.next() {
            let path = if a == "--config" {
                PathBuf::from(iter.next().ok_or("--config needs a file")?)
            } else if let Some(path) = a.to_str().and_then(|s| s.strip_prefix("--config=")) {
                PathBuf::from(path)
            } else {
                continue;
            };
            config.apply_file(&path)?;
            config.config_files.push(path);
        }
        let mut parser = lexopt::Parser::from_args(args);
        let mut vendor_keys_from_flags = Vec::new();
        while let Some(arg) = parser.next().map_err(|e| e.to_string())? {
            let Long(name) = arg else {
                return Err(match arg {
                    Value(v) => format!("unexpected argument {v:?}"),
                    Short(c) => format!("unknown flag -{c}"),
                    Long(_) => unreachable!(),
                });
            };
            let name = name.to_string();
            let mut value = || -> Result<String, String> {
                parser
                    .value()
                    .map_err(|e| e.to_string())?
                    .into_string()
                    .map_err(|v| format!("--{name}: {v:?} is not UTF-8"))
            };
            match name.as_str() {
                "help" => return Ok(None),
                "config" => {
                    value()?;
                }
                "demo" => config.demo = true,
                "admin-token-always" => config.admin_token_always = true,
                "license" => config.license = Some(value()?),
                "vendor-key" => vendor_keys_from_flags.push(PathBuf::from(value()?)),
                "bind" => config.bind = value()?,
                "port" => config.port = Some(parse_num(&name, &value()?)?),
                "state-dir" => config.state_dir = Some(value()?.into()),
                "options" => config.options = Some(value()?.into()),
                "lease" => config.lease = parse_duration(&value()?, Unit::Secs)?,
                "max-connections" => config.max_connections = parse_num(&name, &value()?)?,
                "max-checkouts-per-client" => {
                    config.max_checkouts_per_client = parse_num(&name, &value()?)?
                }
                "admin-token-file" => config.admin_token_file = Some(value()?.into()),
                "durability" => config.durability = durability(&value()?)?,
                "idle-timeout" => config.idle_timeout = parse_duration(&value()?, Unit::Secs)?,
                "role" => config.role = Role::parse(&value()?)?,
                "peer" => {
                    config.peer = Some(value()?);
                    config.peer_flag = config.peer.clone();
                }
                "peer-secret-file" => config.peer_secret_file = Some(value()?.into()),
                "peer-listen" => config.peer_listen = Some(value()?),
                "witness" => config.witness = Some(value()?),
                "ping-interval" => config.ping_interval = parse_duration(&value()?, Unit::Millis)?,
                "takeover-after" => {
                    config.takeover_after = parse_duration(&value()?, Unit::Millis)?
                }
                "sync-timeout" => config.sync_timeout = parse_duration(&value()?, Unit::Millis)?,
                "fence-after" => config.fence_after = parse_duration(&value()?, Unit::Millis)?,
                "backup-max-days" => config.backup_max = parse_duration(&value()?, Unit::Days)?,
                "backup-lost-after-days" => {
                    config.backup_lost_after = parse_duration(&value()?, Unit::Days)?
                }
                "http" => config.http = Some(value()?),
                "advertise" => config.advertise = Some(value()?),
                "roam-day" => config.roam_day = parse_duration(&value()?, Unit::Days)?,
                other => return Err(format!("unknown flag --{other} (see floatd --help)")),
            }
        }
        config.vendor_keys.extend(vendor_keys_from_flags);
        config.validate()?;
        Ok(Some(config))
    }

    /// The other server's peer port as a reread finds it: the config files
    /// read again, in order (each must still load), then `--peer`, which
    /// wins as it did at start. `None` when neither names one.
    pub fn reread_peer(&self) -> Result<Option<String>, String> {
        let mut fresh = Config::default();
        for path in &self.config_files {
            fresh.apply_file(path)?;
        }
        Ok(self.peer_flag.clone().or(fresh.peer))
    }

    fn apply_file(&mut self, path: &std::path::Path) -> Result<(), String> {
        let text = crate::files::read_regular_text(path, MAX_CONFIG_BYTES)
            .map_err(|e| format!("config file {}: {e}", path.display()))?;
        self.apply_toml(&text)
            .map_err(|e| format!("config file {}: {e}", path.display()))
    }

    /// Applies the keys of a TOML config text.
    pub fn apply_toml(&mut self, text: &str) -> Result<(), String> {
        let file: FileConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        macro_rules! set {
            ($field:ident) => {
                if let Some(v) = file.$field {
                    self.$field = v.into();
                }
            };
            ($field:ident, $key:ident, $unit:expr) => {
                if let Some(v) = file.$key {
                    self.$field = duration_value(v, $unit)
                        .map_err(|e| format!("{}: {e}", stringify!($key)))?;
                }
            };
        }
        if let Some(v) = file.license {
            self.license = Some(v);
        }
        if let Some(keys) = file.vendor_key {
            self.vendor_keys = keys;
        }
        set!(bind);
        if let Some(p) = file.port {
            self.port = Some(p);
        }
        if let Some(v) = file.state_dir {
            self.state_dir = Some(v);
        }
        if let Some(v) = file.options {
            self.options = Some(v);
        }
        set!(lease, lease, Unit::Secs);
        set!(max_connections);
        set!(max_checkouts_per_client);
        if let Some(v) = file.admin_token_file {
            self.admin_token_file = Some(v);
        }
        set!(admin_token_always);
        if let Some(d) = file.durability {
            self.durability = durability(&d)?;
        }
        set!(idle_timeout, idle_timeout, Unit::Secs);
        if let Some(r) = file.role {
            self.role = Role::parse(&r)?;
        }
        if let Some(v) = file.peer {
            self.peer = Some(v);
        }
        if let Some(v) = file.peer_secret_file {
            self.peer_secret_file = Some(v);
        }
        if let Some(v) = file.peer_listen {
            self.peer_listen = Some(v);
        }
        if let Some(v) = file.witness {
            self.witness = Some(v);
        }
        set!(ping_interval, ping_interval, Unit::Millis);
        set!(takeover_after, takeover_after, Unit::Millis);
        set!(sync_timeout, sync_timeout, Unit::Millis);
        set!(fence_after, fence_after, Unit::Millis);
        set!(backup_max, backup_max_days, Unit::Days);
        set!(backup_lost_after, backup_lost_after_days, Unit::Days);
        if let Some(v) = file.http {
            self.http = Some(v);
        }
        if let Some(v) = file.advertise {
            self.advertise = Some(v);
        }
        set!(roam_day, roam_day, Unit::Days);
        Ok(())
    }

    /// Checks settings that only make sense together.
    pub fn validate(&self) -> Result<(), String> {
        if self.lease < Duration::from_secs(1) {
            return Err("lease must be at least 1s".into());
        }
        if self.roam_day < Duration::from_secs(1) || self.roam_day > Duration::from_secs(86_400) {
            return Err(
                "roam_day must be from 1s to 1d (shorter than a day for tests only)".into(),
            );
        }
        if self.max_connections == 0 {
            return Err("max_connections must be at least 1".into());
        }
        match self.role {
            Role::Primary | Role::Backup => {
                if self.peer.is_none() {
                    return Err(format!("--role {} needs --peer HOST:PORT", self.role));
                }
                if self.peer_secret_file.is_none() {
                    return Err(format!(
                        "--role {} needs --peer-secret-file FILE",
                        self.role
                    ));
                }
            }
            Role::Witness => {
                if self.peer_listen.is_none() || self.peer_secret_file.is_none() {
                    return Err(
                        "--role witness needs --peer-listen ADDR:PORT and --peer-secret-file FILE"
                            .into(),
                    );
                }
            }
            Role::Standalone => {}
        }
        if self.witness.is_some() && self.fence_after >= self.takeover_after {
            return Err(format!(
                "fence_after ({:?}) must be shorter than takeover_after ({:?}): an active server must stop granting before the other may take over",
                self.fence_after, self.takeover_after
            ));
        }
        Ok(())
    }
}

fn parse_num<T: std::str::FromStr>(flag: &str, text: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("--{flag}: {text:?} is not a valid number"))
}

#[cfg(test)]
mod tests;
