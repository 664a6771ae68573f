#!/usr/bin/env bash
# `make steady DURATION=600`: no false takeover under full load. A
# witness-mode pair with the default timings (500 ms ping, 3 s takeover,
# 2 s grant lease) on the demo licence serves floatd-load as fast as it
# answers (64 clients, checkout+checkin of the uncounted `viewer`, each
# journalled, fsynced and replicated to the backup before the reply) for
# DURATION seconds, with no fault. Passes when the backup never took over,
# the witness consented to nothing after the primary's start, the primary
# is still active at its first epoch and every request was answered.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-600}
CLIENTS=${CLIENTS:-64}
cargo build -q --release --bins
BIN=$PWD/target/release
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

source scripts/demo-lib.sh
wait_state() { # PORT STATE
  for _ in $(seq 1 600); do
    [ "$(state_of "127.0.0.1:$1")" = "$2" ] && return 0
    sleep 0.1
  done
  echo "steady: timed out waiting for port $1 to be $2" >&2
  return 1
}
bg() { "$@" & PIDS+=($!); }

echo "steady-secret-0123456789abcdef" >"$WORK/secret"
W=$(free_port) P=$(free_port) PP=$(free_port) B=$(free_port) BP=$(free_port)
bg "$BIN/floatd" --role witness --peer-listen "127.0.0.1:$W" --peer-secret-file "$WORK/secret" \
  >/dev/null 2>"$WORK/witness.log"
for role in primary backup; do
  if [ $role = primary ]; then port=$P listen=$PP peer=$BP; else port=$B listen=$BP peer=$PP; fi
  bg "$BIN/floatd" --demo --role $role --bind 127.0.0.1 --port "$port" \
    --peer-listen "127.0.0.1:$listen" --peer "127.0.0.1:$peer" --witness "127.0.0.1:$W" \
    --peer-secret-file "$WORK/secret" --state-dir "$WORK/$role" >/dev/null 2>"$WORK/$role.log"
done
wait_state "$P" active
wait_state "$B" ready
EPOCH=$(greeting_field "127.0.0.1:$P" epoch)
SETTLED=$(wc -l <"$WORK/primary.log")
echo "steady: witness-mode pair up (primary :$P active at epoch $EPOCH, backup :$B ready);" \
  "$CLIENTS clients at full load for ${DURATION}s" >&2

"$BIN/floatd-load" --server "127.0.0.1:$P,127.0.0.1:$B" --clients "$CLIENTS" --feature viewer \
  --duration "$DURATION" --quiet --json >"$WORK/load.json"

STATE_AFTER=$(state_of "127.0.0.1:$P")
EPOCH_AFTER=$(greeting_field "127.0.0.1:$P" epoch)
TAKEOVERS=$(grep -c "taking over" "$WORK/backup.log" || true)
CONSENTS=$(grep -c "becomes active" "$WORK/witness.log" || true)
STALE=$(tail -n +"$((SETTLED + 1))" "$WORK/primary.log" | grep -c "standby not in sync" || true)
python3 - "$WORK/load.json" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
print(f"steady: {r['ops']:,} requests answered, {r['errors_total']} errors, "
      f"{r['disconnects']} disconnects, {r['redirects']} redirects, {r['ops_per_sec']:,.0f} req/s, "
      f"p99 {r['latency_us']['p99'] / 1000:.2f} ms", file=sys.stderr)
EOF
echo "steady: backup takeovers $TAKEOVERS, witness consents $CONSENTS (1 = the primary's start)," \
  "standby declared stale $STALE times after the start; primary after the run: $STATE_AFTER at epoch $EPOCH_AFTER" >&2
ERRORS=$(python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); print(r["errors_total"] + r["disconnects"])' "$WORK/load.json")
if [ "$TAKEOVERS" != 0 ] || [ "$CONSENTS" != 1 ] || [ "$STATE_AFTER" != active ] \
  || [ "$EPOCH_AFTER" != "$EPOCH" ] || [ "$ERRORS" != 0 ]; then
  echo "steady: FAILED: a false takeover or unanswered requests (logs below)" >&2
  tail -n 20 "$WORK"/*.log >&2
  exit 1
fi
echo "steady: passed: no false takeover in ${DURATION}s at full load" >&2
