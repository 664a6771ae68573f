#!/usr/bin/env bash
# `make demo-witness`: the same cut of the link between the two servers,
# once for a pair without a witness and once for a pair with one. Clients
# reach both servers throughout. Without the witness both servers serve
# and the pool can be granted twice over; with it the backup may not take
# over while the witness still hears the primary, and nothing is over-granted.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build -q --bins
BIN=$PWD/target/debug
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
state_of() {
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1; head -n1 <&3" 2>/dev/null | sed -n 's/.* state=\([a-z]*\).*/\1/p'
}
wait_state() { # PORT STATE
  for _ in $(seq 1 300); do [ "$(state_of "$1")" = "$2" ] && return 0; sleep 0.1; done
  echo "timed out waiting for port $1 to be $2" >&2; return 1
}
bg() { "$@" & PIDS+=($!); }
GRANTED=0
TIMINGS=(--ping-interval 100ms --takeover-after 1s --fence-after 600ms)
echo "demo-witness-secret-0123456789abcdef" > "$WORK/secret"

# Runs one pair through the cut; sets GRANTED to the cad seats granted.
run_pair() { # NAME WITH_WITNESS
  local name=$1 with=$2 d="$WORK/$1"
  PIDS=()
  mkdir -p "$d"
  local P=$(free_port) PP=$(free_port) B=$(free_port) BP=$(free_port)
  local XP=$(free_port) XB=$(free_port)  # proxies on the peer links
  local witness_args_p=() witness_args_b=()
  if [ "$with" = yes ]; then
    local W=$(free_port)
    bg "$BIN/floatd" --role witness --peer-listen "127.0.0.1:$W" --peer-secret-file "$WORK/secret" \
      "${TIMINGS[@]}" >"$d/witness.out" 2>"$d/witness.log"
    witness_args_p=(--witness "127.0.0.1:$W"); witness_args_b=(--witness "127.0.0.1:$W")
  fi
  # primary -> backup's peer port through XB; backup -> primary's through XP
  bg python3 scripts/faultproxy.py "$XB" "127.0.0.1:$BP" >/dev/null
  local PROXY_B=$!
  bg python3 scripts/faultproxy.py "$XP" "127.0.0.1:$PP" >/dev/null
  local PROXY_P=$!
  bg "$BIN/floatd" --demo --role primary --bind 127.0.0.1 --port "$P" --peer-listen "127.0.0.1:$PP" \
    --peer "127.0.0.1:$XB" --peer-secret-file "$WORK/secret" --state-dir "$d/p" "${TIMINGS[@]}" \
    "${witness_args_p[@]}" >"$d/p.out" 2>"$d/p.log"
  bg "$BIN/floatd" --demo --role backup --bind 127.0.0.1 --port "$B" --peer-listen "127.0.0.1:$BP" \
    --peer "127.0.0.1:$XP" --peer-secret-file "$WORK/secret" --state-dir "$d/b" "${TIMINGS[@]}" \
    "${witness_args_b[@]}" >"$d/b.out" 2>"$d/b.log"
  wait_state "$P" active && wait_state "$B" ready
  echo "$name: primary active on :$P, backup ready on :$B" >&2

  kill -USR1 "$PROXY_B" "$PROXY_P"
  echo "$name: link between the servers cut; waiting 3 s (three takeover periods)" >&2
  sleep 3
  echo "$name: primary is $(state_of "$P"), backup is $(state_of "$B")" >&2

  # Clients keep checking out cad (5 seats) on both servers until refused.
  local granted=0
  for side in "$P" "$B"; do
    for i in 1 2 3 4 5 6 7; do
      if "$BIN/floatctl" --server "127.0.0.1:$side" --timeout 2 --user "u$side-$i" checkout cad >/dev/null 2>&1; then
        granted=$((granted + 1))
      fi
    done
  done
  echo "$name: clients were granted $granted seats of cad (licensed: 5)" >&2
  GRANTED=$granted
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
}

say "pair without a witness"
run_pair no-witness no
WITHOUT=$GRANTED
say "pair with a witness"
run_pair witness yes
WITH=$GRANTED

say "the same link cut, side by side"
printf '%-22s %-18s %s\n' "" "seats granted" "beyond the count of 5"
printf '%-22s %-18s %s\n' "without a witness" "$WITHOUT" "$((WITHOUT > 5 ? WITHOUT - 5 : 0))"
printf '%-22s %-18s %s\n' "with a witness" "$WITH" "$((WITH > 5 ? WITH - 5 : 0))"
echo
echo "Without a witness both servers served during the cut (two-server mode favours availability)."
echo "With a witness the backup could not take over while the witness heard the primary: no over-grant."
echo "See docs/FAILOVER.md for every fault and its outcome."
