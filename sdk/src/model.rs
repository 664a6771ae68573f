//! What the C handles stand for, in safe Rust: a client over
//! [`floatd::client::Client`], a seat, and events as the callback sees
//! them. The FFI module only moves pointers and strings in and out.
#![forbid(unsafe_code)]

use crate::codes::*;
use crate::options::Settings;
use floatd::client::{in_event_sink, Client, ClientEvent, Seat, SeatState};
use floatd::licence::Version;
use std::ffi::CString;
use std::time::Duration;

/// An event as the C callback receives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SdkEvent {
    pub kind: i32,
    /// The seat concerned (see [`seat_id`]), or 0.
    pub seat_id: u64,
    pub server: CString,
    pub detail: CString,
}

/// The callback, as the FFI module wraps it.
pub type Callback = Box<dyn Fn(&SdkEvent) + Send>;

/// A small number naming a seat in events: a hash of its handle, so an
/// event can name a seat without the library keeping a table, and never 0.
pub fn seat_id(handle: &str) -> u64 {
    // FNV-1a, 64 bits.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in handle.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash.max(1)
}

fn c_string(text: &str) -> CString {
    // Strings from servers and callers never hold NUL (protocol lines
    // cannot, C strings cannot); drop any rather than fail.
    CString::new(text.replace('\0', "")).unwrap_or_default()
}

impl SdkEvent {
    /// The C event for a library event, if the callback hears of it.
    pub fn from_client(event: &ClientEvent) -> Option<SdkEvent> {
        let make = |kind, handle: Option<&str>, server: &str, detail: &str| SdkEvent {
            kind,
            seat_id: handle.map_or(0, seat_id),
            server: c_string(server),
            detail: c_string(detail),
        };
        Some(match event {
            ClientEvent::Trying { server } => make(FLOATD_EVENT_TRYING, None, server, ""),
            ClientEvent::Disconnected { server, reason } => {
                make(FLOATD_EVENT_RECONNECTING, None, server, reason)
            }
            ClientEvent::Moved {
                from: Some(from),
                to,
            } if from != to => make(FLOATD_EVENT_FAILED_OVER, None, to, from),
            ClientEvent::Reclaimed { handle, server } => {
                make(FLOATD_EVENT_RECOVERED, Some(handle), server, "")
            }
            ClientEvent::Expired { handle } => make(FLOATD_EVENT_EXPIRED, Some(handle), "", ""),
            ClientEvent::Lost { handle, reason } => {
                make(FLOATD_EVENT_LOST, Some(handle), "", reason)
            }
            _ => return None,
        })
    }
}

/// A client handle.
pub struct SdkClient {
    client: Client,
}

impl SdkClient {
    pub fn new(settings: Settings) -> SdkClient {
        let client = Client::new(settings.config);
        if settings.heartbeat_thread {
            client.start_heartbeats();
        }
        SdkClient { client }
    }

    /// Sets (or, with `None`, removes) the event callback.
    pub fn set_callback(&self, callback: Option<Callback>) -> Result<(), Failure> {
        refuse_in_callback()?;
        match callback {
            Some(callback) => self.client.on_event(move |event| {
                if let Some(e) = SdkEvent::from_client(event) {
                    callback(&e);
                }
            }),
            None => self.client.on_event(|_| {}),
        }
        Ok(())
    }

    pub fn cancel(&self) {
        self.client.cancel();
    }

    /// The client library's client (for [`crate::roam`]).
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    pub fn heartbeat(&self) -> Result<(), Failure> {
        Ok(self.client.heartbeat_all()?)
    }

    /// Checks out `count` seats; waits in the queue up to `wait_ms` when
    /// none is free (0: fail at once).
    pub fn checkout(
        &self,
        feature: &str,
        version: Option<&str>,
        count: u32,
        wait_ms: u32,
    ) -> Result<SdkSeat, Failure> {
        if feature.is_empty() {
            return Err(Failure::bad_argument("feature is empty"));
        }
        if count == 0 {
            return Err(Failure::bad_argument("count must be at least 1"));
        }
        let version = Version::parse(version.filter(|v| !v.is_empty()).unwrap_or("0"))
            .map_err(|e| Failure::bad_argument(format!("version: {e}")))?;
        let seat = if wait_ms == 0 {
            self.client.checkout(feature, &version, count)?
        } else {
            let wait = Duration::from_millis(u64::from(wait_ms));
            self.client.checkout_wait(feature, &version, count, wait)?
        };
        Ok(SdkSeat::new(self.client.clone(), seat))
    }

