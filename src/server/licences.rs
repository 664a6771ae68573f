//! Where the server's licences come from, so a reread loads them the same
//! way start-up did.

use crate::civil::Date;
use crate::config::Config;
use crate::licence::{self, demo, search, HostIds, LoadRequest, Served, Side, TrustedKeys};
use std::path::PathBuf;

pub enum LicenceSource {
    /// `floatd --demo`: the embedded demo licence, trusted only here.
    Demo { host: HostIds, side: Side },
    /// The licence path, then the working directory, then the binary's
    /// directory (docs/LICENCE-FILES.md).
    Files {
        license_path: Option<String>,
        /// The licence path came from `--license` (or the config file):
        /// what it names must load.
        explicit: bool,
        cwd: PathBuf,
        exe_dir: Option<PathBuf>,
        keys: TrustedKeys,
        host: HostIds,
        side: Side,
    },
}

impl LicenceSource {
    pub fn from_config(config: &Config, side: Side) -> Result<LicenceSource, String> {
        let host = HostIds::detect();
        if config.demo {
            return Ok(LicenceSource::Demo { host, side });
        }
        let keys =
            TrustedKeys::with_runtime_files(&config.vendor_keys).map_err(|e| e.to_string())?;
        if keys.is_empty() {
            return Err(
                "no vendor key is trusted: give --vendor-key FILE (or build with FLOATD_VENDOR_KEYS)".into(),
            );
        }
        Ok(LicenceSource::Files {
            license_path: search::licence_path_setting(config.license.as_deref()),
            explicit: config.license.is_some(),
            cwd: std::env::current_dir().map_err(|e| format!("working directory: {e}"))?,
            exe_dir: search::exe_dir(),
            keys,
            host,
            side,
        })
    }

    /// Loads the licences, logging every skipped line and every licence
    /// that is about to expire.
    pub fn load(&self) -> Result<Served, String> {
        let today = Date::today();
        let served = match self {
            LicenceSource::Demo { host, side } => licence::load_sources(
                &[demo::demo_source(today)],
                &demo::demo_keys(),
                host,
                *side,
                today,
            ),
            LicenceSource::Files {
                license_path,
                explicit,
                cwd,
                exe_dir,
                keys,
                host,
                side,
            } => licence::load(&LoadRequest {
                license_path: license_path.as_deref(),
                cwd,
                exe_dir: exe_dir.as_deref(),
                keys,
                host,
                side: *side,
                today,
                strict: *explicit,
            }),
        }
        .map_err(|e| e.to_string())?;
        for problem in &served.problems {
            log::warn!("{problem}");
        }
        for file in &served.files {
            log::info!("serving {}", file.path.display());
        }
        Ok(served)
    }

    /// The licence files' directory, where `floatd.opt` is looked for.
    pub fn first_file_dir(served: &Served) -> Option<PathBuf> {
        served
            .files
            .first()
            .and_then(|f| f.path.parent().map(|p| p.to_path_buf()))
    }
}
