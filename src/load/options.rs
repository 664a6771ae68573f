//! Command-line options of `floatd-load`.

use std::ffi::OsString;
use std::time::Duration;

pub const USAGE: &str = "\
usage: floatd-load [--server LIST] [--clients N] [--threads M] [--duration S] [options]
       floatd-load --null-server ADDR [--resp] [--duration S]
       floatd-load chaos --help        (the reliability run: scripts/chaos.sh)

Runs N client connections over M threads against floatd for a bounded time
and reports throughput, latency percentiles, errors and seats held.

  --server LIST            host:port[,host:port]... (default $FLOATD_SERVERS, else 127.0.0.1:27000)
  --clients N              connections (default 1), each with its own client id, user and host
  --threads M              client threads, each with its own poller (default: cores, at most N)
  --duration S             seconds to run (default 10; also 500ms, 2m)
  --feature F              feature to check out (default: the first counted one in STATUS)
  --version V              version to ask for (default: any)
  --mix MIX                checkout-checkin (default): check out then in, again and again
                           hold: check out one seat per slot, heartbeat it until the end
                           heartbeat: check out one seat per slot, heartbeat it back to back
  --pipeline P             requests in flight per connection (default 1)
  --rate R                 at most R requests per second in all (default: as fast as answered)
  --heartbeat-every D      hold mix: heartbeat interval (default: a third of the lease)
  --json                   print the report as one JSON object on stdout
  --quiet                  no progress line each second on stderr
  --user-prefix P          user names are P0, P1, ... (default load-u)
  --host-prefix P          host names are P0, P1, ... (default load-h)
  --client-prefix P        client ids are P-0, P-1, ... (default load-PID)
  --no-checkin             leave held seats held at the end (default: check them in)
  --connect-burst N        connections opening at once per thread (default 256)
  --server-pid PID         report this process's RSS as the server's (default: found from
                           the first server's port when it listens on this host)
  --kill-primary-after S   failover mode: kill the primary S seconds into the run
  --primary-pid PID        the process to kill (SIGKILL)
  --failover-cmd CMD       run `sh -c CMD` at that time too (or instead)
  --null-server ADDR       serve canned replies on ADDR instead (client-cost check); with
                           --resp it answers RESP (redis-benchmark) with :1
";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mix {
    CheckoutCheckin,
    Hold,
    Heartbeat,
}

impl Mix {
    pub fn as_str(self) -> &'static str {
        match self {
            Mix::CheckoutCheckin => "checkout-checkin",
            Mix::Hold => "hold",
            Mix::Heartbeat => "heartbeat",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Options {
    pub servers: Vec<String>,
    pub clients: usize,
    pub threads: usize,
    pub duration: Duration,
    /// `--duration` was given (the null server otherwise runs until killed).
    pub duration_given: bool,
    pub feature: Option<String>,
    pub version: Option<String>,
    pub mix: Mix,
    pub pipeline: usize,
    pub rate: Option<f64>,
    pub heartbeat_every: Option<Duration>,
    pub json: bool,
    pub quiet: bool,
    pub user_prefix: String,
    pub host_prefix: String,
    pub client_prefix: String,
    pub checkin_at_end: bool,
    pub connect_burst: usize,
    pub server_pid: Option<u32>,
    pub kill_primary_after: Option<Duration>,
    pub primary_pid: Option<u32>,
    pub failover_cmd: Option<String>,
    pub null_server: Option<String>,
    pub resp: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            servers: vec!["127.0.0.1:27000".into()],
            clients: 1,
            threads: 0,
            duration: Duration::from_secs(10),
            duration_given: false,
            feature: None,
            version: None,
            mix: Mix::CheckoutCheckin,
            pipeline: 1,
            rate: None,
            heartbeat_every: None,
            json: false,
            quiet: false,
            user_prefix: "load-u".into(),
            host_prefix: "load-h".into(),
            client_prefix: format!("load-{}", std::process::id()),
            checkin_at_end: true,
            connect_burst: 256,
            server_pid: None,
            kill_primary_after: None,
            primary_pid: None,
            failover_cmd: None,
            null_server: None,
            resp: false,
        }
    }
}

impl Options {
    /// True when the run kills the primary part-way.
    pub fn failover_mode(&self) -> bool {
        self.kill_primary_after.is_some()
    }

