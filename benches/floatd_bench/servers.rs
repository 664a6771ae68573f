//! The processes the bench starts and talks to: a signed bench licence,
//! floatd children (killed on drop), floatd-load runs, and the waits with
//! deadlines around them.

use crate::{floatd_binary, FLOATCTL, LOAD};
use floatd::load::Report;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A throwaway vendor key and a licence signed with it.
pub struct Site {
    pub dir: tempfile::TempDir,
    pub licence: PathBuf,
    pub vendor_pub: PathBuf,
}

impl Site {
    /// `features` FEATURE lines (f0, f1, ... or just `cad` for one) of `seats` each.
    pub fn new(features: usize, seats: u64) -> Site {
        let dir = tempfile::tempdir().expect("temp dir");
        let keys = dir.path().join("keys");
        std::fs::create_dir(&keys).unwrap();
        run_ok(Command::new(FLOATCTL).args(["keygen", "--out", keys.to_str().unwrap()]));
        let mut text = String::from(
            "SERVER lic1 hostid=any port=27000\nFAILOVER lic2 hostid=any port=27001\n",
        );
        if features == 1 {
            text.push_str(&format!(
                "FEATURE cad version=2.0 count={seats} expires=permanent\n"
            ));
        } else {
            for i in 0..features {
                text.push_str(&format!(
                    "FEATURE f{i} version=1.0 count={seats} expires=2099-12-31 customer=\"Bench Ltd\"\n"
                ));
            }
        }
        let unsigned = dir.path().join("site.unsigned");
        std::fs::write(&unsigned, text).unwrap();
        let signed = run_ok(Command::new(FLOATCTL).args([
            "sign",
            "--key",
            keys.join("vendor.key").to_str().unwrap(),
            unsigned.to_str().unwrap(),
        ]));
        let licence = dir.path().join("site.lic");
        std::fs::write(&licence, signed).unwrap();
        Site {
            licence,
            vendor_pub: keys.join("vendor.pub"),
            dir,
        }
    }
}

pub fn run_ok(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.stdin(Stdio::null()).output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A floatd child, killed on drop.
pub struct Floatd {
    child: Child,
    pub addr: String,
}

impl Floatd {
    pub fn start(site: &Site, extra: &[&str], state: &str) -> Floatd {
        let state = site.dir.path().join(format!("state-{state}"));
        let _ = std::fs::remove_dir_all(&state);
        let mut cmd = Command::new(floatd_binary());
        cmd.args(["--license", site.licence.to_str().unwrap()])
            .args(["--vendor-key", site.vendor_pub.to_str().unwrap()])
            .args(["--state-dir", state.to_str().unwrap()])
            .args(["--bind", "127.0.0.1", "--port", "0"])
            .args(extra);
        Floatd::spawn(cmd, "floatd listening on ", None, Duration::from_secs(20))
            .expect("floatd starts")
    }

    /// Spawns `cmd` and waits up to `within` for its stdout line starting
    /// with `ready` (`floatd listening on `, or `floatd witness on ` for a
    /// witness), whose rest is the address. Warnings and errors go to
    /// `log` when given.
    pub fn spawn(
        mut cmd: Command,
        ready: &str,
        log: Option<&Path>,
        within: Duration,
    ) -> Result<Floatd, String> {
        let stderr = match log {
            Some(path) => Stdio::from(std::fs::File::create(path).map_err(|e| e.to_string())?),
            None => Stdio::null(),
        };
        let mut child = cmd
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .map_err(|e| format!("spawn {cmd:?}: {e}"))?;
        match wait_for_line(&mut child, ready, within) {
            Some(addr) => Ok(Floatd { child, addr }),
            None => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!("{cmd:?} did not start listening"))
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Floatd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads the child's stdout until a line starting with `prefix`; returns
/// the rest of it. Keeps draining stdout afterwards in the background.
pub fn wait_for_line(child: &mut Child, prefix: &str, within: Duration) -> Option<String> {
    let stdout = child.stdout.take()?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                if let Some(rest) = line.strip_prefix(prefix) {
                    return Some(rest.trim().to_string());
                }
            }
            Err(_) => return None,
        }
    }
}

/// Runs floatd-load with `--json` against `addr`; `None` when it failed.
pub fn load(addr: &str, args: &[&str], secs: f64) -> Option<Report> {
    let mut cmd = Command::new(LOAD);
    cmd.args(["--server", addr, "--json", "--quiet"]).args(args);
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .ok()?;
    let out = wait_output(child, Duration::from_secs_f64(secs + 30.0))?;
    match serde_json::from_slice::<Report>(&out) {
        Ok(r) => Some(r),
        Err(e) => {
            eprintln!("floatd bench: floatd-load {args:?}: {e}");
            None
        }
    }
}

/// The child's stdout, or `None` (child killed) past `within`.
pub fn wait_output(mut child: Child, within: Duration) -> Option<Vec<u8>> {
    let mut stdout = child.stdout.take()?;
    let reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut buf);
        buf
    });
    let deadline = Instant::now() + within;
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            return reader.join().ok();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("floatd bench: a child ran past its deadline and was killed");
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// The greeting line a server sends on connect.
pub fn greeting_of(addr: &str) -> Option<String> {
    let stream = std::net::TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).ok()?;
    Some(line.trim_end().to_string())
}
