//! The demo licence behind `floatd --demo`: a few features for the first
//! five minutes of a new user, signed at start-up by a demo key.
//!
//! The demo key's seed is right here in the source, so anyone can sign
//! anything with it: it is trusted only in demo mode ([`demo_keys`] is a
//! key set of its own, never merged with the vendor keys), and the demo
//! licence is built in memory, never read from a file.

use super::hostid::HostIds;
use super::keys::TrustedKeys;
use super::load::{load_sources, Source};
use super::pools::{LoadError, Served, Side};
use super::signature::sign_licence;
use crate::civil::Date;
use ed25519_dalek::{SigningKey, VerifyingKey};

/// The demo key's seed: public by design.
pub const DEMO_SEED: [u8; 32] = *b"floatd demo key; public; --demo!";

/// The name the demo licence goes by in logs.
pub const DEMO_LICENCE_NAME: &str = "demo.lic (built in)";

pub fn demo_signing_key() -> SigningKey {
    SigningKey::from_bytes(&DEMO_SEED)
}

pub fn demo_verifying_key() -> VerifyingKey {
    demo_signing_key().verifying_key()
}

/// The only key trusted in demo mode.
pub fn demo_keys() -> TrustedKeys {
    let mut keys = TrustedKeys::new();
    keys.add(
        demo_verifying_key(),
        "demo key (trusted in --demo mode only)",
    );
    keys
}

/// The unsigned demo licence text for `today`: dates are relative to it,
/// so the demo never expires, and `plotter` is always within the 14-day
/// warning.
pub fn demo_licence_text(today: Date) -> String {
    let in_a_year = today.add_days(365);
    let in_ten_days = today.add_days(10);
    format!(
        "\
# floatd demo licence, built and signed at start-up with the public demo key.
# Served by `floatd --demo` only. Host ids are `any`, so it runs anywhere;
# start a second `floatd --demo --role backup` for the failover demo.
SERVER demo-primary hostid=any port=27000
FAILOVER demo-backup hostid=any port=27001
FEATURE cad version=2.0 count=5 expires={in_a_year} customer=\"Demo Ltd\"
FEATURE viewer version=1.0 count=uncounted expires=permanent
FEATURE solver version=1.0 count=2 expires={in_a_year} share=user min_checkout=5
FEATURE plotter version=1.0 count=3 expires={in_ten_days} _note=\"shows the 14-day warning\"
"
    )
}

/// The demo licence, signed with the demo key.
pub fn demo_source(today: Date) -> Source {
    let text = demo_licence_text(today);
    let signed = sign_licence(DEMO_LICENCE_NAME, text.as_bytes(), &demo_signing_key())
        .unwrap_or_else(|errors| {
            // The text above is fixed; a parse error here is a bug in it.
            unreachable!("demo licence does not parse: {errors:?}")
        });
    Source {
        name: DEMO_LICENCE_NAME.into(),
        text: signed.text,
    }
}

/// What `floatd --demo` serves on `side`.
pub fn load_demo(host: &HostIds, side: Side, today: Date) -> Result<Served, LoadError> {
    load_sources(&[demo_source(today)], &demo_keys(), host, side, today)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::licence::model::Count;

    #[test]
    fn demo_serves_on_any_host_on_both_sides() {
        let today = Date::parse("2031-02-28").unwrap();
        let nobody = HostIds::default();
        let primary = load_demo(&nobody, Side::Primary, today).unwrap();
        assert!(primary.problems.is_empty(), "{:?}", primary.problems);
        let shown: Vec<String> = primary
            .pools
            .iter()
            .map(|p| format!("{} {} {}", p.key, p.count, p.min_checkout_secs))
            .collect();
        assert_eq!(
            shown,
            [
                "cad 2.0 expires=2032-02-28 share=none 5 0",
                "plotter 1.0 expires=2031-03-10 share=none 3 0",
                "solver 1.0 expires=2032-02-28 share=user 2 5",
                "viewer 1.0 expires=permanent share=none uncounted 0",
            ]
        );
        assert_eq!(primary.port, Some(27000));
        assert_eq!(primary.expiring.len(), 1);
        assert_eq!(&*primary.expiring[0].0.feature, "plotter");
        assert_eq!(primary.expiring[0].1, 10);
        let backup = load_demo(&nobody, Side::Backup, today).unwrap();
        assert_eq!(backup.port, Some(27001));
        assert_eq!(backup.pools[3].count, Count::Uncounted);
    }

    #[test]
    fn the_demo_key_is_not_a_vendor_key() {
        let today = Date::parse("2031-02-28").unwrap();
        let err = load_sources(
            &[demo_source(today)],
            &TrustedKeys::embedded().unwrap(),
            &HostIds::default(),
            Side::Primary,
            today,
        );
        // Unless a vendor embedded the demo key (it must not), nothing serves.
        if !TrustedKeys::embedded()
            .unwrap()
            .iter()
            .any(|k| k.key == demo_verifying_key())
        {
            assert!(err.is_err());
        }
    }
}
