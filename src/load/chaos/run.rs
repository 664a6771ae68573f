//! One chaos (or soak) run, start to end: servers up, clients on, the
//! schedule carried out, everything healed, the end checks, the report.

use super::availability;
use super::fleet::{Fleet, FleetSpec, Phase, Recorder};
use super::floods::Floods;
use super::history::{self, Setup, Window};
use super::net::Net;
use super::procs::{cpu_percent, Probe, Server};
use super::report::{CpuFigure, EndCheck, Report, Resources};
use super::schedule::{self, Action, Fault, Mode, Node, Timings};
use super::site::{self, ServerTimings, Site, CLIENT_PORT};
use super::watch::{self, Poller};
use super::Options;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long the pair may take to settle after the faults.
const SETTLE_PATIENCE: Duration = Duration::from_secs(90);

pub struct Servers {
    pub map: BTreeMap<Node, Server>,
    pub mode: Mode,
}

impl Servers {
    fn nodes(&self) -> Vec<Node> {
        self.map.keys().copied().collect()
    }
}

/// Carries out the run described by `o`; returns its report.
pub fn run(o: &Options) -> Result<Report, String> {
    let timings = o.timings;
    let faults = if o.soak {
        schedule::soak(o.duration, schedule_timings(&timings))
    } else {
        schedule::generate(o.seed, o.mode, o.duration, schedule_timings(&timings))
    };
    eprintln!(
        "chaos: seed {} mode {} duration {}s, {} faults:",
        o.seed,
        o.mode.as_str(),
        o.duration.as_secs(),
        faults.len()
    );
    for f in &faults {
        eprintln!("  {f}");
    }
    let mut net = Net::new(&o.prefix);
    net.prepare()?;
    if !net.netem {
        eprintln!("chaos: NOTE this kernel has no netem (CONFIG_NET_SCH_NETEM): delay faults are reported as not run");
    }
    let site = Site::create(&o.work_dir, o.count)?;
    let mut servers = Servers {
        map: BTreeMap::new(),
        mode: o.mode,
    };
    let nodes: &[Node] = match o.mode {
        Mode::Witness => &[Node::Witness, Node::Primary, Node::Backup],
        Mode::TwoServer => &[Node::Primary, Node::Backup],
    };
    for &node in nodes {
        let mut s = Server::new(
            node.as_str(),
            &net.ns(node),
            site.floatd(),
            site.args(node, o.mode, &net, &timings),
            site.dir.clone(),
        );
        s.start()?;
        servers.map.insert(node, s);
    }
    let addrs: Vec<(String, String)> = [Node::Primary, Node::Backup]
        .iter()
        .map(|n| {
            (
                n.as_str().to_string(),
                format!("{}:{CLIENT_PORT}", net.addr(*n, None)),
            )
        })
        .collect();
    let mut report = Report::new(o, &faults, net.netem);
    if let Err(e) = wait_stable(&addrs, &site.token, o.mode) {
        return Err(format!("the pair did not start: {e}"));
    }
    let before: BTreeMap<Node, Probe> = servers
        .map
        .iter()
        .filter_map(|(n, s)| s.probe().map(|p| (*n, p)))
        .collect();
    let started_as: BTreeMap<Node, u32> = servers.map.iter().map(|(n, s)| (*n, s.starts)).collect();

    let start = Instant::now();
    let hard_end =
        start + o.duration + SETTLE_PATIENCE + o.timings.lease * 3 + Duration::from_secs(60);
    let rec = Arc::new(Recorder::new(start));
    let fleet = Fleet::start(
        FleetSpec {
            servers: addrs.iter().map(|a| a.1.clone()).collect(),
            clients: o.clients,
            feature: site::FEATURE.into(),
            seed: o.seed,
            heartbeat_every: Duration::from_secs(1),
            hold: (
                Duration::from_millis(300),
                o.timings.lease + Duration::from_secs(2),
            ),
            deadline: hard_end,
        },
        rec.clone(),
    );
    let poller = Poller::start(addrs.clone(), site.token.clone(), rec.clone(), hard_end);
    let floods = o
        .floods
        .then(|| Floods::start(&net, o.duration, rec.clone()));
    let load = o.soak.then(|| start_soak_load(&addrs, o));

    let windows = execute(&faults, &mut servers, &net, &rec, o, &site, &mut report);
    // Everything healed and woken, dead servers started again.
    for link in schedule::Link::ALL {
        let _ = net.heal(link);
    }
    for s in servers.map.values_mut() {
        if s.frozen {
            s.thaw();
        }
        if !s.running() {
            s.start()?;
        }
    }
    let healed = Instant::now();
    if let Err(e) = wait_stable(&addrs, &site.token, o.mode) {
        report.failures.push(format!(
            "the pair did not settle within {}s after the faults: {e}",
            SETTLE_PATIENCE.as_secs()
        ));
    }
    report.settled_after_secs = healed.elapsed().as_secs_f64();
    let floods = floods.map(|f| f.finish());
    std::thread::sleep(Duration::from_secs(3));
    // Hold: no new seats; what the clients hold must be what the server holds
    // once every orphan of an unanswered checkout has run out (one lease).
    fleet.set_phase(Phase::Hold);
    std::thread::sleep(o.timings.lease + Duration::from_secs(2));
    report.end = Some(end_check(&fleet, &addrs, &site.token));
    fleet.set_phase(Phase::Return);
    let returned = Instant::now() + Duration::from_secs(15);
    while !fleet.held().is_empty() && Instant::now() < returned {
        std::thread::sleep(Duration::from_millis(100));
    }
    fleet.stop();
    if let Some(load) = load {
        report.soak_load = load.join().ok();
    }
    // Quiet: nothing asks anything; no server may spin.
    std::thread::sleep(Duration::from_secs(1));
    report.quiet_cpu = quiet_cpu(&servers, Duration::from_secs(3));
    for (node, pct) in &report.quiet_cpu {
        if *pct > o.cpu_limit {
            report.failures.push(format!(
                "{node} used {pct:.0}% of a core while idle after the run (limit {:.0}%): spinning",
                o.cpu_limit
            ));
        }
    }
    report.resources = resources(&servers, &before, &started_as);
    report.after_return = after_return(&addrs, &site.token, &rec);
    let samples = poller.finish();
    report.state_files = state_files(&site);
    let obs = rec.take();
    let setup = Setup {
        mode: o.mode,
        count: o.count,
        lease: o.timings.lease,
        settle: o.timings.takeover_after + Duration::from_secs(3),
    };
    // A fault that could not be carried out (no netem) changed nothing:
    // it is listed, and charged with nothing.
    let (not_run, windows): (Vec<Window>, Vec<Window>) = windows
        .into_iter()
        .partition(|w| w.kind.ends_with("(not run)"));
    report.not_run = not_run.into_iter().map(|w| w.text).collect();
    report.findings = history::check(&setup, &obs, &samples, &windows);
    report.availability = availability::per_kind(&setup, &obs, &windows);
    report.windows = windows;
    report.requests = obs.len();
    report.floods = floods;
    Ok(report)
}

