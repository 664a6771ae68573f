//! The checked-in floatd_client.h is what cbindgen makes of the source
//! now, so the header cannot drift from the library. With
//! `FLOATD_BLESS_HEADER=1` the test rewrites it instead (`make sdk-header`).
//!
//! One touch after cbindgen: negative `#define` values get parentheses, so
//! `x-FLOATD_E_NO_SEATS` means what it says.

use std::path::Path;

#[test]
fn the_checked_in_header_matches_the_source() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).expect("cbindgen.toml");
    let mut generated = Vec::new();
    cbindgen::Builder::new()
        .with_config(config)
        .with_src(dir.join("src/lib.rs"))
        .generate()
        .expect("cbindgen reads the source")
        .write(&mut generated);
    let generated = parenthesise_negative_defines(&String::from_utf8(generated).unwrap());
    let generated = generated.into_bytes();
    let path = dir.join("floatd_client.h");
    let checked_in = std::fs::read(&path).unwrap_or_default();
    if generated == checked_in {
        return;
    }
    if std::env::var_os("FLOATD_BLESS_HEADER").is_some() {
        std::fs::write(&path, &generated).expect("write floatd_client.h");
        return;
    }
    panic!(
        "sdk/floatd_client.h is out of date with sdk/src: run `make sdk-header` and commit it.\n\
         --- generated now:\n{}",
        String::from_utf8_lossy(&generated)
    );
}

/// `#define NAME -4` becomes `#define NAME (-4)`.
fn parenthesise_negative_defines(header: &str) -> String {
    header
        .split_inclusive('\n')
        .map(|line| {
            let body = line.trim_end_matches('\n');
            let mut words = body.split(' ');
            match (words.next(), words.next(), words.next(), words.next()) {
                (Some("#define"), Some(name), Some(value), None)
                    if value.starts_with('-') && value[1..].bytes().all(|b| b.is_ascii_digit()) =>
                {
                    format!("#define {name} ({value}){}", &line[body.len()..])
                }
                _ => line.to_string(),
            }
        })
        .collect()
}

#[test]
fn negative_defines_get_parentheses_and_nothing_else_changes() {
    let header = "#define A -4\n#define B 1\n// -4\n#define C -x\n";
    assert_eq!(
        parenthesise_negative_defines(header),
        "#define A (-4)\n#define B 1\n// -4\n#define C -x\n"
    );
}

#[test]
fn the_header_includes_only_the_integer_types() {
    let header =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("floatd_client.h"))
            .expect("floatd_client.h");
    let includes: Vec<&str> = header
        .lines()
        .filter(|l| l.trim_start().starts_with("#include"))
        .collect();
    assert_eq!(includes, vec!["#include <stdint.h>"]);
}
