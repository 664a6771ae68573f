//! The run's network: four namespaces made by scripts/chaos.sh (primary,
//! backup, witness, clients), joined by one veth link per pair, each link
//! a /30 of its own, and the faults put on a link: packets dropped (a cut,
//! or a loss burst) with nftables on both ends, delayed with `tc netem`.
//!
//! Names and addresses follow one convention, shared with chaos.sh: the
//! namespaces are `<prefix>p`, `<prefix>b`, `<prefix>w`, `<prefix>c`; in
//! each, the interface towards namespace X is `to-X`; link number N has
//! 10.99.N.1 on its first end and 10.99.N.2 on its second.

use super::schedule::{Link, Node};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Net {
    pub prefix: String,
    /// `tc qdisc netem` works in this kernel.
    pub netem: bool,
}

/// One end of a link: namespace letter and interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct End {
    ns: char,
    ifname: &'static str,
}

fn letter(node: Node) -> char {
    match node {
        Node::Primary => 'p',
        Node::Backup => 'b',
        Node::Witness => 'w',
    }
}

/// The link's number and its two ends (first end .1, second .2).
fn ends(link: Link) -> (u8, End, End) {
    let e = |ns, ifname| End { ns, ifname };
    match link {
        Link::PrimaryBackup => (1, e('p', "to-b"), e('b', "to-p")),
        Link::PrimaryWitness => (2, e('p', "to-w"), e('w', "to-p")),
        Link::BackupWitness => (3, e('b', "to-w"), e('w', "to-b")),
        Link::ClientsPrimary => (4, e('c', "to-p"), e('p', "to-c")),
        Link::ClientsBackup => (5, e('c', "to-b"), e('b', "to-c")),
    }
}

impl Net {
    pub fn new(prefix: &str) -> Net {
        Net {
            prefix: prefix.to_string(),
            netem: false,
        }
    }

    pub fn ns(&self, node: Node) -> String {
        format!("{}{}", self.prefix, letter(node))
    }

    pub fn clients_ns(&self) -> String {
        format!("{}c", self.prefix)
    }

    /// The address of `node` on the link that joins it to `from` (a node,
    /// or the clients when `None`).
    pub fn addr(&self, node: Node, from: Option<Node>) -> String {
        let me = letter(node);
        let other = from.map_or('c', letter);
        for link in Link::ALL {
            let (n, a, b) = ends(link);
            if (a.ns, b.ns) == (me, other) {
                return format!("10.99.{n}.1");
            }
            if (a.ns, b.ns) == (other, me) {
                return format!("10.99.{n}.2");
            }
        }
        panic!("no link between {me} and {other}");
    }