fn schedule_timings(t: &ServerTimings) -> Timings {
    Timings {
        ping_interval: t.ping_interval,
        takeover_after: t.takeover_after,
    }
}

/// One active server and one ready standby (in witness mode, with the
/// witness reachable), within [`SETTLE_PATIENCE`].
fn wait_stable(addrs: &[(String, String)], token: &str, mode: Mode) -> Result<(), String> {
    let deadline = Instant::now() + SETTLE_PATIENCE;
    let mut last = String::new();
    while Instant::now() < deadline {
        let states: Vec<Option<crate::protocol::StatusReport>> = addrs
            .iter()
            .map(|(_, a)| watch::status(a, token, Duration::from_secs(2)).ok())
            .collect();
        let state = |i: usize| {
            states[i]
                .as_ref()
                .map_or("inaccessible", |r| r.state.as_str())
        };
        last = format!("primary {}, backup {}", state(0), state(1));
        let pair = matches!(
            (state(0), state(1)),
            ("active", "ready") | ("ready", "active")
        );
        let witness_ok = mode == Mode::TwoServer
            || states.iter().flatten().any(|r| {
                r.state == "active" && r.witness.as_ref().is_some_and(|w| w.state == "reachable")
            });
        if pair && witness_ok {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Err(last)
}

/// Carries out the schedule; samples CPU each second meanwhile. Returns the
/// faults as they happened.
fn execute(
    faults: &[Fault],
    servers: &mut Servers,
    net: &Net,
    rec: &Recorder,
    o: &Options,
    site: &Site,
    report: &mut Report,
) -> Vec<Window> {
    // (when, fault index, begin?)
    let mut steps: Vec<(Duration, usize, bool)> = Vec::new();
    for (i, f) in faults.iter().enumerate() {
        steps.push((f.at, i, true));
        steps.push((f.at + f.action.time(), i, false));
    }
    steps.sort_by_key(|s| (s.0, !s.2));
    let mut windows: Vec<Window> = faults
        .iter()
        .map(|f| Window {
            kind: f.action.kind(o.timings.takeover_after),
            text: f.action.to_string(),
            start: f.at,
            end: f.at,
        })
        .collect();
    let mut last_probe: BTreeMap<Node, (Instant, Probe)> = BTreeMap::new();
    let mut next_sample = Instant::now();
    let end = rec.start + o.duration;
    let mut steps = steps.into_iter().peekable();
    loop {
        let now = Instant::now();
        if now >= next_sample {
            sample_cpu(servers, rec, &mut last_probe, &mut report.cpu);
            if report.cpu.len() % (10 * servers.map.len()).max(1) < servers.map.len() {
                let t = rec.since(now).as_secs_f64();
                for (node, (j, s)) in state_files(site) {
                    report.state_series.push((t, node, j, s));
                }
            }
            next_sample = now + Duration::from_secs(1);
        }
        match steps.peek() {
            Some(&(at, i, begin)) if rec.start + at <= now => {
                steps.next();
                let f = &faults[i];
                let t = rec.since(Instant::now());
                let result = if begin {
                    apply(&f.action, servers, net)
                } else {
                    undo(&f.action, servers, net)
                };
                if begin {
                    windows[i].start = t;
                    windows[i].end = t;
                    eprintln!("chaos: [{:6.1}s] {}", t.as_secs_f64(), f.action);
                } else {
                    windows[i].end = t;
                }
                if let Err(e) = result {
                    eprintln!("chaos: [{:6.1}s] {}: {e}", t.as_secs_f64(), f.action);
                    windows[i].text.push_str(&format!(" (not run: {e})"));
                    windows[i].kind.push_str(" (not run)");
                }
            }
            None if now >= end => break,
            _ => {}
        }
        let wake = steps
            .peek()
            .map_or(end, |s| rec.start + s.0)
            .min(next_sample)
            .min(end.max(now));
        std::thread::sleep(
            wake.saturating_duration_since(Instant::now())
                .min(Duration::from_millis(250)),
        );
    }
    windows
}

fn server<'a>(s: &'a mut Servers, n: &Node) -> Result<&'a mut Server, String> {
    s.map
        .get_mut(n)
        .ok_or_else(|| format!("no {} in this mode", n.as_str()))
}

