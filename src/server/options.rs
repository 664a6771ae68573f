//! Where the options file comes from, so a reread finds it the way start-up
//! did (docs/OPTIONS.md): `--options FILE`, else `floatd.opt` beside the
//! first licence file served, else none.

use super::licences::LicenceSource;
use crate::config::Config;
use crate::ledger::policy;
use crate::ledger::Options;
use crate::licence::Served;
use std::collections::HashSet;
use std::path::PathBuf;

/// The options file's name when it sits beside the licence.
pub const DEFAULT_OPTIONS_FILE: &str = "floatd.opt";
/// The largest options file read (room for tens of thousands of rules).
pub const MAX_OPTIONS_BYTES: u64 = 4 << 20;

#[derive(Clone, Debug, Default)]
pub struct OptionsSource {
    /// `--options FILE`: must exist and parse.
    explicit: Option<PathBuf>,
    /// `--demo`: no licence file to look beside.
    demo: bool,
    /// The file the options in force came from.
    pub in_use: Option<PathBuf>,
    /// Its text (the pair compares digests of what both servers serve).
    pub text: String,
}

impl OptionsSource {
    pub fn from_config(config: &Config) -> OptionsSource {
        OptionsSource {
            explicit: config.options.clone(),
            demo: config.demo,
            in_use: None,
            text: String::new(),
        }
    }

    /// The options file for these licences, if there is one.
    pub fn locate(&self, served: &Served) -> Option<PathBuf> {
        if let Some(path) = &self.explicit {
            return Some(path.clone());
        }
        if self.demo {
            return None;
        }
        let beside = LicenceSource::first_file_dir(served)?.join(DEFAULT_OPTIONS_FILE);
        beside.is_file().then_some(beside)
    }

    /// Reads and parses the options file for `served` (empty options when
    /// there is none). On success the file becomes [`Self::in_use`]; on
    /// failure nothing changes and the error names file:line:col.
    pub fn load(&mut self, served: &Served) -> Result<Options, String> {
        let Some(path) = self.locate(served) else {
            if let Some(old) = self.in_use.take() {
                log::info!("options: {} is gone; no options in force", old.display());
            }
            self.text.clear();
            return Ok(Options::default());
        };
        let text = crate::files::read_regular_text(&path, MAX_OPTIONS_BYTES)
            .map_err(|e| format!("options file {}: {e}", path.display()))?;
        let options = policy::parse(&text, &path).map_err(|e| format!("options file {e}"))?;
        log::info!("options: {}: {}", path.display(), options.summary());
        let served_features: HashSet<&str> = served.pools.iter().map(|p| &*p.key.feature).collect();
        for feature in options.features() {
            if !served_features.contains(feature) {
                log::warn!(
                    "options: {} has rules for {feature}, which no licence here serves",
                    path.display()
                );
            }
        }
        self.in_use = Some(path);
        self.text = text;
        Ok(options)
    }
}
