//! The watchdog thread: runs the role machine ([`super::role`]) and carries
//! its actions out. It owns the links to the other server and the witness
//! and the channel to the event loop; it decides nothing itself.
//!
//! Each server dials the other's peer port and sends its own messages on
//! that connection; it receives the other's messages on the connection the
//! other dialled. So each direction has one connection and one owner, and
//! a server that restarts simply dials again. Dialling happens on a
//! short-lived thread, so a slow or unreachable address never holds up a
//! decision.

use super::link::{self, LinkEvent, LinkWriter};
use super::role::{Action, Input, RoleMachine, Start};
use super::{FromWatchdog, PairSettings, ToWatchdog};
use crate::journal::FORMAT_VERSION;
use crate::protocol::peer::PeerMessage;
use crossbeam_channel::{select, Receiver, Sender};
use mio::Waker;
use std::collections::VecDeque;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Proven connections from the other server kept at once (the newest).
const MAX_INBOUND: usize = 4;

/// The loop's side of the conversation.
pub struct LoopPort {
    pub to_loop: Sender<FromWatchdog>,
    pub from_loop: Receiver<ToWatchdog>,
    pub waker: Arc<Waker>,
}

/// Which link a dial was for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Target {
    Peer,
    Witness,
}

/// A dial's result, from its thread.
struct Dialled {
    target: Target,
    /// The address dialled.
    addr: String,
    result: std::io::Result<LinkWriter>,
}

struct Watchdog {
    machine: RoleMachine,
    s: PairSettings,
    port: LoopPort,
    /// The connection we dialled to the other server (we send on it).
    out: Option<LinkWriter>,
    /// Where the machine last said the other server's peer port is: a dial
    /// to an older address that finishes after a move is dropped.
    peer_target: String,
    /// The connection to the witness.
    witness: Option<LinkWriter>,
    /// Connections the other server dialled to us that proved the secret
    /// (its messages arrive here; a restart leaves an old one until it
    /// closes). The link hands over proven connections only.
    inbound: Vec<LinkWriter>,
    events_tx: Sender<LinkEvent>,
    dialled_tx: Sender<Dialled>,
    dialling: [bool; 2],
}

/// Starts the watchdog thread with its peer listener already bound.
pub fn spawn(
    settings: PairSettings,
    listener: TcpListener,
    start: Start,
    port: LoopPort,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let (events_tx, events_rx) = crossbeam_channel::unbounded();
    let (dialled_tx, dialled_rx) = crossbeam_channel::unbounded();
    link::serve(listener, settings.secret.clone(), events_tx.clone())?;
    let mut w = Watchdog {
        machine: RoleMachine::new(settings.clone(), start, Instant::now()),
        peer_target: settings.peer.clone(),
        s: settings,
        port,
        out: None,
        witness: None,
        inbound: Vec::new(),
        events_tx,
        dialled_tx,
        dialling: [false; 2],
    };
    std::thread::Builder::new()
        .name("floatd-watchdog".into())
        .spawn(move || w.run(events_rx, dialled_rx))
}

impl Watchdog {
    fn run(&mut self, events: Receiver<LinkEvent>, dialled: Receiver<Dialled>) {
        let ticker = crossbeam_channel::tick(self.s.tick());
        self.feed(Input::Tick);
        loop {
            select! {
                recv(self.port.from_loop) -> msg => match msg {
                    Ok(msg) => self.feed(Input::Loop(msg)),
                    Err(_) => return, // the server is stopping
                },
                recv(events) -> ev => {
                    if let Ok(ev) = ev {
                        self.on_link(ev);
                    }
                }
                recv(dialled) -> d => {
                    if let Ok(d) = d {
                        self.on_dialled(d);
                    }
                }
                recv(ticker) -> _ => self.feed(Input::Tick),
            }
        }
    }

    /// Hands an input to the machine and carries out what it says, with
    /// whatever that in turn reports (a send that finds its link broken).
    fn feed(&mut self, input: Input) {
        let mut inputs = VecDeque::from([input]);
        while let Some(input) = inputs.pop_front() {
            for action in self.machine.handle(input, Instant::now()) {
                if let Some(follow_up) = self.act(action) {
                    inputs.push_back(follow_up);
                }
            }
        }
    }

