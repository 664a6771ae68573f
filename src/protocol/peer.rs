//! The peer link between the two servers of a pair (and the witness):
//! authenticated frames and the messages they carry. Codecs only.
//!
//! A connection starts with the accepting side sending a random 16-byte
//! challenge. Every frame after that, in either direction, is
//!
//! ```text
//! [u32 length][u64 counter][payload JSON][32-byte HMAC-SHA256]
//! ```
//!
//! where the HMAC, keyed with the shared secret, covers a direction tag,
//! the challenge, the counter and the payload. The counter starts at 1 and
//! grows by one per frame and direction. So a frame made with another
//! secret, replayed from another connection (other challenge), replayed or
//! reordered within one (counter), cut short or altered (length, MAC) is
//! rejected.

use crate::ledger::{Record, Returned, SeatSnapshot, Snapshot};
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Largest frame payload (a snapshot of many seats fits).
pub const MAX_FRAME: usize = 64 << 20;
/// Largest payload of the first frame on a connection: until a frame has
/// proved the secret, the other side is a stranger, and a stranger gets
/// no more memory than this (the first frames, `Hello` from a dialler and
/// a witness's answers, are far smaller).
pub const MAX_FIRST_FRAME: usize = 4 << 10;
/// The most bytes a first frame takes on the wire.
pub const MAX_FIRST_FRAME_BYTES: usize = HEADER_LEN + MAX_FIRST_FRAME + MAC_LEN;
/// Bytes of the challenge an acceptor sends first.
pub const CHALLENGE_LEN: usize = 16;
const MAC_LEN: usize = 32;
const HEADER_LEN: usize = 12;

/// Which way a frame travels on a connection, so a frame cannot be
/// reflected back to its sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// From the side that dialled to the side that accepted.
    FromDialer,
    /// From the side that accepted to the side that dialled.
    FromAcceptor,
}

/// Where a server stands in the pair.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PeerState {
    /// Just started: not serving, looking for the other server.
    Starting,
    /// Standby, catching up with the active server.
    Syncing,
    /// Standby, in sync with the active server.
    Ready,
    /// Serving.
    Active,
    /// Took over without being in sync: serving reclaims only.
    Recovering,
}

impl PeerState {
    pub fn as_str(self) -> &'static str {
        match self {
            PeerState::Starting => "starting",
            PeerState::Syncing => "syncing",
            PeerState::Ready => "ready",
            PeerState::Active => "active",
            PeerState::Recovering => "recovering",
        }
    }

    /// Serving clients (fully or reclaims only).
    pub fn is_serving(self) -> bool {
        matches!(self, PeerState::Active | PeerState::Recovering)
    }
}

/// The last record a server holds: identifies its history, since every
/// epoch has exactly one writer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryMark {
    pub seq: u64,
    pub epoch: u64,
}

/// What one server tells the other (or the witness).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PeerMessage {
    /// First frame from the dialling side.
    Hello {
        /// `primary`, `backup` (or `witness` from a witness).
        role: String,
        /// Journal record format version.
        format: u32,
    },
    /// Sent every ping interval.
    Heartbeat {
        state: PeerState,
        epoch: u64,
        /// The sender's last record.
        last: HistoryMark,
        /// Where the sender serves clients.
        client_addr: String,
        /// Digest of the served pools and options (must match the peer's).
        digest: String,
        /// Sender's clock (ms since it started), echoed back for the round trip.
        sent_ms: u64,
        /// The last `sent_ms` received from the peer, and how long ago.
        echo_ms: u64,
        held_ms: u64,
        /// The sender's process incarnation, and the incarnation of the
        /// heartbeat echoed: an echo is only good to the process that sent
        /// it (a restarted one counts its milliseconds from a new start).
        #[serde(default)]
        incarnation: u64,
        #[serde(default)]
        echo_incarnation: u64,

        /// From an active server: whether it counts the standby in sync
        /// (waits for its acknowledgements before answering grants).
        standby_in_sync: bool,
        /// False once the sender's journal failed: it will not serve again
        /// until restarted, so the other server leads.
        #[serde(default = "yes")]
        can_serve: bool,
    },
    /// Journal records for the standby, in order.
    Records { records: Vec<Record> },
    /// Standby: every record up to `seq` is applied and durable here.
    Ack { seq: u64 },
    /// Standby: send me everything after my last record `from`.
    SyncFrom { from: HistoryMark },
    /// The whole ledger, when the standby's history cannot be continued.
    Snapshot { snapshot: Snapshot },
    /// A returning primary, now in sync, asks the active backup to hand back.
    HandbackRequest,
    /// The backup stopped granting; its last record is `last`.
    HandedBack { last: HistoryMark },
    /// A server stepping down after a split hands over its seats and the
    /// seats its clients returned, so the one that stays active follows
    /// what clients did on both sides. Answered with `MergeDone`.
    Merge {
        #[serde(default)]
        id: u64,
        seats: Vec<SeatSnapshot>,
        #[serde(default)]
        returned: Vec<Returned>,
    },
    /// The merge `id` was applied: its clients may be sent over.
    MergeDone { id: u64 },
    /// Server to witness, every ping interval: where it stands. From the
    /// server the witness records as active, `stale_since` sets (or, when
    /// `None`, clears) the record that its standby is stale since that entry.
    WitnessPing {
        id: u64,
        role: String,
        state: PeerState,
        epoch: u64,
        last: HistoryMark,
        stale_since: Option<u64>,
        /// Random per process start: a new one means the server restarted.
        #[serde(default)]
        incarnation: u64,
        /// The last claim whose answer this server has settled: a consent
        /// it heard (and acted on or declined), or a claim unanswered for
        /// a grant lease (a consent arriving later is declined). Until a
        /// consent is settled, the witness counts the server as serving
        /// whatever an older state says.
        #[serde(default)]
        granted_claim: u64,
    },
    /// Witness to server: its record, answering the ping `id`. The answer
    /// proves the witness heard the server at or after the ping was sent.
    WitnessView {
        id: u64,
        /// `primary`, `backup` or empty: who the witness records as active.
        active: String,
        epoch: u64,
        stale_since: Option<u64>,
        /// The witness just started and consents to nothing yet.
        learning: bool,
    },
    /// Server to witness: may I become active at `epoch`?
    Claim {
        id: u64,
        role: String,
        epoch: u64,
        last: HistoryMark,
        #[serde(default)]
        incarnation: u64,
    },
    /// Witness to server: the answer to claim `id`. With `recovery`, the
    /// server must run a recovery period first (it was stale, or behind).
    ClaimResult {
        id: u64,
        granted: bool,
        recovery: bool,
        why: String,
    },
}

