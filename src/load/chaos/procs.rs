//! The real `floatd` processes of a run, each in its own network namespace
//! (`ip netns exec NS floatd ...`, which execs floatd, so the pid is
//! floatd's): start, SIGKILL, SIGSTOP/SIGCONT, SIGTERM, and what /proc says
//! about them (CPU time, memory, threads, open files). Every process is
//! killed when its [`Server`] drops, on every exit path of the run.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a start may take on a loaded machine.
const START_PATIENCE: Duration = Duration::from_secs(30);

pub struct Server {
    pub name: &'static str,
    netns: String,
    binary: PathBuf,
    args: Vec<String>,
    log_dir: PathBuf,
    child: Option<Child>,
    pub starts: u32,
    /// Frozen by SIGSTOP (so the run can wake it before it ends).
    pub frozen: bool,
}

impl Server {
    pub fn new(
        name: &'static str,
        netns: &str,
        binary: PathBuf,
        args: Vec<String>,
        log_dir: PathBuf,
    ) -> Server {
        Server {
            name,
            netns: netns.to_string(),
            binary,
            args,
            log_dir,
            child: None,
            starts: 0,
            frozen: false,
        }
    }

    /// Starts the process and waits until it says it listens.
    pub fn start(&mut self) -> Result<(), String> {
        self.starts += 1;
        let log = self
            .log_dir
            .join(format!("{}-{}.log", self.name, self.starts));
        let log_file = std::fs::File::create(&log).map_err(|e| format!("{log:?}: {e}"))?;
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.netns])
            .arg(&self.binary)
            .args(&self.args)
            .env(
                "RUST_LOG",
                std::env::var("FLOATD_CHAOS_LOG").unwrap_or("info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("start {}: {e}", self.name))?;
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        self.child = Some(child);
        self.frozen = false;
        let deadline = Instant::now() + START_PATIENCE;
        loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(line)
                    if line.starts_with("floatd listening on")
                        || line.starts_with("floatd witness on") =>
                {
                    return Ok(())
                }
                Ok(_) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                    return Err(format!("{} exited at start; see {log:?}", self.name))
                }
                Err(_) if Instant::now() > deadline => {
                    return Err(format!("{} did not start in time; see {log:?}", self.name))
                }
                Err(_) => {}
            }
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    pub fn running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }

    fn signal(&self, sig: &str) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .args([&format!("-{sig}"), &pid.to_string()])
                .status();
        }
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.frozen = false;
    }

    pub fn freeze(&mut self) {
        self.signal("STOP");
        self.frozen = true;
    }

    pub fn thaw(&mut self) {
        self.signal("CONT");
        self.frozen = false;
    }

    /// SIGTERM and wait for a clean exit (SIGKILL after 15 s).
    pub fn stop(&mut self) -> Option<std::process::ExitStatus> {
        if self.frozen {
            self.thaw();
        }
        self.signal("TERM");
        let child = self.child.as_mut()?;
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill9();
        None
    }

    /// What /proc says about the process now.
    pub fn probe(&self) -> Option<Probe> {
        self.pid().and_then(probe)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.frozen {
            self.thaw();
        }
        self.kill9();
    }
}

/// One look at a process in /proc.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Probe {
    /// User + system CPU time, in clock ticks (1/100 s).
    pub cpu_ticks: u64,
    pub rss_kib: u64,
    pub threads: u64,
    pub fds: u64,
}

pub fn probe(pid: u32) -> Option<Probe> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is 3rd.
    let rest: Vec<&str> = stat.rsplit_once(") ")?.1.split_whitespace().collect();
    let field = |n: usize| rest.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let get = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some(Probe {
        cpu_ticks: field(14)? + field(15)?,
        rss_kib: get("VmRSS:").unwrap_or(0),
        threads: get("Threads:").unwrap_or(0),
        fds,
    })
}

/// CPU use between two probes, in percent of one core.
pub fn cpu_percent(before: &Probe, after: &Probe, elapsed: Duration) -> f64 {
    let ticks = after.cpu_ticks.saturating_sub(before.cpu_ticks) as f64;
    ticks / 100.0 / elapsed.as_secs_f64().max(1e-3) * 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_this_process() {
        let a = probe(std::process::id()).expect("own /proc");
        assert!(a.rss_kib > 0 && a.threads >= 1 && a.fds >= 3);
        // Spin until the kernel has counted some CPU time (10 ms ticks).
        let start = Instant::now();
        let mut b = a;
        while b.cpu_ticks == a.cpu_ticks && start.elapsed() < Duration::from_secs(20) {
            let spin = Instant::now();
            while spin.elapsed() < Duration::from_millis(20) {
                std::hint::black_box(0u64);
            }
            b = probe(std::process::id()).unwrap();
        }
        assert!(b.cpu_ticks > a.cpu_ticks);
        assert!(cpu_percent(&a, &b, start.elapsed()) > 0.0);
    }
}
