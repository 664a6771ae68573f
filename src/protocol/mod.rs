//! Wire formats, codecs only: nothing here touches a socket.
//!
//! - [`line`]: the `WORD args key=value` shape every client protocol line has.
//! - [`request`]: client requests.
//! - [`reply`]: server replies, the greeting and pushed lines.
//! - [`status`]: the status report (JSON).

pub mod line;
pub mod peer;
pub mod reply;
pub mod request;
pub mod status;

pub use reply::{Greeting, Reply};
pub use request::{Request, MAX_LINE, PROTOCOL_VERSION};
pub use status::StatusReport;
