//! Host name resolution that works in the static build.
//!
//! A static glibc binary cannot load the NSS modules behind
//! `getaddrinfo`, so std's `ToSocketAddrs` may fail for every name there.
//! Every address floatd resolves (`--bind`, `--peer`, `--peer-listen`,
//! `--witness`, `--http`, a client's server list) goes through
//! [`resolve`], which answers, in order:
//!
//! 1. numeric IPv4 and IPv6 addresses (`10.0.0.5:27000`, `[::1]:27000`),
//!    directly;
//! 2. `localhost` (and `localhost.`): 127.0.0.1, then ::1;
//! 3. a name listed in `/etc/hosts`, read by us (as `files` comes first in
//!    the usual nsswitch.conf);
//! 4. anything else through std (`getaddrinfo`: DNS and the rest of NSS),
//!    which works in the dynamic build and may not in the static one.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::path::Path;

/// The network a peer address counts for when limits are kept per
/// source: the address itself for IPv4 (and IPv4-mapped IPv6), its /64
/// for IPv6, since one host commonly holds a whole /64.
pub fn network_of(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
        v4 => v4,
    }
}

/// Which of several connections a newcomer pushes out when a port is
/// full, given each one's address and arrival number (a counter: smaller
/// came earlier): the oldest of the address that holds the most (on a
/// tie, the address whose oldest is older). So a stranger who floods from
/// one address pushes out only its own connections, and the one pushed
/// out has had the longest to prove itself.
pub fn oldest_of_busiest(waiting: &[(IpAddr, u64)]) -> Option<usize> {
    let mut by_addr: std::collections::HashMap<IpAddr, (usize, usize)> =
        std::collections::HashMap::new();
    for (i, (addr, since)) in waiting.iter().enumerate() {
        let entry = by_addr.entry(network_of(*addr)).or_insert((0, i));
        entry.0 += 1;
        if *since < waiting[entry.1].1 {
            entry.1 = i;
        }
    }
    by_addr
        .values()
        .max_by(|(count_a, oldest_a), (count_b, oldest_b)| {
            count_a
                .cmp(count_b)
                .then(waiting[*oldest_b].1.cmp(&waiting[*oldest_a].1))
        })
        .map(|&(_, oldest)| oldest)
}

/// The hosts file consulted for names.
pub const HOSTS_FILE: &str = "/etc/hosts";

/// Resolves `HOST:PORT` (or `[V6]:PORT`) to its addresses, in the order
/// to try them.
pub fn resolve(addr: &str) -> io::Result<Vec<SocketAddr>> {
    resolve_with(addr, Path::new(HOSTS_FILE))
}

/// Resolves `host` and `port` (the host without brackets).
pub fn resolve_host(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    resolve_host_with(host, port, Path::new(HOSTS_FILE))
}

/// [`resolve`] with another hosts file (for tests).
pub fn resolve_with(addr: &str, hosts: &Path) -> io::Result<Vec<SocketAddr>> {
    let (host, port) = split_host_port(addr)?;
    resolve_host_with(host, port, hosts)
}

/// [`resolve_host`] with another hosts file (for tests).
pub fn resolve_host_with(host: &str, port: u16, hosts: &Path) -> io::Result<Vec<SocketAddr>> {
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() {
        return Err(invalid(format!("empty host name in {host:?}:{port}")));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    if name.eq_ignore_ascii_case("localhost") {
        return Ok(vec![
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port),
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port),
        ]);
    }
    if let Ok(text) = std::fs::read_to_string(hosts) {
        let found = lookup_hosts(&text, name);
        if !found.is_empty() {
            return Ok(found
                .into_iter()
                .map(|ip| SocketAddr::new(ip, port))
                .collect());
        }
    }
    let found: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!(
                    "cannot resolve {host:?}: {e} (not a numeric address, not localhost, not in {})",
                    hosts.display()
                ),
            )
        })?
        .collect();
    if found.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("{host:?} resolves to no address"),
        ));
    }
    Ok(found)
}

/// The addresses a hosts file gives `name` (case-insensitive, names and
/// aliases), in file order, IPv4 before IPv6.
pub fn lookup_hosts(text: &str, name: &str) -> Vec<IpAddr> {
    let mut v4 = Vec::new();
    let mut v6 = Vec::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or("");
        let mut fields = line.split_whitespace();
        let Some(ip) = fields.next() else { continue };
        // Scoped IPv6 addresses (fe80::1%eth0) are not for us.
        let Ok(ip) = ip.parse::<IpAddr>() else {
            continue;
        };
        if fields.any(|n| n.strip_suffix('.').unwrap_or(n).eq_ignore_ascii_case(name)) {
            let list = if ip.is_ipv4() { &mut v4 } else { &mut v6 };
            if !list.contains(&ip) {
                list.push(ip);
            }
        }
    }
    v4.extend(v6);
    v4
}

