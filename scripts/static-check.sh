#!/usr/bin/env bash
# Proves the static-pie build is a drop-in binary: it needs no libc, no NSS
# module and no file of the host. In a chroot holding only the two static
# binaries and /dev/urandom, runs `floatd --demo` and checks it with
# `floatctl status` by numeric address, by `localhost`, and (after adding
# an /etc/hosts to the chroot) by a host name; then stops it.
#
#   scripts/static-check.sh [DIR]   (default target/x86_64-unknown-linux-gnu/release,
#                                    as `make release-static` builds)
# Needs root (chroot, and mount --bind or mknod for /dev/urandom).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-target/x86_64-unknown-linux-gnu/release}
if [ "$(id -u)" != 0 ]; then
  echo "static-check: SKIPPED: not root (chroot and /dev/urandom need root); run as root to prove the static build"
  exit 0
fi
for b in floatd floatctl; do
  [ -x "$DIR/$b" ] || { echo "static-check: $DIR/$b missing: run make release-static" >&2; exit 1; }
  if readelf -lW "$DIR/$b" | grep -q 'INTERP'; then
    echo "static-check: $DIR/$b asks for a dynamic loader: not static" >&2; exit 1
  fi
  if readelf -dW "$DIR/$b" | grep -q '(NEEDED)'; then
    echo "static-check: $DIR/$b needs shared libraries:" >&2
    readelf -dW "$DIR/$b" | grep '(NEEDED)' >&2; exit 1
  fi
  echo "static-check: $b is static ($(readelf -hW "$DIR/$b" | sed -n 's/ *Type: *//p'), $(stat -c %s "$DIR/$b") bytes)"
done

ROOT=$(mktemp -d)
MOUNTED=0
PID=""
cleanup() {
  if [ -n "$PID" ] && kill -0 "$PID" 2>/dev/null; then kill -9 "$PID" 2>/dev/null || true; fi
  [ "$MOUNTED" = 1 ] && umount "$ROOT/dev/urandom" 2>/dev/null || true
  rm -rf "$ROOT"
}
trap cleanup EXIT
cp "$DIR/floatd" "$DIR/floatctl" "$ROOT/"
mkdir "$ROOT/dev"
touch "$ROOT/dev/urandom"
if mount --bind /dev/urandom "$ROOT/dev/urandom" 2>/dev/null; then
  MOUNTED=1
else
  rm "$ROOT/dev/urandom"
  mknod -m 0444 "$ROOT/dev/urandom" c 1 9
fi
echo "static-check: chroot $ROOT holds: $(cd "$ROOT" && find . -mindepth 1 | sort | tr '\n' ' ')"

OUT=$ROOT.out
chroot "$ROOT" /floatd --demo --bind 127.0.0.1 --port 0 > "$OUT" 2> "$ROOT.err" &
PID=$!
ADDR=""
for _ in $(seq 1 200); do
  ADDR=$(sed -n 's/^floatd listening on //p' "$OUT" 2>/dev/null || true)
  [ -n "$ADDR" ] && break
  kill -0 "$PID" 2>/dev/null || break
  sleep 0.05
done
if [ -z "$ADDR" ]; then
  echo "static-check: floatd did not start in the chroot:" >&2
  cat "$ROOT.err" >&2
  exit 1
fi
PORT=${ADDR##*:}
echo "static-check: static floatd --demo serves on $ADDR inside the chroot"

ctl() { chroot "$ROOT" /floatctl "$@"; }
ctl --server "127.0.0.1:$PORT" status
ctl --server "localhost:$PORT" status > /dev/null
echo "static-check: floatctl status by 127.0.0.1 and by localhost: ok"
mkdir "$ROOT/etc"
printf '# written by static-check.sh\n127.0.0.1\tlicsrv.example.test licsrv\n' > "$ROOT/etc/hosts"
HANDLE=$(ctl --server "licsrv:$PORT" checkout cad)
USED=$(ctl --server "licsrv.example.test:$PORT" status --json | tr -d ' \n' | grep -o '"name":"cad","version":"[^"]*","count":[0-9]*,"in_use":[0-9]*' | sed 's/.*"in_use"://')
[ "$USED" = 1 ] || { echo "static-check: expected 1 cad seat in use by name, got '$USED'" >&2; exit 1; }
ctl --server "licsrv:$PORT" checkin "$HANDLE"
echo "static-check: checkout, status and checkin by a name from the chroot's /etc/hosts: ok"

ctl --server "127.0.0.1:$PORT" down
for _ in $(seq 1 200); do kill -0 "$PID" 2>/dev/null || break; sleep 0.05; done
if kill -0 "$PID" 2>/dev/null; then
  echo "static-check: floatd did not stop after floatctl down" >&2; exit 1
fi
wait "$PID" || { echo "static-check: floatd exited with an error:" >&2; cat "$ROOT.err" >&2; exit 1; }
PID=""
rm -f "$OUT" "$ROOT.err"
echo "static-check: passed"
