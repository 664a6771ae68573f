//! Host ids: what binds a licence file to a machine (`hostid=` on SERVER
//! and FAILOVER lines), and the ids of the machine we run on.
//!
//! Every id is normalised when parsed (lower case, `:` between MAC octets),
//! so comparing ids is comparing strings, and the canonical form that
//! signatures cover does not change when a customer retypes an id in
//! another case.

use std::fmt;
use std::fs;
use std::path::Path;

/// One `hostid=` value. Build it with [`HostId::parse`], which normalises.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HostId {
    /// `any`: every host matches.
    Any,
    /// `host:NAME`: the host name, lower case.
    Host(String),
    /// `mac:ADDR`: a network interface address, lower-case hex octets joined by `:`.
    Mac(String),
    /// `machine:HEX`: the first 16 hex digits of SHA-256 of /etc/machine-id.
    Machine(String),
}

/// Hex digits of a `machine:` id.
pub const MACHINE_ID_DIGITS: usize = 16;

impl HostId {
    /// Parses `any`, `host:NAME`, `mac:ADDR` or `machine:HEX` (prefixes in
    /// any case).
    pub fn parse(text: &str) -> Result<HostId, String> {
        if text.eq_ignore_ascii_case("any") {
            return Ok(HostId::Any);
        }
        let Some((kind, value)) = text.split_once(':') else {
            return Err(format!(
                "expected a host id: any, host:NAME, mac:ADDR or machine:HEX, found {text:?}"
            ));
        };
        match kind.to_ascii_lowercase().as_str() {
            "host" => parse_host_name(value).map(HostId::Host),
            "mac" => normalise_mac(value).map(HostId::Mac),
            "machine" => parse_machine(value).map(HostId::Machine),
            _ => Err(format!(
                "unknown host id kind {kind:?}: expected any, host:NAME, mac:ADDR or machine:HEX"
            )),
        }
    }

    /// True when this id names the host whose ids are `host`.
    pub fn matches(&self, host: &HostIds) -> bool {
        match self {
            HostId::Any => true,
            wanted => host.ids.iter().any(|id| id == wanted),
        }
    }
}

impl fmt::Display for HostId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostId::Any => f.write_str("any"),
            HostId::Host(name) => write!(f, "host:{name}"),
            HostId::Mac(addr) => write!(f, "mac:{addr}"),
            HostId::Machine(hex) => write!(f, "machine:{hex}"),
        }
    }
}

fn parse_host_name(name: &str) -> Result<String, String> {
    let valid = !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    if valid {
        Ok(name.to_ascii_lowercase())
    } else {
        Err(format!(
            "expected a host name (letters, digits, '-', '.', '_') after host:, found {name:?}"
        ))
    }
}

/// Normalises `52-54-00-AB-CD-EF` and `52:54:00:ab:cd:ef` alike to
/// `52:54:00:ab:cd:ef`. Accepts 6 to 20 octets (Ethernet to InfiniBand).
pub fn normalise_mac(addr: &str) -> Result<String, String> {
    let octets: Vec<&str> = addr.split([':', '-']).collect();
    let valid = (6..=20).contains(&octets.len())
        && octets
            .iter()
            .all(|o| o.len() == 2 && o.bytes().all(|b| b.is_ascii_hexdigit()));
    if valid {
        Ok(octets.join(":").to_ascii_lowercase())
    } else {
        Err(format!(
            "expected a MAC address of hex octets joined by ':' or '-' after mac:, found {addr:?}"
        ))
    }
}

fn parse_machine(hex: &str) -> Result<String, String> {
    if hex.len() == MACHINE_ID_DIGITS && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(hex.to_ascii_lowercase())
    } else {
        Err(format!(
            "expected {MACHINE_ID_DIGITS} hex digits after machine: (see floatctl hostid), found {hex:?}"
        ))
    }
}

/// The `machine:` id of a host whose /etc/machine-id holds `contents`, or
/// `None` when the file is empty or not yet initialised.
pub fn machine_id_from_contents(contents: &str) -> Option<HostId> {
    let trimmed = contents.trim();
    if trimmed.is_empty() || trimmed == "uninitialized" {
        return None;
    }
    Some(HostId::Machine(super::sha256_hex_prefix(
        trimmed.as_bytes(),
        MACHINE_ID_DIGITS,
    )))
}

/// The ids of one host: its names, MAC addresses and machine id. Never
/// holds [`HostId::Any`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostIds {
    ids: Vec<HostId>,
}

impl HostIds {
    /// Ids given by hand (tests, or a host described elsewhere). `any` and
    /// duplicates are dropped.
    pub fn from_ids(ids: impl IntoIterator<Item = HostId>) -> HostIds {
        let mut host = HostIds::default();
        for id in ids {
            host.push(id);
        }
        host
    }

    /// This host's ids, read from the running system. Sources that are
    /// missing or unreadable are left out.
    pub fn detect() -> HostIds {
        HostIds::detect_under(Path::new("/"))
    }

    /// Like [`HostIds::detect`], reading `proc/sys/kernel/hostname` (else
    /// `etc/hostname`), `sys/class/net/*/address` and `etc/machine-id`
    /// under `root`.
    pub fn detect_under(root: &Path) -> HostIds {
        let mut host = HostIds::default();
        let hostname = read_trimmed(&root.join("proc/sys/kernel/hostname"))
            .or_else(|| read_trimmed(&root.join("etc/hostname")));
        if let Some(name) = hostname {
            if let Ok(full) = parse_host_name(&name) {
                // A fully qualified name also answers to its first label.
                let short = full.split('.').next().unwrap_or(&full).to_string();
                host.push(HostId::Host(full));
                host.push(HostId::Host(short));
            }
        }
        for mac in interface_macs(&root.join("sys/class/net")) {
            host.push(HostId::Mac(mac));
        }
        if let Some(contents) = read_trimmed(&root.join("etc/machine-id")) {
            if let Some(id) = machine_id_from_contents(&contents) {
                host.push(id);
            }
        }
        host
    }

