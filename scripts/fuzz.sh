#!/usr/bin/env bash
# Runs every cargo-fuzz target for SECONDS each (default 30): the CI's
# bounded run and `make fuzz`'s longer one (docs/FUZZING.md). Installs
# cargo-fuzz when it is missing. The stable toolchain runs it with
# RUSTC_BOOTSTRAP=1 (cargo-fuzz passes nightly-only flags). New inputs go
# to fuzz/corpus.run/TARGET (not committed); the committed seeds in
# fuzz/corpus/TARGET are read. Exits 1 if any target crashed, hung or
# ran out of memory, naming the input that did it.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"
seconds=${1:-30}
sanitizer=${FUZZ_SANITIZER:-none}
targets=(licence options client_line peer_frame journal snapshot http_request)

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1
echo "fuzz: building ${#targets[@]} targets (sanitizer: $sanitizer)"
cargo fuzz build --sanitizer "$sanitizer"

failed=()
for t in "${targets[@]}"; do
  mkdir -p "corpus.run/$t"
  echo "fuzz: $t for ${seconds}s"
  if ! cargo fuzz run --sanitizer "$sanitizer" "$t" "corpus.run/$t" "corpus/$t" -- \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      >"corpus.run/$t.log" 2>&1; then
    failed+=("$t")
    tail -n 40 "corpus.run/$t.log"
  else
    grep -E '^(Done|stat::number_of_executed_units)' "corpus.run/$t.log" | head -n 1 || true
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED: ${failed[*]}"
  echo "fuzz: each crashing input is in fuzz/artifacts/TARGET/; copy it to"
  echo "fuzz/regressions/TARGET/ under a name saying what broke, fix the bug,"
  echo "and 'cargo test --test fuzz_corpus' replays it from then on."
  exit 1
fi
echo "fuzz: all ${#targets[@]} targets ran ${seconds}s without a failure"