    /// Parses the arguments (without the program name); `Ok(None)` for --help.
    pub fn parse(args: Vec<OsString>) -> Result<Option<Options>, String> {
        use lexopt::prelude::*;
        let mut o = Options::default();
        if let Ok(list) = std::env::var("FLOATD_SERVERS") {
            let list = crate::client::parse_server_list(&list);
            if !list.is_empty() {
                o.servers = list;
            }
        }
        let mut threads_given = false;
        let mut p = lexopt::Parser::from_args(args);
        let err = |e: lexopt::Error| e.to_string();
        while let Some(arg) = p.next().map_err(err)? {
            let name = match arg {
                Long(l) => l.to_string(),
                Short(c) => c.to_string(),
                Value(v) => return Err(format!("unexpected argument {v:?}")),
            };
            let mut text = || -> Result<String, String> {
                p.value()
                    .map_err(err)?
                    .into_string()
                    .map_err(|v| format!("{v:?} is not UTF-8"))
            };
            match name.as_str() {
                "help" | "h" => return Ok(None),
                "server" | "servers" => {
                    o.servers = crate::client::parse_server_list(&text()?);
                    if o.servers.is_empty() {
                        return Err("--server needs host:port".into());
                    }
                }
                "clients" | "c" => o.clients = num("clients", &text()?)?,
                "threads" | "t" => {
                    o.threads = num("threads", &text()?)?;
                    threads_given = true;
                }
                "duration" | "d" => {
                    o.duration = duration("duration", &text()?)?;
                    o.duration_given = true;
                }
                "feature" => o.feature = Some(text()?),
                "version" => o.version = Some(text()?),
                "mix" => {
                    o.mix = match text()?.as_str() {
                        "checkout-checkin" | "checkout" => Mix::CheckoutCheckin,
                        "hold" => Mix::Hold,
                        "heartbeat" => Mix::Heartbeat,
                        other => {
                            return Err(format!(
                                "--mix {other:?}: expected checkout-checkin, hold or heartbeat"
                            ))
                        }
                    }
                }
                "pipeline" | "P" => o.pipeline = num("pipeline", &text()?)?,
                "rate" => {
                    let r: f64 = text()?
                        .parse()
                        .map_err(|_| "--rate: expected requests per second".to_string())?;
                    o.rate = (r > 0.0).then_some(r);
                }
                "heartbeat-every" => {
                    o.heartbeat_every = Some(duration("heartbeat-every", &text()?)?)
                }
                "json" => o.json = true,
                "quiet" | "q" => o.quiet = true,
                "user-prefix" => o.user_prefix = text()?,
                "host-prefix" => o.host_prefix = text()?,
                "client-prefix" => o.client_prefix = text()?,
                "no-checkin" => o.checkin_at_end = false,
                "connect-burst" => o.connect_burst = num("connect-burst", &text()?)?,
                "server-pid" => o.server_pid = Some(num("server-pid", &text()?)? as u32),
                "kill-primary-after" => {
                    o.kill_primary_after = Some(duration("kill-primary-after", &text()?)?)
                }
                "primary-pid" => o.primary_pid = Some(num("primary-pid", &text()?)? as u32),
                "failover-cmd" => o.failover_cmd = Some(text()?),
                "null-server" => o.null_server = Some(text()?),
                "resp" => o.resp = true,
                other => return Err(format!("unknown option {other:?} (see --help)")),
            }
        }
        if o.clients == 0 || o.pipeline == 0 || o.connect_burst == 0 {
            return Err("--clients, --pipeline and --connect-burst must be at least 1".into());
        }
        if o.pipeline > 4096 {
            return Err("--pipeline is at most 4096".into());
        }
        if !threads_given || o.threads == 0 {
            o.threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        }
        o.threads = o.threads.clamp(1, o.clients);
        if o.kill_primary_after.is_some() && o.primary_pid.is_none() && o.failover_cmd.is_none() {
            return Err(
                "--kill-primary-after needs --primary-pid PID or --failover-cmd CMD".into(),
            );
        }
        if o.kill_primary_after.is_none() && (o.primary_pid.is_some() || o.failover_cmd.is_some()) {
            return Err("--primary-pid and --failover-cmd need --kill-primary-after S".into());
        }
        for (what, p) in [
            ("user", &o.user_prefix),
            ("host", &o.host_prefix),
            ("client", &o.client_prefix),
        ] {
            if p.is_empty()
                || p.bytes()
                    .any(|b| b <= b' ' || b == b'"' || b == b'=' || b == b'\\')
            {
                return Err(format!(
                    "--{what}-prefix: must be non-empty, without spaces, quotes, '=' or '\\'"
                ));
            }
        }
        Ok(Some(o))
    }
}

fn num(flag: &str, text: &str) -> Result<usize, String> {
    text.trim()
        .replace('_', "")
        .parse()
        .map_err(|_| format!("--{flag}: {text:?} is not a number"))
}

/// `5`, `5s`, `1.5`, `500ms`, `2m`.
pub fn duration(flag: &str, text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60.0)
    } else {
        (t, 1.0)
    };
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("--{flag}: {text:?} is not a duration (5, 5s, 500ms, 2m)"))?;
    if !(value >= 0.0 && value * scale < 1e7) {
        return Err(format!("--{flag}: {text:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(value * scale))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Option<Options>, String> {
        Options::parse(args.iter().map(OsString::from).collect())
    }

    #[test]
    fn flags() {
        let o = parse(&[
            "--server",
            "a:1,b:2",
            "--clients",
            "64",
            "--threads",
            "2",
            "--duration",
            "500ms",
            "--mix",
            "hold",
            "--pipeline",
            "16",
            "--json",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(o.servers, vec!["a:1", "b:2"]);
        assert_eq!((o.clients, o.threads, o.pipeline), (64, 2, 16));
        assert_eq!(o.duration, Duration::from_millis(500));
        assert_eq!(o.mix, Mix::Hold);
        assert!(o.json);
        assert!(parse(&["--help"]).unwrap().is_none());
        assert!(parse(&["--mix", "nope"]).is_err());
        assert!(parse(&["--kill-primary-after", "2"]).is_err());
        assert!(parse(&["--user-prefix", "a b"]).is_err());
        // Never more threads than clients.
        let o = parse(&["--clients", "1", "--threads", "8"])
            .unwrap()
            .unwrap();
        assert_eq!(o.threads, 1);
    }

    #[test]
    fn durations() {
        assert_eq!(duration("d", "2").unwrap(), Duration::from_secs(2));
        assert_eq!(duration("d", "2m").unwrap(), Duration::from_secs(120));
        assert_eq!(duration("d", "1.5s").unwrap(), Duration::from_millis(1500));
        assert!(duration("d", "x").is_err());
        assert!(duration("d", "-1").is_err());
    }
}
