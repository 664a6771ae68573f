//! Server replies: written by the server, parsed by the client library.
//!
//! Replies come back in request order. Lines starting with `*` are pushed
//! by the server outside that order (a queued checkout decided, a move to
//! another server) and never answer a request.

use super::line::{self, Line, LineBuilder};
use crate::codes::Code;
use crate::ledger::{Grant, Refusal};

/// The line a server sends as soon as a connection is accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Greeting {
    pub proto: u32,
    /// `primary`, `backup` or `standalone`.
    pub role: String,
    /// `active`, `ready`, `syncing` or `recovering`.
    pub state: String,
    pub epoch: u64,
    /// The server's name from its licence line.
    pub server: String,
    /// Where the other server of the pair listens for clients, if any.
    pub peer: Option<String>,
    /// Where the active server is, when this one is not.
    pub active: Option<String>,
}

impl Greeting {
    pub fn to_line(&self) -> String {
        LineBuilder::new("FLOATD")
            .field("proto", self.proto)
            .field("role", &self.role)
            .field("state", &self.state)
            .field("epoch", self.epoch)
            .field("server", &self.server)
            .field_opt("peer", self.peer.as_ref())
            .field_opt("active", self.active.as_ref())
            .finish()
    }

    pub fn parse(text: &str) -> Result<Greeting, String> {
        let l = line::parse(text)?;
        if l.word != "FLOATD" {
            return Err(format!("not a floatd server (greeting {:?})", l.word));
        }
        let num = |k: &str| -> Result<u64, String> {
            l.get(k)
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("greeting lacks a numeric {k}="))
        };
        Ok(Greeting {
            proto: num("proto")? as u32,
            role: l.get("role").unwrap_or("").to_string(),
            state: l.get("state").unwrap_or("").to_string(),
            epoch: num("epoch")?,
            server: l.get("server").unwrap_or("").to_string(),
            peer: l.get("peer").map(str::to_string),
            active: l.get("active").map(str::to_string),
        })
    }
}

/// `OK` with no fields.
pub fn ok() -> LineBuilder {
    LineBuilder::new("OK")
}

/// `ERR CODE msg="..."`; callers may add fields (`rule=`, `active=`).
pub fn err(code: Code, message: &str) -> LineBuilder {
    LineBuilder::new("ERR")
        .arg(code.as_str())
        .field("msg", message)
}

/// The error reply for a refusal.
pub fn refused(refusal: &Refusal) -> LineBuilder {
    err(refusal.code, &refusal.message).field_opt("rule", refusal.rule.as_ref())
}

/// The fields of a granted seat, after `word` (`OK` or `* GRANTED`).
pub fn granted(word: LineBuilder, grant: &Grant) -> LineBuilder {
    word.field_str("handle", &grant.handle)
        .field_str("feature", &grant.feature)
        .field("version", grant.version)
        .field_u64("count", grant.count.into())
        .field("pool", grant.pool.version)
        .field("expires", grant.pool.expiry)
        .field_u64("lease_ms", grant.lease_ms)
}

/// `QUEUED id=N position=P`: the checkout waits; its outcome is pushed.
pub fn queued(id: u64, position: usize) -> LineBuilder {
    LineBuilder::new("QUEUED")
        .field("id", id)
        .field("position", position)
}

/// `* GRANTED id=N ...`: a queued checkout was granted.
pub fn push_granted(id: u64, grant: &Grant) -> LineBuilder {
    granted(LineBuilder::new("*").arg("GRANTED").field("id", id), grant)
}

/// `* DENIED id=N code=CODE msg=...`: a queued checkout was refused.
pub fn push_denied(id: u64, refusal: &Refusal) -> LineBuilder {
    LineBuilder::new("*")
        .arg("DENIED")
        .field("id", id)
        .field("code", refusal.code)
        .field("msg", &refusal.message)
        .field_opt("rule", refusal.rule.as_ref())
}

/// `* MOVED active=ADDR`: this server stopped serving; go to `active`.
pub fn push_moved(active: &str) -> LineBuilder {
    LineBuilder::new("*").arg("MOVED").field("active", active)
}

/// A reply as the client library sees it.
#[derive(Debug)]
pub enum Reply<'a> {
    Ok(Line<'a>),
    Err {
        code: Option<Code>,
        code_text: String,
        message: String,
        line: Line<'a>,
    },
    Queued {
        id: u64,
        position: usize,
    },
    /// `STATUS <json>`.
    Status(&'a str),
    Pong,
    /// A `*` line: kind (`GRANTED`, `DENIED`, `MOVED`) and fields.
    Push(Line<'a>),
}

impl<'a> Reply<'a> {
    pub fn parse(text: &'a str) -> Result<Reply<'a>, String> {
        if let Some(json) = text.strip_prefix("STATUS ") {
            return Ok(Reply::Status(json));
        }
        let l = line::parse(text)?;
        Ok(match l.word {
            "OK" => Reply::Ok(l),
            "PONG" => Reply::Pong,
            "ERR" => {
                let code_text = l.arg(0).unwrap_or("").to_string();
                Reply::Err {
                    code: Code::parse(&code_text),
                    message: l.get("msg").unwrap_or("").to_string(),
                    code_text,
                    line: l,
                }
            }
            "QUEUED" => Reply::Queued {
                id: l
                    .get("id")
                    .and_then(|v| v.parse().ok())
                    .ok_or("QUEUED without id")?,
                position: l.get("position").and_then(|v| v.parse().ok()).unwrap_or(0),
            },
            "*" => Reply::Push(l),
            other => return Err(format!("unexpected reply {other:?}")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greeting_round_trips() {
        let g = Greeting {
            proto: 1,
            role: "primary".into(),
            state: "active".into(),
            epoch: 4,
            server: "lic1".into(),
            peer: Some("10.0.0.2:27001".into()),
            active: None,
        };
        assert_eq!(Greeting::parse(g.to_line().trim_end()).unwrap(), g);
        assert!(Greeting::parse("HTTP/1.1 200 OK").is_err());
    }

    #[test]
    fn errors_carry_code_message_and_extra_fields() {
        let line = err(Code::Standby, "ask the active server")
            .field("active", "10.0.0.1:27000")
            .finish();
        match Reply::parse(line.trim_end()).unwrap() {
            Reply::Err {
                code,
                message,
                line,
                ..
            } => {
                assert_eq!(code, Some(Code::Standby));
                assert_eq!(message, "ask the active server");
                assert_eq!(line.get("active"), Some("10.0.0.1:27000"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn queued_and_push_lines() {
        let q = queued(7, 2).finish();
        assert!(matches!(
            Reply::parse(q.trim_end()).unwrap(),
            Reply::Queued { id: 7, position: 2 }
        ));
        let moved = push_moved("h:1").finish();
        match Reply::parse(moved.trim_end()).unwrap() {
            Reply::Push(l) => {
                assert_eq!(l.arg(0), Some("MOVED"));
                assert_eq!(l.get("active"), Some("h:1"));
            }
            other => panic!("{other:?}"),
        }
    }
}
