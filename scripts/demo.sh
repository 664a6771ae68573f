#!/usr/bin/env bash
# `make demo`: a primary and a backup floatd on loopback serving the
# embedded demo licence. Checks seats out, kills the primary, shows the
# backup serving the same seats, restarts the primary and shows the
# failback. Everything it starts is stopped when it exits. Needs bash,
# coreutils and cargo, nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/demo-lib.sh
# FLOATD_DEMO_BIN: run binaries built elsewhere (the test suite's) instead.
if [ -n "${FLOATD_DEMO_BIN:-}" ]; then BIN=$FLOATD_DEMO_BIN; else build; BIN=$PWD/target/debug; fi
WORK=$(mktemp -d)
PIDS=()     # servers
CLIENTS=()  # floatctl --hold clients: stopped first, while a server can take their seats back
cleanup() {
  for p in "${CLIENTS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${CLIENTS[@]}"; do wait "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

wait_for() { # SECONDS DESCRIPTION COMMAND...
  local until=$((SECONDS + $1)) what=$2; shift 2
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $until ] || {
      echo "timed out waiting for $what; the servers' last lines:" >&2
      tail -n 5 "$WORK"/*.log >&2 2>/dev/null || true
      return 1
    }
    sleep 0.1
  done
}
is_state() { [ "$(state_of "$1")" = "$2" ]; }

P_PORT=$(free_port); P_PEER=$(free_port); B_PORT=$(free_port); B_PEER=$(free_port)
PRIMARY=127.0.0.1:$P_PORT; BACKUP=127.0.0.1:$B_PORT
echo "demo-peer-secret-$(date +%s)-0123456789" > "$WORK/secret"
export FLOATD_SERVERS=$PRIMARY,$BACKUP

start() { # ROLE PORT PEER_LISTEN PEER
  "$BIN/floatd" --demo --role "$1" --bind 127.0.0.1 --port "$2" \
    --peer-listen "127.0.0.1:$3" --peer "127.0.0.1:$4" --peer-secret-file "$WORK/secret" \
    --state-dir "$WORK/state-$1" >"$WORK/$1.out" 2>>"$WORK/$1.log" &
  PIDS+=($!)
  echo $! >"$WORK/$1.pid"
}

say "starting a primary ($PRIMARY) and a backup ($BACKUP) with the embedded demo licence"
start primary "$P_PORT" "$P_PEER" "$B_PEER"
start backup "$B_PORT" "$B_PEER" "$P_PEER"
wait_for 30 "the pair" is_state "$PRIMARY" active
wait_for 30 "the backup" is_state "$BACKUP" ready
status_shows() { "$BIN/floatctl" status | grep -q "$1"; }
wait_for 30 "status" status_shows "backup .*: ready"
"$BIN/floatctl" status | head -3

say "alice holds a seat of cad (heartbeating); bob checks out two"
"$BIN/floatctl" --user alice --host ws1 checkout cad --hold 300 >"$WORK/alice.handle" 2>"$WORK/alice.err" &
CLIENTS+=($!)
wait_for 30 "alice's seat" test -s "$WORK/alice.handle"
BOB=$("$BIN/floatctl" --user bob --host ws2 checkout cad --count 2)
echo "alice and bob hold seats (their handles are secrets; status shows seat ids):"
"$BIN/floatctl" status cad | sed -n '/^cad/,$p'

say "killing the primary (kill -9)"
PID=$(cat "$WORK/primary.pid")
{ kill -9 "$PID" && wait "$PID"; } 2>/dev/null || true
START=$(now_ms)
wait_for 30 "the takeover" is_state "$BACKUP" active
MS=$(( $(now_ms) - START ))
printf 'the backup took over after %d.%d s\n' $((MS / 1000)) $((MS % 1000 / 100))
"$BIN/floatctl" status | head -3
echo "the same seats, now served by the backup:"
"$BIN/floatctl" status cad | sed -n '/^cad/,$p'
"$BIN/floatctl" --user carol checkout cad >/dev/null && echo "carol checks out a seat on the backup"

say "restarting the primary: it syncs from the backup and takes back"
start primary "$P_PORT" "$P_PEER" "$B_PEER"
wait_for 30 "the failback" is_state "$PRIMARY" active
wait_for 30 "the backup to stand by" is_state "$BACKUP" ready
wait_for 30 "status" status_shows "backup .*: ready"
"$BIN/floatctl" status | head -3
"$BIN/floatctl" status cad | sed -n '/^cad/,$p'

say "bob checks his seats in on the primary"
"$BIN/floatctl" --user bob --host ws2 checkin "$BOB" && echo "ok"

say "what the servers logged, in time order"
# Each line starts with its UTC time; sort merges the two logs.
grep -h -E 'now active|taking over|handing back|handed back' "$WORK/primary.log" "$WORK/backup.log" \
  | sed 's/^\([0-9T:.-]*Z\) \[[A-Z]* *\([a-z_:]*\)\] /\1 /' | sort
echo
echo "Stop a server with Ctrl-C or 'floatctl down'; see docs/FAILOVER.md for running a pair for real."
