//! The client fleet: one thread per client, each with its own
//! `floatd::client::Client` (the library vendors ship) that checks a seat
//! out, heartbeats it, holds it for a random time and checks it in, again
//! and again. Every request and its outcome is recorded for the checks;
//! so are the library's own "lost" events.
//!
//! Half the clients list the primary first, half the backup, as two
//! differently configured sites would: in a split, both servers get asked.

use super::history::{Obs, Op, Outcome};
use super::rng::Rng;
use crate::client::{Client, ClientConfig, ClientError, ClientEvent, Identity};
use crate::licence::Version;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Everything observed, timed from the start of the run.
pub struct Recorder {
    pub start: Instant,
    obs: Mutex<Vec<Obs>>,
}

impl Recorder {
    pub fn new(start: Instant) -> Recorder {
        Recorder {
            start,
            obs: Mutex::new(Vec::new()),
        }
    }

    pub fn since(&self, t: Instant) -> Duration {
        t.saturating_duration_since(self.start)
    }

    pub fn push(&self, o: Obs) {
        self.obs.lock().unwrap_or_else(|p| p.into_inner()).push(o);
    }

    pub fn take(&self) -> Vec<Obs> {
        let mut v = self.obs.lock().unwrap_or_else(|p| p.into_inner()).clone();
        v.sort_by_key(|o| (o.sent, o.got));
        v
    }
}

/// What the clients do now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Check out, hold, check in.
    Churn = 0,
    /// Keep held seats (heartbeating), take no new ones.
    Hold = 1,
    /// Check held seats in, then idle.
    Return = 2,
    Stop = 3,
}

pub struct FleetSpec {
    pub servers: Vec<String>,
    pub clients: usize,
    pub feature: String,
    pub seed: u64,
    pub heartbeat_every: Duration,
    /// A client holds a seat this long, at random.
    pub hold: (Duration, Duration),
    /// Nothing runs past this.
    pub deadline: Instant,
}

pub struct Fleet {
    phase: Arc<AtomicU8>,
    /// The seat each client holds now.
    held: Arc<Mutex<Vec<Option<String>>>>,
    threads: Vec<JoinHandle<()>>,
}

impl Fleet {
    pub fn start(spec: FleetSpec, rec: Arc<Recorder>) -> Fleet {
        let phase = Arc::new(AtomicU8::new(Phase::Churn as u8));
        let held = Arc::new(Mutex::new(vec![None; spec.clients]));
        let spec = Arc::new(spec);
        let threads = (0..spec.clients)
            .map(|i| {
                let (spec, rec, phase, held) =
                    (spec.clone(), rec.clone(), phase.clone(), held.clone());
                std::thread::Builder::new()
                    .name(format!("chaos-client-{i}"))
                    .spawn(move || run_client(i, &spec, &rec, &phase, &held))
                    .expect("spawn client thread")
            })
            .collect();
        Fleet {
            phase,
            held,
            threads,
        }
    }

    pub fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::SeqCst);
    }

    /// The seats the clients hold now.
    pub fn held(&self) -> Vec<String> {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        held.iter().flatten().cloned().collect()
    }

    pub fn stop(self) {
        self.set_phase(Phase::Stop);
        for t in self.threads {
            let _ = t.join();
        }
    }
}

fn phase_of(p: &AtomicU8) -> Phase {
    match p.load(Ordering::SeqCst) {
        0 => Phase::Churn,
        1 => Phase::Hold,
        2 => Phase::Return,
        _ => Phase::Stop,
    }
}

fn outcome(r: &Result<(), ClientError>) -> Outcome {
    match r {
        Ok(()) => Outcome::Ok,
        Err(ClientError::Denied { code_text, .. }) => Outcome::Refused(code_text.clone()),
        Err(e) => Outcome::NoAnswer(e.to_string()),
    }
}

/// One client: a loop bounded by the deadline (and a step count).
fn run_client(
    i: usize,
    spec: &FleetSpec,
    rec: &Arc<Recorder>,
    phase: &AtomicU8,
    held: &Mutex<Vec<Option<String>>>,
) {
    let mut servers = spec.servers.clone();
    if i % 2 == 1 {
        servers.reverse();
    }
    let mut config = ClientConfig::new(
        servers,
        Identity {
            client: format!("chaos-{i}"),
            user: format!("u{i}"),
            host: format!("h{i}"),
        },
    );
    config.io_timeout = Duration::from_millis(1500);
    config.failover_timeout = Duration::from_secs(6);
    let client = Client::new(config);
    {
        let rec = rec.clone();
        client.on_event(move |e| {
            if let ClientEvent::Lost { handle, reason } = e {
                let t = rec.since(Instant::now());
                rec.push(Obs {
                    client: i,
                    op: Op::Lost,
                    handle: Some(handle.clone()),
                    sent: t,
                    got: t,
                    outcome: Outcome::Refused(reason.clone()),
                });
            }
        });
    }
    let mut rng = Rng::derive(spec.seed, 1000 + i as u64);
    let version = Version::parse("1.0").expect("a version");
    let set_held = |h: Option<String>| held.lock().unwrap_or_else(|p| p.into_inner())[i] = h;
    let record = |op, handle: Option<&str>, sent: Instant, outcome| {
        rec.push(Obs {
            client: i,
            op,
            handle: handle.map(str::to_string),
            sent: rec.since(sent),
            got: rec.since(Instant::now()),
            outcome,
        })
    };
    // (handle, return it at, next heartbeat at)
    let mut seat: Option<(String, Instant, Instant)> = None;
    let mut next_try = Instant::now() + rng.between(Duration::ZERO, Duration::from_secs(1));
    for _step in 0..10_000_000u64 {
        let now = Instant::now();
        let phase = phase_of(phase);
        if phase == Phase::Stop || now > spec.deadline {
            break;
        }
        match seat.take() {
            Some((handle, until, _))
                if phase == Phase::Return || (phase == Phase::Churn && now >= until) =>
            {
                let r = client.checkin(&handle);
                record(Op::Checkin, Some(&handle), now, outcome(&r));
                set_held(None);
                next_try =
                    Instant::now() + rng.between(Duration::ZERO, Duration::from_millis(1500));
            }
            Some((handle, until, beat)) if now >= beat => {
                let r = client.heartbeat(&handle);
                let o = outcome(&r);
                record(Op::Heartbeat, Some(&handle), now, o.clone());
                if matches!(o, Outcome::Refused(_)) {
                    // Gone: the library dropped it too.
                    set_held(None);
                } else {
                    seat = Some((handle, until, Instant::now() + spec.heartbeat_every));
                }
            }
            Some(s) => seat = Some(s),
            None if phase == Phase::Churn && now >= next_try => {
                match client.checkout(&spec.feature, &version, 1) {
                    Ok(s) => {
                        record(Op::Checkout, Some(&s.handle), now, Outcome::Ok);
                        set_held(Some(s.handle.clone()));
                        let until = Instant::now() + rng.between(spec.hold.0, spec.hold.1);
                        seat = Some((s.handle, until, Instant::now() + spec.heartbeat_every));
                    }
                    Err(e) => {
                        record(Op::Checkout, None, now, outcome(&Err(e)));
                        next_try = Instant::now()
                            + rng.between(Duration::from_millis(200), Duration::from_millis(800));
                    }
                }
            }
            None => {}
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
