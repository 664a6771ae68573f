//! Replays every input under fuzz/corpus/ and fuzz/regressions/ through
//! its fuzz target's body (floatd::fuzzing), so `make test` checks the
//! corpus, and each input that once crashed a target stays fixed.

use std::path::Path;

#[test]
fn every_fuzz_corpus_and_regression_input_passes_its_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    for (name, target) in floatd::fuzzing::TARGETS {
        let mut seeds = 0;
        for kind in ["corpus", "regressions"] {
            let dir = root.join(kind).join(name);
            let entries =
                std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
            for entry in entries {
                let path = entry.unwrap().path();
                if path.file_name().is_some_and(|n| n == "README") {
                    continue;
                }
                let data = std::fs::read(&path).unwrap();
                let outcome = std::panic::catch_unwind(|| target(&data));
                assert!(outcome.is_ok(), "{name}: {} fails", path.display());
                if kind == "corpus" {
                    seeds += 1;
                }
            }
        }
        assert!(seeds > 0, "no corpus for the {name} target");
    }
}
