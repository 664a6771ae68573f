#!/usr/bin/env bash
# The reliability run in real network namespaces (docs/RELIABILITY.md).
#
#   scripts/chaos.sh [--soak] [--floods] [more floatd-load chaos options]
#   env: SEED=N DURATION=S MODE=witness|two-server|both (default witness)
#
# Makes four namespaces (primary, backup, witness, clients) joined by one
# veth link per pair, runs `floatd-load chaos` in the clients' namespace
# (it starts the real floatd binaries in the others and carries out the
# faults), and removes everything on every way out. Needs root; without
# it, says so and exits 1 under CI=true, 0 (skipped) elsewhere.
#
# Names and addresses follow src/load/chaos/net.rs: namespaces
# <prefix>p/b/w/c, the interface towards namespace X is to-X, link N has
# 10.99.N.1 on its first end and 10.99.N.2 on its second.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
  echo "############################################################" >&2
  echo "chaos: NOT RUN: network namespaces need root (run as root)." >&2
  echo "############################################################" >&2
  [ "${CI:-}" = true ] && exit 1
  exit 0
fi

need=()
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v nft >/dev/null 2>&1 || need+=(nftables)
if [ ${#need[@]} -gt 0 ]; then
  echo "chaos: installing ${need[*]}" >&2
  apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi

PROFILE=${FLOATD_CHAOS_PROFILE:-debug}
if [ "$PROFILE" = release ]; then cargo build -q --release --bins; else cargo build -q --bins; fi
LOAD="$PWD/target/$PROFILE/floatd-load"

SEED=${SEED:-$(( $(date +%s%N) % 1000000 ))}
DURATION=${DURATION:-60}
MODE=${MODE:-witness}
PREFIX="fc$$"
NODES="p b w c"

cleanup() {
  for n in $NODES; do
    if ip netns list | grep -qw "$PREFIX$n"; then
      ip netns pids "$PREFIX$n" 2>/dev/null | xargs -r kill -CONT 2>/dev/null || true
      ip netns pids "$PREFIX$n" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
      ip netns del "$PREFIX$n" 2>/dev/null || true
    fi
  done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for n in $NODES; do
  ip netns add "$PREFIX$n"
  ip -n "$PREFIX$n" link set lo up
done
# link number, first end, second end
link() {
  local num=$1 a=$2 b=$3
  ip link add "to-$b" netns "$PREFIX$a" type veth peer name "to-$a" netns "$PREFIX$b"
  ip -n "$PREFIX$a" addr add "10.99.$num.1/30" dev "to-$b"
  ip -n "$PREFIX$b" addr add "10.99.$num.2/30" dev "to-$a"
  ip -n "$PREFIX$a" link set "to-$b" up
  ip -n "$PREFIX$b" link set "to-$a" up
}
link 1 p b
link 2 p w
link 3 b w
link 4 c p
link 5 c b

# Thousands of connections in the soak and the floods.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

case "$MODE" in
  both) modes="witness two-server" ;;
  *) modes=$MODE ;;
esac
status=0
for mode in $modes; do
  work="$PWD/target/chaos/$mode-seed$SEED"
  rm -rf "$work"
  mkdir -p "$work"
  echo "chaos: mode $mode seed $SEED duration ${DURATION}s; logs in $work" >&2
  # A hard bound on the whole run, whatever happens inside it.
  limit=$(( DURATION * 2 + 600 ))
  rc=0
  timeout -s KILL "$limit" ip netns exec "${PREFIX}c" "$LOAD" chaos \
    --ns-prefix "$PREFIX" --work-dir "$work" --seed "$SEED" \
    --duration "$DURATION" --mode "$mode" "$@" || rc=$?
  if [ "$rc" != 0 ]; then
    echo "chaos: mode $mode seed $SEED FAILED (exit $rc); replay: make chaos SEED=$SEED DURATION=$DURATION MODE=$mode" >&2
    status=1
  fi
  # Leftovers of this mode (a server the driver could not stop).
  for n in p b w; do
    ip netns pids "$PREFIX$n" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  done
done
exit $status