fn apply(action: &Action, servers: &mut Servers, net: &Net) -> Result<(), String> {
    match action {
        Action::Kill { node, .. } => server(servers, node)?.kill9(),
        Action::Freeze { node, .. } => server(servers, node)?.freeze(),
        Action::Restart { node } => {
            let s = server(servers, node)?;
            s.stop();
            s.start()?;
        }
        Action::Cut { link, .. } => net.cut(*link)?,
        Action::Delay {
            link,
            delay,
            jitter,
            ..
        } => net.delay(*link, *delay, *jitter)?,
        Action::Loss { link, percent, .. } => net.loss(*link, *percent)?,
    }
    Ok(())
}

fn undo(action: &Action, servers: &mut Servers, net: &Net) -> Result<(), String> {
    match action {
        Action::Kill { node, .. } => match servers.map.get_mut(node) {
            Some(s) => s.start(),
            None => Ok(()),
        },
        Action::Freeze { node, .. } => {
            if let Some(s) = servers.map.get_mut(node) {
                s.thaw();
            }
            Ok(())
        }
        Action::Restart { .. } => Ok(()),
        Action::Cut { link, .. } | Action::Delay { link, .. } | Action::Loss { link, .. } => {
            net.heal(*link)
        }
    }
}

fn sample_cpu(
    servers: &Servers,
    rec: &Recorder,
    last: &mut BTreeMap<Node, (Instant, Probe)>,
    out: &mut Vec<CpuFigure>,
) {
    for (node, s) in &servers.map {
        let Some(p) = s.probe() else {
            last.remove(node);
            continue;
        };
        let now = Instant::now();
        if let Some((then, before)) = last.get(node) {
            if p.cpu_ticks >= before.cpu_ticks {
                out.push(CpuFigure {
                    node: node.as_str().into(),
                    at_secs: rec.since(now).as_secs_f64(),
                    percent: cpu_percent(before, &p, now - *then),
                });
            }
        }
        last.insert(*node, (now, p));
    }
}

fn quiet_cpu(servers: &Servers, over: Duration) -> BTreeMap<String, f64> {
    let before: BTreeMap<Node, Probe> = servers
        .map
        .iter()
        .filter_map(|(n, s)| s.probe().map(|p| (*n, p)))
        .collect();
    let t = Instant::now();
    std::thread::sleep(over);
    let mut out = BTreeMap::new();
    for n in servers.nodes() {
        if let (Some(a), Some(b)) = (before.get(&n), servers.map[&n].probe()) {
            out.insert(n.as_str().to_string(), cpu_percent(a, &b, t.elapsed()));
        }
    }
    out
}

