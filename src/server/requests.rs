//! Each client request, from parsed line to reply. Every request gets an
//! answer; one that changes seats says which record it waits for.

use super::admin;
use super::conn::ClientState;
use super::core::Core;
use super::gate;
use super::release::Reply;
use crate::codes::Code;
use crate::ledger::{CheckinOutcome, Event, Now, Orphans, Outcome, WaiterId};
use crate::protocol::reply;
use crate::protocol::{Request, PROTOCOL_VERSION};

impl Core {
    pub(super) fn handle(
        &mut self,
        client: &mut ClientState,
        key: usize,
        request: Request,
        now: Now,
    ) -> Option<Reply> {
        self.refresh_gate(now.mono);
        let text = match self.check_access(client, &request) {
            Err(text) => text,
            Ok(()) => return self.serve(client, key, request, now),
        };
        Some(Reply::now(text))
    }

    /// Who may ask what, and when: the errors that come before a request
    /// is looked at.
    fn check_access(&mut self, client: &ClientState, request: &Request) -> Result<(), String> {
        if self.shutdown_requested()
            && !matches!(request, Request::Status | Request::Ping | Request::Quit)
        {
            return Err(reply::err(Code::ShuttingDown, "the server is shutting down").finish());
        }
        if request.is_admin() && !client.admin {
            return Err(reply::err(
                Code::AdminRequired,
                "admin requests need loopback access or the admin token (AUTH <token>)",
            )
            .finish());
        }
        let needs_session = matches!(
            request,
            Request::Checkout { .. }
                | Request::Heartbeat { .. }
                | Request::Checkin { .. }
                | Request::Reclaim { .. }
                | Request::Roam { .. }
                | Request::RoamExtend { .. }
                | Request::RoamReturn { .. }
        );
        if !needs_session {
            return Ok(());
        }
        if client.admin_slot {
            return Err(reply::err(
                Code::Busy,
                "this connection holds a slot kept for operators; only status and admin requests are served",
            )
            .finish());
        }
        if !self.serving() {
            let refusal = gate::not_serving(&self.gate);
            if matches!(request, Request::Checkout { .. } | Request::Reclaim { .. }) {
                self.counters.denied(refusal.code);
            }
            return Err(self.refused(&refusal));
        }
        if client.session.is_none() {
            return Err(reply::err(
                Code::NotGreeted,
                "send HELLO proto=1 client=ID user=NAME host=NAME first",
            )
            .finish());
        }
        Ok(())
    }

    fn serve(
        &mut self,
        client: &mut ClientState,
        key: usize,
        request: Request,
        now: Now,
    ) -> Option<Reply> {
        let session = client.session.clone();
        let text = match request {
            Request::Hello {
                proto,
                client: id,
                user,
                host,
            } => {
                if proto != PROTOCOL_VERSION {
                    reply::err(
                        Code::ProtocolVersion,
                        &format!("this server speaks protocol {PROTOCOL_VERSION}, not {proto}"),
                    )
                    .field("proto", PROTOCOL_VERSION)
                    .finish()
                } else {
                    client.session = Some(super::conn::Session {
                        client: id.into(),
                        user: user.into(),
                        host: host.into(),
                    });
                    reply::ok()
                        .field("proto", PROTOCOL_VERSION)
                        .field("lease_ms", self.ledger.lease().as_millis())
                        .finish()
                }
            }
            Request::Auth { token } => self.auth(client, &token, now),
            Request::Checkout {
                feature,
                version,
                count,
                wait,
            } => {
                let request = session?.request(feature, version, count, wait);
                let waiter = self.next_waiter;
                self.next_waiter += 1;
                return Some(match self.ledger.checkout(request, WaiterId(waiter), now) {
                    Outcome::Granted(grant) => {
                        self.counters.checkouts += 1;
                        Reply {
                            text: reply::granted(reply::ok(), &grant).finish(),
                            wait_for: self.ledger.take_change(),
                            grant: Some(std::sync::Arc::clone(&grant.handle)),
                        }
                    }
                    Outcome::Queued { position } => {
                        self.waiters.insert(waiter, key);
                        client.waiters.push(waiter);
                        Reply::now(reply::queued(waiter, position).finish())
                    }
                    Outcome::Denied(refusal) => {
                        self.counters.denied(refusal.code);
                        Reply::now(self.refused(&refusal))
                    }
                });
            }
            Request::Heartbeat { handle } => {
                match self.ledger.heartbeat_by(&handle, &session?.holder(), now) {
                    Ok(lease) => reply::ok().field("lease_ms", lease.as_millis()).finish(),
                    Err(refusal) => self.refused(&refusal),
                }
            }
            Request::Checkin { handle } => {
                match self.ledger.checkin_by(&handle, &session?.holder(), now) {
                    Ok(CheckinOutcome::Returned) => reply::ok().finish(),
                    Ok(CheckinOutcome::HeldFor(left)) => {
                        reply::ok().field("held_ms", left.as_millis()).finish()
                    }
                    Err(refusal) => self.refused(&refusal),
                }
            }
            Request::Reclaim {
                handle,
                feature,
                version,
                count,
            } => {
                let request = session?.request(feature, version, count, false);
                match self.ledger.reclaim(&handle, &request, now) {
                    Outcome::Granted(grant) => {
                        self.counters.reclaims += 1;
                        reply::granted(reply::ok(), &grant).finish()
                    }
                    Outcome::Denied(refusal) => {
                        self.counters.denied(refusal.code);
                        self.refused(&refusal)
                    }
                    Outcome::Queued { .. } => unreachable!("reclaims never queue"),
                }
            }
            roam @ (Request::Roam { .. }
            | Request::RoamExtend { .. }
            | Request::RoamReturn { .. }) => {
                return Some(super::roam::handle(self, session?, roam, now));
            }
            Request::Status => super::status::reply(self, now, super::status::MAX_HOLDERS_LISTED),
            Request::StatusAll => super::status::reply(self, now, usize::MAX),
            Request::Ping => "PONG\n".to_string(),
            Request::Quit => {
                client.closing = true;
                reply::ok().field("bye", "yes").finish()
            }
            Request::Remove { seats } => match self.ledger.remove_selected(&seats, now) {
                Ok(grants) => admin::removed(&grants, client.peer),
                Err(refusal) => self.refused(&refusal),
            },
            Request::Reread => match self.reread(now) {
                Ok(done) => {
                    let mut line = reply::ok()
                        .field("pools", done.pools)
                        .field_opt("peer", done.peer_moved)
                        .field_opt("options", self.options.in_use.as_ref().map(|p| p.display()))
                        .field_opt(
                            "skipped",
                            Some(self.served.skipped.len()).filter(|&n| n > 0),
                        );
                    for skip in skipped_for_reply(&self.served.skipped) {
                        line = line.field("skip", skip);
                    }
                    line.finish()
                }
                Err(e) => {
                    let why = format!(
                        "reread failed, still serving the previous licences and options: {e}"
                    );
                    log::error!("{why} (asked by {})", client.peer);
                    reply::err(Code::Internal, &why).finish()
                }
            },
            Request::Down { release } => {
                log::info!(
                    "operator at {} asked the server to shut down{}",
                    client.peer,
                    if release {
                        ", returning every seat"
                    } else {
                        ""
                    }
                );
                self.request_shutdown(release);
                reply::ok().finish()
            }
            Request::BackupForget => self.forget_backup(),
            Request::RotateLog => {
                let to = crate::report::rotated_path(&self.state_dir, now.unix);
                self.journal.rotate_report(to.clone());
                reply::ok().field("rotated", to.display()).finish()
            }
        };
        // Checkins, reclaims and removals that changed seats wait for
        // their record like grants (the ledger says which).
        Some(Reply {
            text,
            wait_for: self.ledger.take_change(),
            grant: None,
        })
    }