    fn act(&mut self, action: Action) -> Option<Input> {
        match action {
            Action::ToPeer(msg) => {
                let out = self.out.as_mut()?;
                if let Err(e) = out.send(&msg) {
                    log::info!("peer link to {} lost: {e}", out.peer);
                    self.out = None;
                    return Some(Input::PeerLinkDown);
                }
            }
            Action::ToWitness(msg) => {
                let w = self.witness.as_mut()?;
                if let Err(e) = w.send(&msg) {
                    log::info!("witness link to {} lost: {e}", w.peer);
                    self.witness = None;
                    return Some(Input::WitnessLinkDown);
                }
            }
            Action::ToLoop(msg) => {
                if self.port.to_loop.send(msg).is_ok() {
                    let _ = self.port.waker.wake();
                }
            }
            Action::DialPeer(addr) => {
                self.peer_target = addr.clone();
                self.dial(Target::Peer, addr);
            }
            Action::DialWitness => {
                if let Some(addr) = self.s.witness.clone() {
                    self.dial(Target::Witness, addr);
                }
            }
            Action::ClosePeerLink => {
                if let Some(out) = self.out.take() {
                    log::info!("peer link to {} closed: the other server moved", out.peer);
                }
            }
        }
        None
    }

    /// Dials on a thread of its own; the result comes back as [`Dialled`].
    fn dial(&mut self, target: Target, addr: String) {
        if std::mem::replace(&mut self.dialling[target as usize], true) {
            return; // one dial at a time
        }
        let hello = PeerMessage::Hello {
            role: self.s.role.as_str().to_string(),
            format: FORMAT_VERSION,
        };
        let timeout = self
            .s
            .ping_interval
            .clamp(Duration::from_millis(100), Duration::from_secs(1));
        let (secret, events, done) = (
            self.s.secret.clone(),
            self.events_tx.clone(),
            self.dialled_tx.clone(),
        );
        let spawned = std::thread::Builder::new()
            .name("floatd-dial".into())
            .spawn(move || {
                let result = link::dial(&addr, &secret, &hello, timeout, events);
                if let Err(e) = &result {
                    log::debug!("dialling {addr}: {e}");
                }
                let _ = done.send(Dialled {
                    target,
                    addr,
                    result,
                });
            });
        if spawned.is_err() {
            self.dialling[target as usize] = false;
        }
    }

    fn on_dialled(&mut self, d: Dialled) {
        self.dialling[d.target as usize] = false;
        let writer = match d.result {
            Ok(writer) => writer,
            Err(e) => {
                let refused = e.kind() == std::io::ErrorKind::ConnectionRefused;
                if refused && d.target == Target::Peer && d.addr == self.peer_target {
                    self.feed(Input::PeerDialRefused);
                }
                return;
            }
        };
        match d.target {
            Target::Peer if d.addr != self.peer_target => {
                log::debug!("dropped a link to {}: the other server moved", d.addr);
            }
            Target::Peer => {
                self.out = Some(writer);
                self.feed(Input::PeerLinkUp);
            }
            Target::Witness => {
                self.witness = Some(writer);
                self.feed(Input::WitnessLinkUp);
            }
        }
    }

    fn on_link(&mut self, event: LinkEvent) {
        match event {
            LinkEvent::Accepted(w) => {
                // The other server dialled (again) and proved the secret.
                if self.inbound.len() >= MAX_INBOUND {
                    self.inbound.remove(0);
                }
                self.inbound.push(w);
            }
            LinkEvent::Closed { link, why } => {
                if self.witness.as_ref().is_some_and(|w| w.id == link) {
                    log::info!("witness link closed: {why}");
                    self.witness = None;
                    self.feed(Input::WitnessLinkDown);
                } else if let Some(out) = self.out.take_if(|w| w.id == link) {
                    log::info!("peer link to {} closed: {why}", out.peer);
                    self.feed(Input::PeerLinkDown);
                } else {
                    self.inbound.retain(|w| w.id != link);
                }
            }
            LinkEvent::Message { link, message } => {
                if self.witness.as_ref().is_some_and(|w| w.id == link) {
                    self.feed(Input::Witness(message));
                    return;
                }
                if self.inbound.iter().any(|w| w.id == link) {
                    self.feed(Input::Peer(message));
                }
            }
        }
    }
}