    /// Returns every held seat and stops the heartbeat thread.
    pub fn close(&self) -> Result<(), Failure> {
        Ok(self.client.close()?)
    }
}

/// `Err(WOULD_BLOCK)` inside the event callback.
pub fn refuse_in_callback() -> Result<(), Failure> {
    if in_event_sink() {
        Err(Failure::from(floatd::client::ClientError::Reentrant))
    } else {
        Ok(())
    }
}

/// A seat handle. Its strings live as long as it does.
pub struct SdkSeat {
    client: Client,
    handle: String,
    pub id: u64,
    pub count: u32,
    pub lease_ms: u32,
    pub feature: CString,
    /// The version of the licence pool that granted it.
    pub version: CString,
    pub expires: CString,
}

impl SdkSeat {
    fn new(client: Client, seat: Seat) -> SdkSeat {
        SdkSeat {
            id: seat_id(&seat.handle),
            count: seat.count,
            lease_ms: u32::try_from(seat.lease.as_millis()).unwrap_or(u32::MAX),
            feature: c_string(&seat.feature),
            version: c_string(&seat.pool),
            expires: c_string(&seat.expires),
            handle: seat.handle,
            client,
        }
    }

    /// A `FLOATD_SEAT_*` state. A seat the client forgot (more than a
    /// thousand ended since) counts as lost.
    pub fn state(&self) -> i32 {
        match self.client.seat_state(&self.handle) {
            Some(SeatState::Held) => FLOATD_SEAT_HELD,
            Some(SeatState::Reconnecting) => FLOATD_SEAT_RECONNECTING,
            Some(SeatState::Expired) => FLOATD_SEAT_EXPIRED,
            Some(SeatState::Returned) => FLOATD_SEAT_RETURNED,
            Some(SeatState::Lost) | None => FLOATD_SEAT_LOST,
        }
    }

    /// Returns the seat to the server (unless it already went: lost, or
    /// returned when the client was freed).
    pub fn checkin(self) -> Result<(), Failure> {
        let outcome = match self.client.seat_state(&self.handle) {
            Some(SeatState::Returned) => Ok(()),
            Some(SeatState::Lost) | None => Err(Failure::new(
                FLOATD_E_SEAT_LOST,
                format!("the seat of {} was lost before the checkin", self.name()),
            )),
            _ => self.client.checkin(&self.handle).map_err(Failure::from),
        };
        self.client.forget(&self.handle);
        outcome
    }

    fn name(&self) -> String {
        self.feature.to_string_lossy().into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seat_ids_are_stable_and_never_zero() {
        assert_eq!(seat_id("abc"), seat_id("abc"));
        assert_ne!(seat_id("abc"), seat_id("abd"));
        assert_ne!(seat_id(""), 0);
    }

    #[test]
    fn events_map_to_the_callback_kinds() {
        let ev = |e: ClientEvent| SdkEvent::from_client(&e);
        let failed_over = ev(ClientEvent::Moved {
            from: Some("a:1".into()),
            to: "b:2".into(),
        })
        .unwrap();
        assert_eq!(failed_over.kind, FLOATD_EVENT_FAILED_OVER);
        assert_eq!(failed_over.server.to_str().unwrap(), "b:2");
        assert_eq!(failed_over.detail.to_str().unwrap(), "a:1");
        assert_eq!(
            ev(ClientEvent::Moved {
                from: None,
                to: "b:2".into()
            }),
            None,
            "the first connection is no failover"
        );
        let lost = ev(ClientEvent::Lost {
            handle: "h".into(),
            reason: "gone".into(),
        })
        .unwrap();
        assert_eq!((lost.kind, lost.seat_id), (FLOATD_EVENT_LOST, seat_id("h")));
        let recovered = ev(ClientEvent::Reclaimed {
            handle: "h".into(),
            server: "b:2".into(),
        })
        .unwrap();
        assert_eq!(recovered.kind, FLOATD_EVENT_RECOVERED);
        assert_eq!(
            ev(ClientEvent::Trying {
                server: "a:1".into()
            })
            .unwrap()
            .kind,
            FLOATD_EVENT_TRYING
        );
    }
}