    fn push(&mut self, id: HostId) {
        if id != HostId::Any && !self.ids.contains(&id) {
            self.ids.push(id);
        }
    }

    /// The ids in the order found: host names, MACs, machine id.
    pub fn ids(&self) -> &[HostId] {
        &self.ids
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

fn read_trimmed(path: &Path) -> Option<String> {
    let text = fs::read_to_string(path).ok()?;
    let trimmed = text.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_string())
}

/// MAC addresses of the interfaces under `net_dir`, sorted by interface
/// name, without loopback, all-zero addresses and ones that do not parse
/// (tunnels report other kinds of address there).
fn interface_macs(net_dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(net_dir) else {
        return Vec::new();
    };
    let mut interfaces: Vec<_> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name() != "lo")
        .map(|e| e.path())
        .collect();
    interfaces.sort();
    interfaces
        .iter()
        .filter_map(|dir| read_trimmed(&dir.join("address")))
        .filter_map(|addr| normalise_mac(&addr).ok())
        .filter(|mac| mac.bytes().any(|b| b != b'0' && b != b':'))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(text: &str) -> HostId {
        HostId::parse(text).unwrap()
    }

    #[test]
    fn parses_and_normalises() {
        assert_eq!(id("ANY"), HostId::Any);
        assert_eq!(
            id("host:Lic1.Example.COM").to_string(),
            "host:lic1.example.com"
        );
        assert_eq!(id("HOST:lic1"), id("host:LIC1"));
        assert_eq!(
            id("mac:52-54-00-AB-cd-EF").to_string(),
            "mac:52:54:00:ab:cd:ef"
        );
        assert_eq!(id("mac:52:54:00:ab:cd:ef"), id("MAC:52-54-00-AB-CD-EF"));
        assert_eq!(
            id("machine:3F2A9C01D4E5B6A7").to_string(),
            "machine:3f2a9c01d4e5b6a7"
        );
    }

    #[test]
    fn rejects_malformed_ids() {
        for bad in [
            "",
            "anything",
            "host:",
            "host:a b",
            "host:\"x\"",
            "mac:52:54:00",
            "mac:5254:00:12:34:56",
            "mac:52:54:00:12:34:zz",
            "machine:123",
            "machine:3f2a9c01d4e5b6a7ff",
            "machine:3f2a9c01d4e5b6ag",
            "ip:10.0.0.1",
        ] {
            assert!(HostId::parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn matching() {
        let host = HostIds::from_ids([
            id("host:lic1"),
            id("mac:52:54:00:12:34:56"),
            id("machine:3f2a9c01d4e5b6a7"),
            HostId::Any,
        ]);
        assert_eq!(host.ids().len(), 3, "any is not one of a host's ids");
        assert!(id("any").matches(&host));
        assert!(id("any").matches(&HostIds::default()));
        assert!(id("host:LIC1").matches(&host));
        assert!(!id("host:lic2").matches(&host));
        assert!(id("mac:52-54-00-12-34-56").matches(&host));
        assert!(!id("mac:52:54:00:12:34:57").matches(&host));
        assert!(id("machine:3F2A9C01D4E5B6A7").matches(&host));
        assert!(!id("machine:0000000000000000").matches(&host));
    }

    #[test]
    fn machine_id_hashes_trimmed_contents() {
        let a = machine_id_from_contents("0123456789abcdef0123456789abcdef\n").unwrap();
        let b = machine_id_from_contents("  0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(a, b);
        let expected = crate::licence::sha256_hex_prefix(b"0123456789abcdef0123456789abcdef", 16);
        assert_eq!(a.to_string(), format!("machine:{expected}"));
        assert_eq!(machine_id_from_contents(" \n"), None);
        assert_eq!(machine_id_from_contents("uninitialized\n"), None);
    }

    #[test]
    fn detects_from_a_fake_root() {
        let root = tempfile::tempdir().unwrap();
        let put = |rel: &str, text: &str| {
            let path = root.path().join(rel);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        };
        put("etc/hostname", "Lic1.example.com\n");
        put("sys/class/net/lo/address", "00:00:00:00:00:00\n");
        put("sys/class/net/eth1/address", "52:54:00:AB:CD:02\n");
        put("sys/class/net/eth0/address", "52:54:00:ab:cd:01\n");
        put("sys/class/net/dummy0/address", "00:00:00:00:00:00\n");
        put("sys/class/net/tun0/address", "\n");
        put("sys/class/net/sit0/address", "0.0.0.0\n");
        put("etc/machine-id", "0123456789abcdef0123456789abcdef\n");
        let host = HostIds::detect_under(root.path());
        let shown: Vec<String> = host.ids().iter().map(HostId::to_string).collect();
        let machine = machine_id_from_contents("0123456789abcdef0123456789abcdef").unwrap();
        assert_eq!(
            shown,
            [
                "host:lic1.example.com".to_string(),
                "host:lic1".to_string(),
                "mac:52:54:00:ab:cd:01".to_string(),
                "mac:52:54:00:ab:cd:02".to_string(),
                machine.to_string(),
            ]
        );

        // /proc's hostname wins over /etc/hostname; every source may be missing.
        put("proc/sys/kernel/hostname", "build7\n");
        assert_eq!(
            HostIds::detect_under(root.path()).ids()[0],
            id("host:build7")
        );
        let empty = tempfile::tempdir().unwrap();
        assert!(HostIds::detect_under(empty.path()).is_empty());
    }
}
