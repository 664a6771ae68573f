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
        let claimed = match &msg {
            PeerMessage::Claim { epoch, .. } => Some(*epoch),
            _ => None,
        };
        let answer = w.answer(msg, now);
        if let (Some(epoch), Some(PeerMessage::ClaimResult { granted, why, .. })) =
            (claimed, &answer)
        {
            let verdict = if *granted { "granted" } else { why.as_str() };
            self.trace(|| format!("witness: claim of s{from} at epoch {epoch}: {verdict}"));
        }
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