fn yes() -> bool {
    true
}

/// Builds and checks frames for one connection and direction.
pub struct FrameAuth {
    key: Vec<u8>,
    challenge: [u8; CHALLENGE_LEN],
    send_dir: Direction,
    sent: u64,
    received: u64,
}

/// Why a frame was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameError {
    /// More bytes are needed (not an error yet).
    Incomplete,
    TooLong(usize),
    BadMac,
    /// A counter that is not the next one: a replay, or frames reordered.
    Replayed {
        expected: u64,
        found: u64,
    },
    BadPayload(String),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Incomplete => f.write_str("incomplete frame"),
            FrameError::TooLong(n) => write!(f, "frame of {n} bytes is over the limit"),
            FrameError::BadMac => {
                f.write_str("authentication failed (wrong secret, or the frame was altered)")
            }
            FrameError::Replayed { expected, found } => {
                write!(
                    f,
                    "replayed or reordered frame (counter {found}, expected {expected})"
                )
            }
            FrameError::BadPayload(e) => write!(f, "undecodable message: {e}"),
        }
    }
}

impl FrameAuth {
    /// `dialer` is true on the side that opened the connection.
    pub fn new(secret: &[u8], challenge: [u8; CHALLENGE_LEN], dialer: bool) -> FrameAuth {
        FrameAuth {
            key: secret.to_vec(),
            challenge,
            send_dir: if dialer {
                Direction::FromDialer
            } else {
                Direction::FromAcceptor
            },
            sent: 0,
            received: 0,
        }
    }

    fn mac(&self, dir: Direction, counter: u64, payload: &[u8]) -> [u8; MAC_LEN] {
        let mut mac =
            <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key).expect("any key length works");
        mac.update(b"floatd-peer-v1");
        mac.update(match dir {
            Direction::FromDialer => b"D",
            Direction::FromAcceptor => b"A",
        });
        mac.update(&self.challenge);
        mac.update(&counter.to_be_bytes());
        mac.update(payload);
        mac.finalize().into_bytes().into()
    }

    /// Encodes a message as the next frame from this side.
    pub fn seal(&mut self, message: &PeerMessage) -> Vec<u8> {
        let payload = serde_json::to_vec(message).expect("peer messages serialise");
        self.sent += 1;
        let mac = self.mac(self.send_dir, self.sent, &payload);
        let mut frame = Vec::with_capacity(HEADER_LEN + payload.len() + MAC_LEN);
        frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        frame.extend_from_slice(&self.sent.to_be_bytes());
        frame.extend_from_slice(&payload);
        frame.extend_from_slice(&mac);
        frame
    }

    /// Decodes the first frame in `buf` from the other side; returns the
    /// message and the bytes it used.
    pub fn open(&mut self, buf: &[u8]) -> Result<(PeerMessage, usize), FrameError> {
        if buf.len() < HEADER_LEN {
            return Err(FrameError::Incomplete);
        }
        let len = u32::from_be_bytes(buf[0..4].try_into().expect("4 bytes")) as usize;
        let limit = if self.received == 0 {
            MAX_FIRST_FRAME
        } else {
            MAX_FRAME
        };
        if len > limit {
            return Err(FrameError::TooLong(len));
        }
        let total = HEADER_LEN + len + MAC_LEN;
        if buf.len() < total {
            return Err(FrameError::Incomplete);
        }
        let counter = u64::from_be_bytes(buf[4..12].try_into().expect("8 bytes"));
        let payload = &buf[HEADER_LEN..HEADER_LEN + len];
        let recv_dir = match self.send_dir {
            Direction::FromDialer => Direction::FromAcceptor,
            Direction::FromAcceptor => Direction::FromDialer,
        };
        let expected = self.mac(recv_dir, counter, payload);
        let given = &buf[HEADER_LEN + len..total];
        let diff = expected
            .iter()
            .zip(given)
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 {
            return Err(FrameError::BadMac);
        }
        if counter != self.received + 1 {
            return Err(FrameError::Replayed {
                expected: self.received + 1,
                found: counter,
            });
        }
        let message =
            serde_json::from_slice(payload).map_err(|e| FrameError::BadPayload(e.to_string()))?;
        self.received = counter;
        Ok((message, total))
    }
}

