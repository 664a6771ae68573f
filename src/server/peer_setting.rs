//! The other server's peer port, reread with the licences (SIGHUP,
//! `floatctl reread`), so an operator can move the backup (or the primary)
//! without restarting this server. It comes from the config files, read
//! again; a `--peer` flag wins over them, at start and at every reread
//! (docs/OPERATIONS.md, "Moving the backup").

use crate::config::Config;

pub struct PeerSetting {
    config: Config,
    /// The address the watchdog dials now.
    pub current: String,
}

impl PeerSetting {
    /// For a server of a pair (`None` otherwise).
    pub fn from_config(config: &Config) -> Option<PeerSetting> {
        Some(PeerSetting {
            current: config.peer.clone()?,
            config: config.clone(),
        })
    }

    /// Reads the setting again: `Ok(Some(addr))` when it moved. Changes
    /// nothing here ([`Self::current`] is set once the whole reread took).
    pub fn reread(&self) -> Result<Option<String>, String> {
        let Some(peer) = self.config.reread_peer()? else {
            log::warn!(
                "the config file no longer names the other server (peer): still dialling {}",
                self.current
            );
            return Ok(None);
        };
        if let (Some(flag), Some(file)) = (&self.config.peer_flag, self.file_peer()) {
            if file != *flag {
                log::warn!(
                    "the config file says peer = {file:?}, but --peer {flag} on the command line wins: \
                     still dialling {flag} (restart without --peer to use the file)"
                );
            }
        }
        if peer == self.current {
            return Ok(None);
        }
        crate::net::split_host_port(&peer).map_err(|e| format!("peer in the config file: {e}"))?;
        Ok(Some(peer))
    }

    /// What the config files alone say, for the warning above.
    fn file_peer(&self) -> Option<String> {
        let files = Config {
            peer_flag: None,
            ..self.config.clone()
        };
        files.reread_peer().ok().flatten()
    }
}
