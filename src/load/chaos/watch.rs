//! Looking at the servers from the clients' namespace while the run goes
//! on: a STATUS (as admin, so seats show their handles) every second from
//! each server, kept as [`Sample`]s for the ghost check.

use super::fleet::Recorder;
use super::history::Sample;
use crate::protocol::StatusReport;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// One server's STATUS, after presenting the admin token.
pub fn status(addr: &str, token: &str, within: Duration) -> Result<StatusReport, String> {
    let sock = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let stream = TcpStream::connect_timeout(&sock, within).map_err(|e| format!("{addr}: {e}"))?;
    stream.set_read_timeout(Some(within)).ok();
    stream.set_write_timeout(Some(within)).ok();
    let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
    let mut next = |what: &str| -> Result<String, String> {
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) => return Err(format!("{addr}: closed before {what}")),
                Ok(_) if line.starts_with('*') => continue,
                Ok(_) => return Ok(line.trim_end().to_string()),
                Err(e) => return Err(format!("{addr}: {what}: {e}")),
            }
        }
    };
    let greeting = next("the greeting")?;
    if !greeting.starts_with("FLOATD") {
        return Err(format!("{addr}: greeting {greeting:?}"));
    }
    (&stream)
        .write_all(format!("AUTH {token}\nSTATUS holders=all\n").as_bytes())
        .map_err(|e| format!("{addr}: {e}"))?;
    let auth = next("the AUTH reply")?;
    if !auth.starts_with("OK") {
        return Err(format!("{addr}: AUTH: {auth}"));
    }
    let reply = next("the STATUS reply")?;
    let json = reply
        .strip_prefix("STATUS ")
        .ok_or_else(|| format!("{addr}: status reply {reply:?}"))?;
    serde_json::from_str(json).map_err(|e| format!("{addr}: status JSON: {e}"))
}

/// Seat ids listed in a report (status shows no handles: compare with
/// `crate::ledger::seat_id` of a handle), with seconds until each returns.
pub fn holders(report: &StatusReport) -> Vec<(String, u64)> {
    report
        .features
        .iter()
        .flat_map(|f| f.holders.iter())
        .map(|h| (h.seat.clone(), h.returns_in_secs))
        .collect()
}

/// Polls every server each second until stopped (or `deadline`).
pub struct Poller {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    thread: Option<JoinHandle<()>>,
}

impl Poller {
    pub fn start(
        servers: Vec<(String, String)>,
        token: String,
        rec: Arc<Recorder>,
        deadline: Instant,
    ) -> Poller {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (s, out) = (stop.clone(), samples.clone());
        let thread = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) && Instant::now() < deadline {
                let round = Instant::now();
                for (name, addr) in &servers {
                    let sent = Instant::now();
                    if let Ok(r) = status(addr, &token, Duration::from_millis(800)) {
                        out.lock().unwrap_or_else(|p| p.into_inner()).push(Sample {
                            server: name.clone(),
                            sent: rec.since(sent),
                            state: r.state.clone(),
                            holders: holders(&r),
                        });
                    }
                }
                let next = round + Duration::from_secs(1);
                while Instant::now() < next && !s.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        });
        Poller {
            stop,
            samples,
            thread: Some(thread),
        }
    }

    pub fn finish(mut self) -> Vec<Sample> {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        std::mem::take(&mut *self.samples.lock().unwrap_or_else(|p| p.into_inner()))
    }
}
