//! `floatd-load chaos`: the reliability run in real network namespaces.
//!
//! scripts/chaos.sh makes the namespaces and links and runs this inside
//! the clients' namespace. It starts the real `floatd` binaries (primary,
//! backup and, in witness mode, the witness) each in its own namespace,
//! drives a fleet of clients through the client library, carries out a
//! seeded fault schedule, checks what the clients observed, and reports.
//! docs/RELIABILITY.md says what each check means.
//!
//! - [`schedule`]: the seeded fault schedule (pure).
//! - [`history`], [`availability`]: the checks over what clients saw (pure).
//! - [`fleet`]: the clients; [`watch`]: the servers' status meanwhile.
//! - [`net`]: link faults; [`procs`]: the server processes; [`site`]: keys,
//!   licence and command lines; [`floods`]: strangers at every port.
//! - [`run`]: one run, start to end; [`report`]: what it prints.

pub mod availability;
pub mod fleet;
pub mod floods;
pub mod history;
pub mod net;
pub mod procs;
pub mod report;
pub mod rng;
pub mod run;
pub mod schedule;
pub mod site;
pub mod watch;

use schedule::Mode;
use site::ServerTimings;
use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

pub const USAGE: &str = "\
usage: floatd-load chaos --ns-prefix P --work-dir DIR [options]
  (run by scripts/chaos.sh inside the clients' namespace; see docs/RELIABILITY.md)

  --seed N               the schedule's seed (default: from the clock; printed)
  --duration S           seconds of faults (default 60)
  --mode M               witness (default) or two-server
  --clients N            fleet clients (default 10), contending for
  --count N              seats of the feature (default 4)
  --lease D              seat lease (default 10s)
  --ping-interval D      (default 500ms)   --takeover-after D   (default 3s)
  --fence-after D        (default 2s)      --sync-timeout D     (default 250ms)
  --floods               strangers at every port of both servers meanwhile
  --soak                 repeated failovers and failbacks instead of the random
                         schedule, with --hold-clients N (default 2000) holders
  --cpu-limit PCT        most CPU a server may use idle after the run (default 25)
";

#[derive(Clone, Debug)]
pub struct Options {
    pub seed: u64,
    pub duration: Duration,
    pub mode: Mode,
    pub prefix: String,
    pub work_dir: PathBuf,
    pub clients: usize,
    pub count: u32,
    pub timings: ServerTimings,
    pub floods: bool,
    pub soak: bool,
    pub hold_clients: usize,
    pub cpu_limit: f64,
}

impl Options {
    pub fn parse(args: Vec<OsString>) -> Result<Option<Options>, String> {
        use super::options::duration;
        use lexopt::prelude::*;
        let clock = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64 % 1_000_000);
        let mut o = Options {
            seed: clock,
            duration: Duration::from_secs(60),
            mode: Mode::Witness,
            prefix: String::new(),
            work_dir: PathBuf::new(),
            clients: 10,
            count: 4,
            timings: ServerTimings {
                ping_interval: Duration::from_millis(500),
                takeover_after: Duration::from_secs(3),
                fence_after: Duration::from_secs(2),
                sync_timeout: Duration::from_millis(250),
                lease: Duration::from_secs(10),
            },
            floods: false,
            soak: false,
            hold_clients: 2000,
            cpu_limit: 25.0,
        };
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
            let number = |flag: &str, t: String| -> Result<u64, String> {
                t.trim()
                    .parse()
                    .map_err(|_| format!("--{flag}: {t:?} is not a number"))
            };
            let t = &mut o.timings;
            match name.as_str() {
                "help" | "h" => return Ok(None),
                "seed" => o.seed = number("seed", text()?)?,
                "duration" => o.duration = duration("duration", &text()?)?,
                "mode" => o.mode = Mode::parse(&text()?)?,
                "ns-prefix" => o.prefix = text()?,
                "work-dir" => o.work_dir = text()?.into(),
                "clients" => o.clients = number("clients", text()?)? as usize,
                "count" => o.count = number("count", text()?)? as u32,
                "lease" => t.lease = duration("lease", &text()?)?,
                "ping-interval" => t.ping_interval = duration("ping-interval", &text()?)?,
                "takeover-after" => t.takeover_after = duration("takeover-after", &text()?)?,
                "fence-after" => t.fence_after = duration("fence-after", &text()?)?,
                "sync-timeout" => t.sync_timeout = duration("sync-timeout", &text()?)?,
                "floods" => o.floods = true,
                "soak" => o.soak = true,
                "hold-clients" => o.hold_clients = number("hold-clients", text()?)? as usize,
                "cpu-limit" => o.cpu_limit = number("cpu-limit", text()?)? as f64,
                other => return Err(format!("unknown option {other:?} (see --help)")),
            }
        }
        if o.prefix.is_empty() || o.work_dir.as_os_str().is_empty() {
            return Err(
                "--ns-prefix and --work-dir are required (scripts/chaos.sh gives them)".into(),
            );
        }
        if o.clients == 0 || o.count == 0 || o.hold_clients == 0 {
            return Err("--clients, --count and --hold-clients must be at least 1".into());
        }
        if o.timings.lease < Duration::from_secs(1) {
            return Err("--lease must be at least 1s".into());
        }
        Ok(Some(o))
    }
}

/// `floatd-load chaos ...`; returns the exit code: 0 when every check
/// held, 1 when one failed, 2 when the run itself could not be made.
pub fn main(args: Vec<OsString>) -> i32 {
    let o = match Options::parse(args) {
        Ok(Some(o)) => o,
        Ok(None) => {
            print!("{USAGE}");
            return 0;
        }
        Err(e) => {
            eprintln!("floatd-load chaos: {e}");
            return 2;
        }
    };
    match run::run(&o) {
        Ok(report) => {
            print!("{}", report.render());
            let json = o.work_dir.join("report.json");
            let text = serde_json::to_string_pretty(&report.to_json()).expect("report serialises");
            if let Err(e) = std::fs::write(&json, text) {
                eprintln!("floatd-load chaos: {json:?}: {e}");
            } else {
                println!("report: {}", json.display());
            }
            if report.all_failures().is_empty() {
                0
            } else {
                1
            }
        }
        Err(e) => {
            eprintln!("floatd-load chaos: {e}");
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_need_the_namespaces_and_take_every_timing() {
        let parse = |a: &[&str]| Options::parse(a.iter().map(OsString::from).collect());
        assert!(parse(&["--seed", "3"]).is_err());
        let o = parse(&[
            "--ns-prefix",
            "fc1",
            "--work-dir",
            "/tmp/x",
            "--seed",
            "3",
            "--mode",
            "two-server",
            "--duration",
            "90",
            "--takeover-after",
            "1s",
            "--lease",
            "4s",
            "--floods",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(
            (o.seed, o.mode, o.duration.as_secs()),
            (3, Mode::TwoServer, 90)
        );
        assert_eq!(o.timings.takeover_after, Duration::from_secs(1));
        assert_eq!(o.timings.lease, Duration::from_secs(4));
        assert!(o.floods && !o.soak);
        assert!(parse(&["--ns-prefix", "a", "--work-dir", "b", "--mode", "x"]).is_err());
    }
}