/// The active server's seats against the clients' view, both ways.
fn end_check(fleet: &Fleet, addrs: &[(String, String)], token: &str) -> EndCheck {
    let clients_before = fleet.held();
    let active = addrs.iter().find_map(|(name, a)| {
        watch::status(a, token, Duration::from_secs(3))
            .ok()
            .filter(|r| r.state == "active")
            .map(|r| (name.clone(), r))
    });
    let clients_after = fleet.held();
    let Some((server, report)) = active else {
        return EndCheck {
            server: "none active".into(),
            ..EndCheck::default()
        };
    };
    // Status lists seat ids; the clients know handles.
    let listed: Vec<String> = watch::holders(&report).into_iter().map(|h| h.0).collect();
    let seat = |h: &String| crate::ledger::seat_id(h);
    let before: Vec<String> = clients_before.iter().map(seat).collect();
    let after: Vec<String> = clients_after.iter().map(seat).collect();
    let missing = clients_before
        .iter()
        .filter(|h| clients_after.contains(h) && !listed.contains(&seat(h)))
        .cloned()
        .collect();
    let extra = listed
        .iter()
        .filter(|s| !before.contains(s) && !after.contains(s))
        .map(|s| format!("seat {s}"))
        .collect();
    EndCheck {
        server,
        clients_hold: clients_after.len(),
        server_lists: listed.len(),
        missing,
        extra,
    }
}

/// After every client checked in: seats still listed whose checkin was
/// confirmed.
fn after_return(addrs: &[(String, String)], token: &str, rec: &Recorder) -> Vec<String> {
    let obs = rec.take();
    // Seat id -> handle of every confirmed checkin (status lists seat ids).
    let confirmed: BTreeMap<String, &str> = obs
        .iter()
        .filter(|o| o.op == history::Op::Checkin && o.outcome == history::Outcome::Ok)
        .filter_map(|o| o.handle.as_deref())
        .map(|h| (crate::ledger::seat_id(h), h))
        .collect();
    let Some(report) = addrs.iter().find_map(|(_, a)| {
        watch::status(a, token, Duration::from_secs(3))
            .ok()
            .filter(|r| r.state == "active")
    }) else {
        return vec!["no active server after the run".into()];
    };
    watch::holders(&report)
        .into_iter()
        .filter_map(|(s, secs)| {
            confirmed
                .get(&s)
                .map(|h| format!("{h} (returns in {secs}s)"))
        })
        .collect()
}

fn resources(
    servers: &Servers,
    before: &BTreeMap<Node, Probe>,
    started_as: &BTreeMap<Node, u32>,
) -> Vec<Resources> {
    servers
        .map
        .iter()
        .filter_map(|(n, s)| {
            let b = before.get(n)?;
            Some(Resources {
                node: n.as_str().into(),
                restarted: started_as.get(n) != Some(&s.starts),
                before: *b,
                after: s.probe().unwrap_or_default(),
            })
        })
        .collect()
}

/// Sizes of each state directory's journal and snapshot, in bytes.
fn state_files(site: &Site) -> BTreeMap<String, (u64, u64)> {
    let size = |p: std::path::PathBuf| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    [Node::Primary, Node::Backup]
        .iter()
        .map(|n| {
            let dir = site.state_dir(*n);
            (
                n.as_str().to_string(),
                (size(dir.join("journal")), size(dir.join("snapshot"))),
            )
        })
        .collect()
}

/// The soak's thousands of holders: `floatd-load --mix hold` in a thread.
fn start_soak_load(
    addrs: &[(String, String)],
    o: &Options,
) -> std::thread::JoinHandle<crate::load::Report> {
    let servers: Vec<String> = addrs.iter().map(|a| a.1.clone()).collect();
    let args: Vec<std::ffi::OsString> = [
        "--server".to_string(),
        servers.join(","),
        "--clients".into(),
        o.hold_clients.to_string(),
        "--threads".into(),
        "1".into(),
        "--mix".into(),
        "hold".into(),
        "--feature".into(),
        site::SOAK_FEATURE.into(),
        "--duration".into(),
        format!("{}s", o.duration.as_secs()),
        "--quiet".into(),
    ]
    .into_iter()
    .map(Into::into)
    .collect();
    let opts = crate::load::options::Options::parse(args)
        .expect("soak load options")
        .expect("not --help");
    std::thread::spawn(move || crate::load::run(opts))
}
