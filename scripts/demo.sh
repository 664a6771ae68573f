#!/usr/bin/env bash
# `make demo`: serves the embedded demo licence on loopback and shows it
# working: checkouts, the status table, a denial, checkins. Everything it
# starts is stopped when it exits.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --bins
BIN=target/debug
WORK=$(mktemp -d)
cleanup() { kill "${SERVER_PID:-}" 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
wait_for_line() { # FILE PATTERN
  for _ in $(seq 1 200); do grep -q "$2" "$1" 2>/dev/null && return 0; sleep 0.05; done
  echo "timed out waiting for '$2' in $1" >&2; cat "$1" >&2; return 1
}

say "starting floatd --demo (embedded demo licence, temporary state directory)"
"$BIN/floatd" --demo --state-dir "$WORK/state" --bind 127.0.0.1 --port 0 >"$WORK/out" 2>"$WORK/log" &
SERVER_PID=$!
wait_for_line "$WORK/out" "floatd listening on"
ADDR=$(sed -n 's/^floatd listening on //p' "$WORK/out")
export FLOATD_SERVERS=$ADDR
echo "floatd serves on $ADDR"

say "alice and bob check out seats of cad"
A=$("$BIN/floatctl" --user alice --host ws1 checkout cad --version 2.0)
B=$("$BIN/floatctl" --user bob --host ws2 checkout cad --count 2)
echo "alice holds $A"
echo "bob holds   $B (2 seats)"

say "floatctl status"
"$BIN/floatctl" status

say "solver has 2 seats; a third user is denied with a stable code"
"$BIN/floatctl" --user carol checkout solver >/dev/null
"$BIN/floatctl" --user dave checkout solver >/dev/null
"$BIN/floatctl" --user erin checkout solver || echo "(exit code $? = denied)"

say "checking the cad seats back in"
"$BIN/floatctl" checkin "$A"
"$BIN/floatctl" checkin "$B"
"$BIN/floatctl" status | sed -n '1,3p'

say "stopping the server (floatctl down) and reading its report log"
"$BIN/floatctl" down
wait "$SERVER_PID" || true
cat "$WORK/state/report.log"
echo "(floatd stopped cleanly; its log warned: $(grep -o 'plotter.*day(s)' "$WORK/log" | head -1))"
