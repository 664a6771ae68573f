//! The site a run serves: a throwaway vendor key, a licence signed with it
//! (`floatctl keygen` and `sign`, as a vendor would), the peer secret, the
//! admin token, and each server's command line in its namespace.

use super::net::Net;
use super::schedule::{Mode, Node};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The feature the history-checked fleet contends for.
pub const FEATURE: &str = "cad";
/// An uncounted feature for the well-behaved client during floods.
pub const FREE_FEATURE: &str = "viewer";
/// A large pool for the soak's thousands of holders.
pub const SOAK_FEATURE: &str = "soak";
pub const SOAK_COUNT: u32 = 20_000;

pub const CLIENT_PORT: u16 = 27000;
pub const PEER_PORT: u16 = 27001;
pub const WITNESS_PORT: u16 = 27002;
pub const HTTP_PORT: u16 = 27080;

/// Failover timings and the lease the servers run with.
#[derive(Clone, Copy, Debug)]
pub struct ServerTimings {
    pub ping_interval: Duration,
    pub takeover_after: Duration,
    pub fence_after: Duration,
    pub sync_timeout: Duration,
    pub lease: Duration,
}

pub struct Site {
    pub dir: PathBuf,
    pub licence: PathBuf,
    pub vendor_pub: PathBuf,
    pub secret: PathBuf,
    pub token_file: PathBuf,
    pub token: String,
    /// The directory holding floatd and floatctl.
    pub bin_dir: PathBuf,
}

impl Site {
    /// Makes keys, licence, secret and token under `dir`.
    pub fn create(dir: &Path, count: u32) -> Result<Site, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("{dir:?}: {e}"))?;
        let bin_dir = std::env::current_exe()
            .map_err(|e| e.to_string())?
            .parent()
            .ok_or("no directory for the binaries")?
            .to_path_buf();
        let floatctl = |args: &[&str]| -> Result<Vec<u8>, String> {
            let out = Command::new(bin_dir.join("floatctl"))
                .args(args)
                .output()
                .map_err(|e| format!("floatctl {}: {e}", args.join(" ")))?;
            if !out.status.success() {
                return Err(format!(
                    "floatctl {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            Ok(out.stdout)
        };
        let keys = dir.join("keys");
        let _ = std::fs::remove_dir_all(&keys);
        floatctl(&["keygen", "--out", &keys.display().to_string()])?;
        let unsigned = dir.join("site.txt");
        let text = format!(
            "SERVER lic1 hostid=any port={CLIENT_PORT}\n\
             FAILOVER lic2 hostid=any port={CLIENT_PORT}\n\
             FEATURE {FEATURE} version=1.0 count={count} expires=permanent\n\
             FEATURE {FREE_FEATURE} version=1.0 count=uncounted expires=permanent\n\
             FEATURE {SOAK_FEATURE} version=1.0 count={SOAK_COUNT} expires=permanent\n"
        );
        write(&unsigned, &text)?;
        let signed = floatctl(&[
            "sign",
            "--key",
            &keys.join("vendor.key").display().to_string(),
            &unsigned.display().to_string(),
        ])?;
        let licence = dir.join("site.lic");
        std::fs::write(&licence, signed).map_err(|e| format!("{licence:?}: {e}"))?;
        let token = random_text();
        let site = Site {
            licence,
            vendor_pub: keys.join("vendor.pub"),
            secret: dir.join("peer.secret"),
            token_file: dir.join("admin.token"),
            token: token.clone(),
            bin_dir,
            dir: dir.to_path_buf(),
        };
        write(&site.secret, &format!("{}\n", random_text()))?;
        write(&site.token_file, &format!("{token}\n"))?;
        Ok(site)
    }

    pub fn floatd(&self) -> PathBuf {
        self.bin_dir.join("floatd")
    }

    pub fn state_dir(&self, node: Node) -> PathBuf {
        self.dir.join(format!("state-{}", node.as_str()))
    }

    /// The command line of `node` in its namespace.
    pub fn args(&self, node: Node, mode: Mode, net: &Net, t: &ServerTimings) -> Vec<String> {
        let ms = |d: Duration| format!("{}ms", d.as_millis());
        let mut a: Vec<String> = vec![
            "--peer-secret-file".into(),
            self.secret.display().to_string(),
            "--ping-interval".into(),
            ms(t.ping_interval),
            "--takeover-after".into(),
            ms(t.takeover_after),
            "--sync-timeout".into(),
            ms(t.sync_timeout),
            "--lease".into(),
            format!("{}s", t.lease.as_secs().max(1)),
        ];
        if mode == Mode::Witness {
            a.extend(["--fence-after".into(), ms(t.fence_after)]);
        }
        if node == Node::Witness {
            a.extend([
                "--role".into(),
                "witness".into(),
                "--peer-listen".into(),
                format!("0.0.0.0:{WITNESS_PORT}"),
            ]);
            return a;
        }
        let other = if node == Node::Primary {
            Node::Backup
        } else {
            Node::Primary
        };
        a.extend([
            "--license".into(),
            self.licence.display().to_string(),
            "--vendor-key".into(),
            self.vendor_pub.display().to_string(),
            "--state-dir".into(),
            self.state_dir(node).display().to_string(),
            "--admin-token-file".into(),
            self.token_file.display().to_string(),
            "--bind".into(),
            "0.0.0.0".into(),
            "--port".into(),
            CLIENT_PORT.to_string(),
            "--peer-listen".into(),
            format!("0.0.0.0:{PEER_PORT}"),
            "--http".into(),
            format!("0.0.0.0:{HTTP_PORT}"),
            "--role".into(),
            node.as_str().into(),
            "--peer".into(),
            format!("{}:{PEER_PORT}", net.addr(other, Some(node))),
            "--advertise".into(),
            format!("{}:{CLIENT_PORT}", net.addr(node, None)),
        ]);
        if mode == Mode::Witness {
            a.extend([
                "--witness".into(),
                format!("{}:{WITNESS_PORT}", net.addr(Node::Witness, Some(node))),
            ]);
        }
        a
    }
}

/// Writes a file only its owner may read (secrets and tokens among them).
fn write(path: &Path, text: &str) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).map_err(|e| format!("{path:?}: {e}"))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("{path:?}: {e}"))
}

/// 32 random characters for a secret or a token.
fn random_text() -> String {
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).expect("randomness");
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}