/// Splits `HOST:PORT` or `[V6]:PORT`.
pub fn split_host_port(addr: &str) -> io::Result<(&str, u16)> {
    let addr = addr.trim();
    let (host, port) = if let Some(rest) = addr.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| invalid(format!("{addr:?}: missing ']'")))?;
        let port = after
            .strip_prefix(':')
            .ok_or_else(|| invalid(format!("{addr:?}: expected [ADDRESS]:PORT")))?;
        (host, port)
    } else {
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| invalid(format!("{addr:?}: expected HOST:PORT")))?;
        if host.contains(':') {
            return Err(invalid(format!(
                "{addr:?}: write IPv6 addresses in brackets, as [::1]:27000"
            )));
        }
        (host, port)
    };
    let port = port
        .parse::<u16>()
        .map_err(|_| invalid(format!("{addr:?}: {port:?} is not a port number")))?;
    Ok((host, port))
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn a_newcomer_pushes_out_the_oldest_of_the_busiest_network() {
        let s = |n: u64| n;
        assert_eq!(oldest_of_busiest(&[]), None);
        // One address holds three, the other (older) one: the three lose.
        let waiting = [(ip(1), s(0)), (ip(2), s(5)), (ip(2), s(3)), (ip(2), s(9))];
        assert_eq!(oldest_of_busiest(&waiting), Some(2));
        // A tie: the address whose oldest is older loses it.
        let waiting = [(ip(1), s(4)), (ip(2), s(2)), (ip(1), s(6)), (ip(2), s(8))];
        assert_eq!(oldest_of_busiest(&waiting), Some(1));
        // All from one address: the oldest.
        let waiting = [(ip(1), s(7)), (ip(1), s(1)), (ip(1), s(3))];
        assert_eq!(oldest_of_busiest(&waiting), Some(1));
        // IPv6 addresses of one /64 count as one.
        let v6 = |a: &str| a.parse::<IpAddr>().unwrap();
        let waiting = [
            (v6("2001:db8::1"), s(1)),
            (v6("2001:db8:0:1::1"), s(2)),
            (v6("2001:db8:0:1::2"), s(3)),
        ];
        assert_eq!(oldest_of_busiest(&waiting), Some(1));
    }

    const HOSTS: &str = "\
# comment
127.0.0.1   localhost
::1         localhost ip6-localhost
10.1.2.3    lic1.example.com lic1   # the primary
10.1.2.4    LIC2
fe80::1%eth0 scoped
2001:db8::7 lic1
not-an-ip   bogus
10.1.2.3    lic1
";

    fn hosts_file() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts");
        std::fs::write(&path, HOSTS).unwrap();
        (dir, path)
    }

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn numeric_addresses_need_no_lookup() {
        let none = Path::new("/nonexistent/hosts");
        assert_eq!(
            resolve_with("192.0.2.1:27000", none).unwrap(),
            addrs(&["192.0.2.1:27000"])
        );
        assert_eq!(
            resolve_with("[2001:db8::1]:27001", none).unwrap(),
            addrs(&["[2001:db8::1]:27001"])
        );
        assert_eq!(
            resolve_host_with("::1", 5, none).unwrap(),
            addrs(&["[::1]:5"])
        );
        assert_eq!(
            resolve_host_with("0.0.0.0", 0, none).unwrap(),
            addrs(&["0.0.0.0:0"])
        );
    }

    #[test]
    fn localhost_needs_no_hosts_file() {
        let none = Path::new("/nonexistent/hosts");
        assert_eq!(
            resolve_with("localhost:27000", none).unwrap(),
            addrs(&["127.0.0.1:27000", "[::1]:27000"])
        );
        assert_eq!(
            resolve_with("LocalHost.:1", none).unwrap()[0],
            "127.0.0.1:1".parse().unwrap()
        );
    }

    #[test]
    fn names_come_from_the_hosts_file() {
        let (_dir, hosts) = hosts_file();
        assert_eq!(
            resolve_with("lic1:27000", &hosts).unwrap(),
            addrs(&["10.1.2.3:27000", "[2001:db8::7]:27000"])
        );
        assert_eq!(
            resolve_with("LIC1.example.com.:9", &hosts).unwrap(),
            addrs(&["10.1.2.3:9"])
        );
        assert_eq!(
            resolve_with("lic2:27001", &hosts).unwrap(),
            addrs(&["10.1.2.4:27001"])
        );
        assert!(lookup_hosts(HOSTS, "scoped").is_empty());
        assert!(lookup_hosts(HOSTS, "bogus").is_empty());
        assert!(
            lookup_hosts(HOSTS, "primary").is_empty(),
            "comments are not names"
        );
    }

    #[test]
    fn unknown_names_fall_back_to_the_system_and_fail_clearly() {
        let none = Path::new("/nonexistent/hosts");
        let err = resolve_with("no-such-host.invalid:27000", none).unwrap_err();
        assert!(err.to_string().contains("no-such-host.invalid"), "{err}");
    }

    #[test]
    fn malformed_addresses_are_refused() {
        let none = Path::new("/nonexistent/hosts");
        for bad in [
            "lic1",
            "lic1:",
            "lic1:99999",
            "::1:27000",
            "[::1]27000",
            "[::1",
            ":27000",
        ] {
            assert!(resolve_with(bad, none).is_err(), "{bad}");
        }
        assert_eq!(split_host_port(" h:1 ").unwrap(), ("h", 1));
    }
}