    /// Rereads licences and options, and a pair's peer address from the
    /// config file. All are replaced or, when any fails to load, none.
    /// New options apply to checkouts from now on; seats out stay out.
    pub fn reread(&mut self, now: Now) -> Result<Reread, String> {
        let peer_moved = match &self.peer_setting {
            Some(setting) => setting.reread()?,
            None => None,
        };
        let served = self.licences.load()?;
        let options = self.options.load(&served)?;
        let pools = served.pools.len();
        self.refresh_gate(now.mono);
        // Options first: the queues served by set_pools obey the new ones.
        self.ledger.set_options(options);
        // Broken lines may have taken a pool away by mistake: its seats
        // stay out until the line is fixed (or they return as any seat).
        let orphans = if served.skipped.is_empty() {
            Orphans::Return
        } else {
            Orphans::Keep
        };
        self.ledger.set_pools(served.pools.clone(), orphans, now);
        self.served = served;
        // A standby makes no records: the active server's say.
        if self.serving() {
            self.ledger.commit(
                Event::Reread {
                    pools,
                    at: now.unix,
                },
                now,
            );
        }
        self.tell_watchdog(crate::failover::ToWatchdog::Digest(self.digest()));
        log::info!("reread: serving {pools} pool(s)");
        if let (Some(setting), Some(peer)) = (&mut self.peer_setting, &peer_moved) {
            // The watchdog logs the move.
            setting.current = peer.clone();
            self.tell_watchdog(crate::failover::ToWatchdog::PeerAddress(peer.clone()));
        }
        Ok(Reread { pools, peer_moved })
    }
}

/// What a reread did.
pub struct Reread {
    /// Licence pools served now.
    pub pools: usize,
    /// The other server's new peer port, when it moved.
    pub peer_moved: Option<String>,
}

/// Most skipped lines a REREAD reply lists (the log has them all).
const MAX_SKIPS_LISTED: usize = 50;
/// Longest a listed skip message gets.
const MAX_SKIP_CHARS: usize = 300;

/// The skipped lines as the REREAD reply lists them (`skip=` fields):
/// at most [`MAX_SKIPS_LISTED`], each cut to [`MAX_SKIP_CHARS`].
fn skipped_for_reply(skipped: &[String]) -> Vec<String> {
    let mut listed: Vec<String> = skipped
        .iter()
        .take(MAX_SKIPS_LISTED)
        .map(|s| match s.char_indices().nth(MAX_SKIP_CHARS) {
            Some((cut, _)) => format!("{}...", &s[..cut]),
            None => s.clone(),
        })
        .collect();
    if skipped.len() > MAX_SKIPS_LISTED {
        listed.push(format!(
            "and {} more (see the server's log)",
            skipped.len() - MAX_SKIPS_LISTED
        ));
    }
    listed
}
