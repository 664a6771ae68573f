//! The witness: the real witness decisions answering pings and claims.

use super::*;

impl World {
    pub(super) fn at_witness(&mut self, from: usize, gen: u64, msg: PeerMessage) {
        let link = (End::Server(from), End::Witness);
        if self.links.get(&link) != Some(&gen) {
            return;
        }
        let now = clock(self.base, 1.0, self.now);
        let Some(w) = &mut self.witness else { return };
        let answer = match msg {
            PeerMessage::WitnessPing {
                id,
                role,
                state,
                epoch,
                last,
                stale_since,
                incarnation,
                granted_claim,
            } => {
                let ping = Ping {
                    role: Role::parse(&role).expect("role"),
                    state,
                    epoch,
                    last,
                    stale_since,
                    incarnation,
                    granted_claim,
                };
                let v = w.ping(&ping, now);
                Some(PeerMessage::WitnessView {
                    id,
                    active: v.active.map(|r| r.as_str().to_string()).unwrap_or_default(),
                    epoch: v.epoch,
                    stale_since: v.stale_since,
                    learning: v.learning,
                })
            }
            PeerMessage::Claim {
                id,
                role,
                epoch,
                last,
                incarnation,
            } => {
                let request = ClaimRequest {
                    id,
                    role: Role::parse(&role).expect("role"),
                    epoch,
                    last,
                    incarnation,
                };
                let v = w.claim(&request, now);
                self.trace(|| format!("witness: claim of s{from} at epoch {epoch}: {v:?}"));
                Some(PeerMessage::ClaimResult {
                    id,
                    granted: v.granted,
                    recovery: v.recovery,
                    why: v.why,
                })
            }
            _ => None,
        };
        if let Some(msg) = answer {
            let ev = Event::ToServer {
                to: from,
                link,
                gen,
                msg,
            };
            self.send(End::Witness, End::Server(from), ev);
        }
    }
}
