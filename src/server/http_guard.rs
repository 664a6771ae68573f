//! What the HTTP port ([`super::http`]) decides from bytes and addresses
//! alone, apart from its sockets: how to read a request head, and which
//! connection makes room for a newcomer. Pure, so they are unit-tested and
//! fuzzed (`floatd::fuzzing::http_request`).

/// Most bytes of a request head (request line and headers).
pub const MAX_HEAD: usize = 8 * 1024;
/// Most headers in a request.
pub const MAX_HEADERS: usize = 32;
/// Most HTTP connections open at once.
pub const MAX_CONNS: usize = 64;
/// Most HTTP connections open at once from one address (an IPv6 /64).
pub const MAX_CONNS_PER_ADDR: usize = 8;

/// What a request head asks for, decided from its bytes alone.
#[derive(Debug, PartialEq, Eq)]
pub enum Head {
    /// More bytes are needed.
    Partial,
    /// Answer with this status and a plain-text body (405 adds `Allow`).
    Refuse { code: u16, body: String },
    /// A GET (or HEAD) of this path, its query and fragment cut off.
    Get { path: String, head: bool },
}

/// Reads a request head: at most [`MAX_HEAD`] bytes and [`MAX_HEADERS`]
/// headers (431), well-formed (400), GET or HEAD (405).
pub fn read_head(input: &[u8]) -> Head {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let refuse = |code: u16, body: String| Head::Refuse { code, body };
    match request.parse(input) {
        Ok(httparse::Status::Partial) if input.len() > MAX_HEAD => refuse(
            431,
            format!("request header fields too large (at most {MAX_HEAD} bytes)\n"),
        ),
        Ok(httparse::Status::Partial) => Head::Partial,
        Err(httparse::Error::TooManyHeaders) => refuse(
            431,
            format!("too many header fields (at most {MAX_HEADERS})\n"),
        ),
        Err(e) => refuse(400, format!("bad request: {e}\n")),
        Ok(httparse::Status::Complete(_)) => {
            let method = request.method.unwrap_or("");
            let head = method == "HEAD";
            if method != "GET" && !head {
                return refuse(405, "this port is read-only: GET and HEAD only\n".into());
            }
            let path = request.path.unwrap_or("");
            let path = path.split(['?', '#']).next().unwrap_or("");
            Head::Get {
                path: path.to_string(),
                head,
            }
        }
    }
}

/// Which open connection (index into `open`: address and arrival number)
/// makes room for a newcomer from `newcomer`, if one must: its address's
/// oldest when that address holds [`MAX_CONNS_PER_ADDR`], else, when the
/// port holds [`MAX_CONNS`], the oldest of the busiest address.
pub fn make_room(open: &[(std::net::IpAddr, u64)], newcomer: std::net::IpAddr) -> Option<usize> {
    use crate::net::network_of;
    let net = network_of(newcomer);
    let own: Vec<usize> = (0..open.len())
        .filter(|&i| network_of(open[i].0) == net)
        .collect();
    if own.len() >= MAX_CONNS_PER_ADDR {
        return own.into_iter().min_by_key(|&i| open[i].1);
    }
    if open.len() >= MAX_CONNS {
        return crate::net::oldest_of_busiest(open);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_is_made_from_the_busiest_address() {
        let ip = |last: u8| std::net::IpAddr::from([192, 0, 2, last]);
        let mut open: Vec<(std::net::IpAddr, u64)> = Vec::new();
        assert_eq!(make_room(&open, ip(1)), None);
        // One address at its cap: its own oldest goes.
        for i in 0..MAX_CONNS_PER_ADDR as u64 {
            open.push((ip(1), 10 + i));
        }
        open.push((ip(2), 1));
        assert_eq!(make_room(&open, ip(1)), Some(0));
        assert_eq!(make_room(&open, ip(2)), None);
        // The port full: the busiest address's oldest, never the lone one.
        let mut open: Vec<(std::net::IpAddr, u64)> = (0..MAX_CONNS as u64)
            .map(|i| (ip(10 + (i % 8) as u8), 100 + i))
            .collect();
        open[5] = (ip(200), 0);
        let victim = make_room(&open, ip(99)).unwrap();
        assert_ne!(victim, 5);
        assert_eq!(open[victim].0, ip(10 + (victim % 8) as u8));
    }
}
