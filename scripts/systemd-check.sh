#!/usr/bin/env bash
# Checks the systemd units as CI does: `systemd-analyze verify` must print
# nothing, and `systemd-analyze security` must rate each unit's exposure at
# or below THRESHOLD (tenths: 12 means 1.2; the score is in
# docs/OPERATIONS.md). verify needs ExecStart's binary to exist, so the
# units are checked as copies whose /usr/local/bin/floatd is the built one.
#
#   scripts/systemd-check.sh [FLOATD_BINARY]   (default target/debug/floatd)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(realpath "${1:-target/debug/floatd}")
THRESHOLD=12
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "systemd-check: systemd-analyze not found (apt-get install systemd)" >&2
  exit 1
fi
[ -x "$BIN" ] || { echo "systemd-check: $BIN is not built" >&2; exit 1; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
sed "s|/usr/local/bin/floatd|$BIN|g" scripts/floatd.service > "$WORK/floatd.service"
for role in primary backup witness; do
  sed "s|/usr/local/bin/floatd|$BIN|g" scripts/floatd@.service > "$WORK/floatd@$role.service"
done
status=0
systemd-analyze --version | head -n1
for unit in "$WORK"/*.service; do
  name=$(basename "$unit")
  out=$(cd "$WORK" && systemd-analyze verify "./$name" 2>&1) || status=1
  if [ -n "$out" ]; then
    echo "verify $name: not clean:"; echo "$out"; status=1
  else
    echo "verify $name: clean"
  fi
  score=$(cd "$WORK" && systemd-analyze security --offline=true "./$name" 2>&1 | sed -n 's/.*Overall exposure level for [^:]*: //p')
  if (cd "$WORK" && systemd-analyze security --offline=true --threshold=$THRESHOLD "./$name" >/dev/null 2>&1); then
    echo "security $name: $score"
  else
    echo "security $name: $score, above $((THRESHOLD / 10)).$((THRESHOLD % 10))"; status=1
  fi
done
exit $status