/// A fresh random challenge.
pub fn new_challenge() -> std::io::Result<[u8; CHALLENGE_LEN]> {
    let mut c = [0u8; CHALLENGE_LEN];
    getrandom::fill(&mut c).map_err(std::io::Error::other)?;
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(secret_a: &[u8], secret_b: &[u8]) -> (FrameAuth, FrameAuth) {
        let challenge = [9u8; CHALLENGE_LEN];
        (
            FrameAuth::new(secret_a, challenge, true),
            FrameAuth::new(secret_b, challenge, false),
        )
    }

    fn ack(seq: u64) -> PeerMessage {
        PeerMessage::Ack { seq }
    }

    #[test]
    fn frames_round_trip_in_both_directions() {
        let (mut dialer, mut acceptor) = pair(b"secret", b"secret");
        let f1 = dialer.seal(&ack(1));
        let f2 = dialer.seal(&ack(2));
        let mut stream = [f1, f2].concat();
        let (m, used) = acceptor.open(&stream).unwrap();
        assert_eq!(m, ack(1));
        stream.drain(..used);
        assert_eq!(acceptor.open(&stream).unwrap().0, ack(2));
        let back = acceptor.seal(&ack(3));
        assert_eq!(dialer.open(&back).unwrap().0, ack(3));
    }

    #[test]
    fn wrong_secret_replay_reflection_and_truncation_are_refused() {
        let (mut dialer, mut acceptor) = pair(b"secret", b"other");
        assert_eq!(
            acceptor.open(&dialer.seal(&ack(1))),
            Err(FrameError::BadMac)
        );

        let (mut dialer, mut acceptor) = pair(b"secret", b"secret");
        let frame = dialer.seal(&ack(1));
        acceptor.open(&frame).unwrap();
        assert!(matches!(
            acceptor.open(&frame),
            Err(FrameError::Replayed { .. })
        ));
        // A frame reflected back to its sender fails: the direction differs.
        let (mut dialer, _) = pair(b"secret", b"secret");
        let own = dialer.seal(&ack(1));
        assert_eq!(dialer.open(&own), Err(FrameError::BadMac));
        // Another connection (another challenge) does not accept it either.
        let mut other = FrameAuth::new(b"secret", [1u8; CHALLENGE_LEN], false);
        assert_eq!(other.open(&frame), Err(FrameError::BadMac));
        // Cut short: incomplete; altered: bad MAC.
        let (mut dialer, mut acceptor) = pair(b"secret", b"secret");
        let frame = dialer.seal(&ack(7));
        assert_eq!(
            acceptor.open(&frame[..frame.len() - 1]),
            Err(FrameError::Incomplete)
        );
        let mut altered = frame.clone();
        altered[HEADER_LEN] ^= 1;
        assert_eq!(acceptor.open(&altered), Err(FrameError::BadMac));
        let mut huge = frame;
        huge[0..4].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(acceptor.open(&huge), Err(FrameError::TooLong(_))));
    }

    #[test]
    fn only_a_small_first_frame_is_accepted_before_the_secret_is_proved() {
        let big = PeerMessage::Hello {
            role: "x".repeat(MAX_FIRST_FRAME),
            format: 1,
        };
        let (mut dialer, mut acceptor) = pair(b"secret", b"secret");
        let frame = dialer.seal(&big);
        // The header alone is enough to refuse it: nothing more is buffered.
        assert_eq!(
            acceptor.open(&frame[..HEADER_LEN]),
            Err(FrameError::TooLong(frame.len() - HEADER_LEN - MAC_LEN))
        );
        // After an authentic first frame, large frames are fine.
        let (mut dialer, mut acceptor) = pair(b"secret", b"secret");
        acceptor.open(&dialer.seal(&ack(1))).unwrap();
        assert_eq!(acceptor.open(&dialer.seal(&big)).unwrap().0, big);
        let small = dialer.seal(&ack(2));
        assert!(small.len() <= MAX_FIRST_FRAME_BYTES);
    }
}
