//! Status and admin requests: to the active server, or to one named server
//! on a connection of its own (reread, down and rotate-log concern the
//! server named, active or not).

use super::cancel::Watch;
use super::connection::Connection;
use super::{in_event_sink, session, Client, ClientError, ClientEvent};
use crate::protocol::{Reply, Request, StatusReport};

impl Client {
    /// The status report of the active server.
    pub fn status(&self) -> Result<StatusReport, ClientError> {
        let line = self
            .shared
            .call(&Request::Status, self.shared.config.failover_timeout)?;
        parse_status(&line)
    }

    /// The status report of one particular server, active or not.
    pub fn status_of(&self, server: &str) -> Result<StatusReport, ClientError> {
        let line = self.one_off(server, &Request::Status, None)?;
        parse_status(&line)
    }

    /// An admin request to one particular server (reread, down and
    /// rotate-log concern the server named, active or not), after
    /// presenting `token` if given. Returns the OK line.
    pub fn admin_at(
        &self,
        server: &str,
        request: &Request,
        token: Option<&str>,
    ) -> Result<String, ClientError> {
        self.one_off(server, request, token)
    }

    /// One request on a connection of its own to `server`; an `ERR`
    /// becomes `Denied`, except that a standby's answer is returned.
    fn one_off(
        &self,
        server: &str,
        request: &Request,
        token: Option<&str>,
    ) -> Result<String, ClientError> {
        if in_event_sink() {
            return Err(ClientError::Reentrant);
        }
        let sh = &self.shared;
        let notice = |s: &str| {
            sh.emit(ClientEvent::Trying {
                server: s.to_string(),
            })
        };
        let watch = Watch::new(&sh.cancel, None, &notice);
        let config = &sh.config;
        let mut conn = Connection::open(server, &config.identity, config.io_timeout, &watch)
            .map_err(|e| e.error)?;
        if let Some(token) = token {
            let line = conn.request(
                &Request::Auth {
                    token: token.to_string(),
                },
                &watch,
            )?;
            if let Some(e) = session::denial(&line)? {
                return Err(e);
            }
        }
        let line = conn.request(request, &watch)?;
        conn.quit();
        match session::denial(&line)? {
            Some(e) => Err(e),
            None => Ok(line.0),
        }
    }

    /// An admin request about seats (remove) to the active server, after
    /// presenting `token` if given. Returns the OK line.
    pub fn admin(&self, request: &Request, token: Option<&str>) -> Result<String, ClientError> {
        let sh = &self.shared;
        sh.with_session(|session, watch| {
            if let Some(token) = token {
                let auth = Request::Auth {
                    token: token.to_string(),
                };
                session.call(sh, &auth, sh.config.failover_timeout, watch)?;
            }
            session
                .call(sh, request, sh.config.failover_timeout, watch)
                .map(|l| l.0)
        })
    }
}

fn parse_status(line: &str) -> Result<StatusReport, ClientError> {
    match Reply::parse(line).map_err(ClientError::Protocol)? {
        Reply::Status(json) => serde_json::from_str(json)
            .map_err(|e| ClientError::Protocol(format!("status JSON: {e}"))),
        other => Err(ClientError::Protocol(format!(
            "unexpected reply to STATUS: {other:?}"
        ))),
    }
}