    /// Runs `args` in namespace `ns` (a letter), with `stdin` if given.
    fn exec(&self, ns: char, args: &[&str], stdin: Option<&str>) -> Result<(), String> {
        let name = format!("{}{ns}", self.prefix);
        let mut child = Command::new("ip")
            .args(["netns", "exec", &name])
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("ip netns exec {name} {}: {e}", args.join(" ")))?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            let _ = pipe.write_all(text.as_bytes());
        }
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "in {name}: {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// Sets up the drop rules' chains in every namespace, and finds out
    /// whether this kernel has netem.
    pub fn prepare(&mut self) -> Result<(), String> {
        for ns in ['p', 'b', 'w', 'c'] {
            let ifs: Vec<&str> = Link::ALL
                .iter()
                .flat_map(|l| {
                    let (_, a, b) = ends(*l);
                    [a, b]
                })
                .filter(|e| e.ns == ns)
                .map(|e| e.ifname)
                .collect();
            let mut rules = String::from("table inet chaos {\n");
            for i in &ifs {
                rules.push_str(&format!(
                    "  chain {i}-out {{\n  }}\n  chain {i}-in {{\n  }}\n"
                ));
            }
            rules.push_str(
                "  chain out {\n    type filter hook output priority 0; policy accept;\n",
            );
            for i in &ifs {
                rules.push_str(&format!("    oifname \"{i}\" jump {i}-out\n"));
            }
            rules.push_str(
                "  }\n  chain in {\n    type filter hook input priority 0; policy accept;\n",
            );
            for i in &ifs {
                rules.push_str(&format!("    iifname \"{i}\" jump {i}-in\n"));
            }
            rules.push_str("  }\n}\n");
            // A table left by an earlier run in these namespaces goes first.
            let _ = self.exec(ns, &["nft", "delete", "table", "inet", "chaos"], None);
            self.exec(ns, &["nft", "-f", "-"], Some(&rules))?;
        }
        let probe = ends(Link::ClientsPrimary).1;
        self.netem = self
            .exec(
                probe.ns,
                &[
                    "tc",
                    "qdisc",
                    "replace",
                    "dev",
                    probe.ifname,
                    "root",
                    "netem",
                    "delay",
                    "1ms",
                ],
                None,
            )
            .is_ok();
        if self.netem {
            self.exec(
                probe.ns,
                &["tc", "qdisc", "del", "dev", probe.ifname, "root"],
                None,
            )?;
        }
        Ok(())
    }

    fn rule(&self, end: End, dir: &str, rule: &str) -> Result<(), String> {
        let chain = format!("{}-{dir}", end.ifname);
        let mut args = vec!["nft", "add", "rule", "inet", "chaos", &chain];
        args.extend(rule.split(' '));
        self.exec(end.ns, &args, None)
    }

    /// Drops every packet on the link, both ways.
    pub fn cut(&self, link: Link) -> Result<(), String> {
        let (_, a, b) = ends(link);
        for end in [a, b] {
            self.rule(end, "out", "drop")?;
            self.rule(end, "in", "drop")?;
        }
        Ok(())
    }

    /// Drops `percent` of the packets leaving each end.
    pub fn loss(&self, link: Link, percent: u8) -> Result<(), String> {
        let (_, a, b) = ends(link);
        let rule = format!("numgen random mod 100 < {} drop", percent.min(99));
        for end in [a, b] {
            self.rule(end, "out", &rule)?;
        }
        Ok(())
    }

    /// Delays the packets leaving each end (netem), when the kernel can.
    pub fn delay(&self, link: Link, delay: Duration, jitter: Duration) -> Result<(), String> {
        if !self.netem {
            return Err("this kernel has no netem (CONFIG_NET_SCH_NETEM)".into());
        }
        let (_, a, b) = ends(link);
        let (d, j) = (
            format!("{}ms", delay.as_millis()),
            format!("{}ms", jitter.as_millis()),
        );
        for end in [a, b] {
            self.exec(
                end.ns,
                &[
                    "tc", "qdisc", "replace", "dev", end.ifname, "root", "netem", "delay", &d, &j,
                ],
                None,
            )?;
        }
        Ok(())
    }

    /// Lets every packet through again, undelayed.
    pub fn heal(&self, link: Link) -> Result<(), String> {
        let (_, a, b) = ends(link);
        for end in [a, b] {
            for dir in ["out", "in"] {
                let chain = format!("{}-{dir}", end.ifname);
                self.exec(
                    end.ns,
                    &["nft", "flush", "chain", "inet", "chaos", &chain],
                    None,
                )?;
            }
            if self.netem {
                // No qdisc to delete is fine.
                let _ = self.exec(
                    end.ns,
                    &["tc", "qdisc", "del", "dev", end.ifname, "root"],
                    None,
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pair_has_its_own_addresses() {
        let net = Net::new("x");
        assert_eq!(net.addr(Node::Primary, Some(Node::Backup)), "10.99.1.1");
        assert_eq!(net.addr(Node::Backup, Some(Node::Primary)), "10.99.1.2");
        assert_eq!(net.addr(Node::Witness, Some(Node::Backup)), "10.99.3.2");
        assert_eq!(net.addr(Node::Primary, None), "10.99.4.2");
        assert_eq!(net.addr(Node::Backup, None), "10.99.5.2");
        assert_eq!(net.ns(Node::Witness), "xw");
        // Each link's ends are in two different namespaces, and each
        // namespace names an interface once.
        let mut seen = std::collections::BTreeSet::new();
        for link in Link::ALL {
            let (_, a, b) = ends(link);
            assert_ne!(a.ns, b.ns);
            assert!(seen.insert((a.ns, a.ifname)) && seen.insert((b.ns, b.ifname)));
        }
    }
}
