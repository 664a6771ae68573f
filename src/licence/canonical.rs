//! The exact bytes a FEATURE signature covers.
//!
//! ```text
//! floatd-licence-v1
//! SERVER hostid="machine:3f2a9c01d4e5b6a7"
//! FAILOVER hostid="mac:52:54:00:12:34:56"
//! FEATURE cad count="10" customer="Acme" expires="2027-12-31" share="user" version="2.0"
//! ```
//!
//! - A domain tag first, so a floatd signature is never valid for anything
//!   else and the format can change under a new tag.
//! - The host ids of the file's SERVER and FAILOVER lines (normalised; the
//!   FAILOVER line is left out when there is none), so a line cannot move
//!   to a file for another host. Host names and ports are not covered.
//! - The record type, the feature name, and every field except `sig` and
//!   those whose key starts with `_`, sorted by key, each value quoted with
//!   `\` and `"` escaped. So the customer may reorder fields, change
//!   quoting and spacing, and edit `_` fields, but not one character of a
//!   signed value.
//!
//! Keys never contain `=`, spaces or quotes and values are always quoted,
//! so two different lines never give the same bytes.

use super::hostid::HostId;
use super::parse::{FeatureLine, RecordKind};

/// Domain-separation tag, the first line of every signed message.
pub const DOMAIN_TAG: &str = "floatd-licence-v1";

/// True for the fields a signature covers.
pub fn is_signed_key(key: &str) -> bool {
    key != "sig" && !key.starts_with('_')
}

/// The message a FEATURE line's signature covers, given the host ids of
/// its file's SERVER and FAILOVER lines.
pub fn signed_message(feature: &FeatureLine, server: &HostId, failover: Option<&HostId>) -> String {
    let mut out = String::new();
    out.push_str(DOMAIN_TAG);
    out.push('\n');
    push_host(&mut out, RecordKind::Server, server);
    if let Some(failover) = failover {
        push_host(&mut out, RecordKind::Failover, failover);
    }
    out.push_str(RecordKind::Feature.keyword());
    out.push(' ');
    out.push_str(&feature.name);
    let mut fields: Vec<_> = feature
        .fields
        .iter()
        .filter(|f| is_signed_key(&f.key))
        .collect();
    fields.sort_by(|a, b| a.key.cmp(&b.key));
    for field in fields {
        out.push(' ');
        out.push_str(&field.key);
        out.push('=');
        push_quoted(&mut out, &field.value);
    }
    out.push('\n');
    out
}

fn push_host(out: &mut String, kind: RecordKind, hostid: &HostId) {
    out.push_str(kind.keyword());
    out.push_str(" hostid=");
    push_quoted(out, &hostid.to_string());
    out.push('\n');
}

fn push_quoted(out: &mut String, value: &str) {
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::licence::parse::parse_licence;

    fn message_of(text: &str) -> String {
        let file = parse_licence("t.lic", text.as_bytes()).unwrap();
        assert!(file.errors.is_empty(), "{:?}", file.errors);
        signed_message(
            &file.features[0],
            &file.server.hostid,
            file.failover.as_ref().map(|f| &f.hostid),
        )
    }

    #[test]
    fn canonical_form_is_stable_and_documented() {
        let text = "SERVER lic1 hostid=MACHINE:3F2A9C01D4E5B6A7 port=27000\n\
                    FAILOVER lic2 hostid=mac:52-54-00-12-34-56\n\
                    FEATURE cad version=2.0 count=10 expires=2027-12-31 share=user customer=\"Acme \\\"UK\\\"\" _note=x sig=ed25519:00000000:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\n";
        assert_eq!(
            message_of(text),
            "floatd-licence-v1\n\
             SERVER hostid=\"machine:3f2a9c01d4e5b6a7\"\n\
             FAILOVER hostid=\"mac:52:54:00:12:34:56\"\n\
             FEATURE cad count=\"10\" customer=\"Acme \\\"UK\\\"\" expires=\"2027-12-31\" share=\"user\" version=\"2.0\"\n"
        );
    }

    #[test]
    fn layout_quoting_and_unsigned_parts_do_not_change_it() {
        let a = message_of(
            "SERVER lic1 hostid=any port=1\nFEATURE cad version=2.0 count=10 expires=permanent customer=Acme\n",
        );
        let b = message_of(
            "# edited by the customer\nserver other-name   hostid=ANY port=2 # moved\n\
             FEATURE  cad\tcustomer=\"Acme\" count=10   expires=permanent version=2.0 _note=\"hello there\"\n",
        );
        assert_eq!(a, b);
    }

    #[test]
    fn hosts_and_values_do_change_it() {
        let base =
            message_of("SERVER s hostid=any\nFEATURE cad version=2.0 count=10 expires=permanent\n");
        for other in [
            "SERVER s hostid=host:lic1\nFEATURE cad version=2.0 count=10 expires=permanent\n",
            "SERVER s hostid=any\nFAILOVER b hostid=any\nFEATURE cad version=2.0 count=10 expires=permanent\n",
            "SERVER s hostid=any\nFEATURE cad version=2 count=10 expires=permanent\n",
            "SERVER s hostid=any\nFEATURE cad version=2.0 count=010 expires=permanent\n",
            "SERVER s hostid=any\nFEATURE cad version=2.0 count=10 expires=permanent share=none\n",
            "SERVER s hostid=any\nFEATURE Cad version=2.0 count=10 expires=permanent\n",
        ] {
            assert_ne!(base, message_of(other), "{other}");
        }
    }
}
