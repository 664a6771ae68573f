#!/usr/bin/env bash
# Installs floatd: the binaries, the systemd units, a commented config file
# and the operations guide, then says what to do next.
#
#   scripts/install.sh [--prefix DIR] [--role primary|backup|witness]
#                      [--bin-dir DIR] [--dry-run]
#
#   --prefix DIR   install under DIR instead of / (a package root, a test)
#   --role ROLE    a server of a failover pair, or the witness: writes
#                  /etc/floatd/ROLE.toml for floatd@ROLE.service instead
#                  of /etc/floatd/floatd.toml for floatd.service
#   --bin-dir DIR  take floatd and floatctl from DIR (e.g. a static build)
#                  instead of building them (cargo build --release) or, in
#                  an unpacked release, taking those beside this script
#   --dry-run      print what would be done, change nothing
#
# Idempotent: files already in place and identical are left alone, and an
# existing config file is never overwritten. See docs/OPERATIONS.md.
set -euo pipefail

usage() { sed -n '2,17s/^# \{0,1\}//p' "$0"; }

PREFIX=""
ROLE=""
BIN_DIR=""
DRY_RUN=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) PREFIX=${2:?--prefix needs a directory}; shift 2 ;;
    --prefix=*) PREFIX=${1#*=}; shift ;;
    --role) ROLE=${2:?--role needs primary, backup or witness}; shift 2 ;;
    --role=*) ROLE=${1#*=}; shift ;;
    --bin-dir) BIN_DIR=${2:?--bin-dir needs a directory}; shift 2 ;;
    --bin-dir=*) BIN_DIR=${1#*=}; shift ;;
    --dry-run|-n) DRY_RUN=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "install.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
  esac
done
case "$ROLE" in
  ""|primary|backup|witness) ;;
  *) echo "install.sh: --role must be primary, backup or witness, not $ROLE" >&2; exit 2 ;;
esac
PREFIX=${PREFIX%/}

HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/.." && pwd)
BINDIR=$PREFIX/usr/local/bin
UNITDIR=$PREFIX/etc/systemd/system
CONFDIR=$PREFIX/etc/floatd
DOCDIR=$PREFIX/usr/local/share/doc/floatd
if [ -n "$ROLE" ]; then
  CONFIG=$CONFDIR/$ROLE.toml
  UNIT=floatd@$ROLE.service
else
  CONFIG=$CONFDIR/floatd.toml
  UNIT=floatd.service
fi

say() { printf '%s\n' "$*"; }
act() { # DESCRIPTION COMMAND...: runs it, or says it would
  if [ "$DRY_RUN" = 1 ]; then say "would $1"; else "${@:2}"; say "$1"; fi
}

# Where the binaries come from.
if [ -z "$BIN_DIR" ]; then
  if [ -f "$SRC/Cargo.toml" ] && [ -d "$SRC/src" ]; then
    if [ "$DRY_RUN" = 1 ]; then
      say "would build: cargo build --release --bins (in $SRC)"
    else
      say "building: cargo build --release --bins (in $SRC)"
      (cd "$SRC" && cargo build --release --bins)
    fi
    BIN_DIR=$SRC/target/release
  elif [ -x "$HERE/floatd" ]; then
    BIN_DIR=$HERE # an unpacked release: binaries beside this script
  else
    echo "install.sh: no source tree and no floatd beside this script; use --bin-dir DIR" >&2
    exit 1
  fi
fi
for b in floatd floatctl; do
  if [ ! -x "$BIN_DIR/$b" ] && [ "$DRY_RUN" = 0 ]; then
    echo "install.sh: $BIN_DIR/$b is missing or not executable" >&2
    exit 1
  fi
done

# install_file SOURCE DEST MODE: installs unless DEST is identical already.
install_file() {
  local from=$1 to=$2 mode=$3
  if [ -f "$to" ] && cmp -s "$from" "$to"; then
    say "unchanged $to"
  elif [ -e "$to" ]; then
    act "update $to" install -m "$mode" "$from" "$to"
  else
    act "install $to" install -D -m "$mode" "$from" "$to"
  fi
}

MADE=" "
make_dir() { # DIR MODE
  case "$MADE" in *" $1 "*) return ;; esac
  MADE="$MADE$1 "
  [ -d "$1" ] || act "create $1/" install -d -m "$2" "$1"
}

# The config file: every key, its default, what it does.
config_text() {
  local role=${1:-standalone}
  cat <<EOF
# floatd configuration (TOML), read with: floatd --config $( [ -n "$ROLE" ] && echo "/etc/floatd/$ROLE.toml" || echo /etc/floatd/floatd.toml )
# Every key is also a command-line flag (state_dir is --state-dir); flags win.
# Lines starting with '#' show the default. Durations take a unit: 500ms, 3s,
# 2m, 1h, 21d. See docs/OPERATIONS.md and docs/FAILOVER.md.
EOF
  if [ -n "$ROLE" ]; then
    cat <<EOF
#
# floatd@$role.service passes --role $role and --peer-secret-file
# \$CREDENTIALS_DIRECTORY/peer.secret (systemd copies /etc/floatd/peer.secret
# there); the keys below for those are for running floatd by hand.
EOF
  fi
  cat <<'EOF'

## Licences
EOF
  if [ "$role" = witness ]; then
    cat <<'EOF'
# The witness serves no licence.
# license = ""
EOF
  else
    cat <<'EOF'
# Licence files and directories, ':'-separated (a directory gives its *.lic).
# Default: $FLOATD_LICENSE, then *.lic in the working directory and beside
# the floatd binary.
license = "/etc/floatd"
EOF
  fi
  cat <<'EOF'
# Public keys of vendors whose licences to trust, besides those built in.
# vendor_key = ["/etc/floatd/vendor.pub"]
# The options file (RESERVE, MAX, INCLUDE, EXCLUDE, GROUP). Default:
# floatd.opt beside the licence.
# options = "/etc/floatd/floatd.opt"

## Network
# Address to listen on for clients.
# bind = "0.0.0.0"
# Client port. Default: the port on the licence's SERVER (or FAILOVER) line,
# else 27000.
# port = 27000
# The address clients should use for this server, when it differs from the
# licence's host name and the bound port (NAT, a DNS alias).
# advertise = "lic1.example.com:27000"
# Status page, /status.json and /metrics (Prometheus). Off unless set; it
# is read-only, but keep it on a trusted network (or loopback).
# http = "127.0.0.1:27080"

## Clients
# Seat lease: a seat whose client stops heartbeating returns this long after.
# lease = "60s"
# Connection cap (a few more are kept for operators on loopback). Needs
# LimitNOFILE= above it (the units set 32768).
# max_connections = 16384
# Checkouts one client (client id, user, host) may hold and wait for at
# once; 0 for no limit. Stops a runaway client (CLIENT_LIMIT).
# max_checkouts_per_client = 1000
# Close client connections that send nothing for this long.
# idle_timeout = "300s"
# A file holding the token admin requests from other hosts must present.
# admin_token_file = "/etc/floatd/admin.token"
# Require the admin token from loopback too.
# admin_token_always = false
# The length of a roam day (docs/ROAMING.md). Shorter for tests only.
# roam_day = "1d"

## Storage
# Journal, snapshot and report log. Default: $STATE_DIRECTORY (systemd's
# StateDirectory=, /var/lib/floatd), else /var/lib/floatd, else ./floatd-state.
# state_dir = "/var/lib/floatd"
# "fsync" (every grant is on disk before it is answered) or "none".
# durability = "fsync"

## Failover (docs/FAILOVER.md)
EOF
  case "$role" in
    primary|backup)
      local other=backup; [ "$role" = backup ] && other=primary
      cat <<EOF
# standalone, primary, backup or witness (floatd@.service sets it).
# role = "$role"
# REQUIRED: the $other's peer port (its client port + 1 unless it sets
# peer_listen). Reread by `systemctl reload floatd@$role`: the $other can
# move without a restart here (docs/OPERATIONS.md, Moving the backup).
# peer = "lic-$other.example.com:27001"
EOF
      ;;
    witness)
      cat <<'EOF'
# standalone, primary, backup or witness (floatd@.service sets it).
# role = "witness"
# The other server's peer port (primary and backup only).
# peer = "lic2.example.com:27001"
EOF
      ;;
    *)
      cat <<'EOF'
# standalone, primary, backup or witness.
# role = "standalone"
# The other server's peer port (primary and backup).
# peer = "lic2.example.com:27001"
EOF
      ;;
  esac
  cat <<'EOF'
# The shared secret of the peer link: one line, at least 16 characters.
# peer_secret_file = "/etc/floatd/peer.secret"
EOF
  if [ "$role" = witness ]; then
    cat <<'EOF'
# Where the witness listens for the primary and the backup (required).
peer_listen = "0.0.0.0:27001"
EOF
  else
    cat <<'EOF'
# This server's own peer port. Default: the client port + 1 on bind.
# peer_listen = "0.0.0.0:27001"
EOF
  fi
  cat <<'EOF'
# The witness's peer port: witness mode (no seat ever granted twice).
# witness = "lic3.example.com:27001"
# Heartbeats between the servers.
# ping_interval = "500ms"
# Silence after which the standby takes over.
# takeover_after = "3s"
# An acknowledgement later than this makes the standby stale.
# sync_timeout = "250ms"
# Witness mode: how long a grant lease lasts (shorter than takeover_after).
# fence_after = "2s"
# A backup serving alone this many days refuses new checkouts.
# backup_max_days = 21
# A primary that has not seen its backup this many days stops advertising it.
# backup_lost_after_days = 7
EOF
}

install_config() {
  if [ -e "$CONFIG" ]; then
    say "keeping existing $CONFIG"
    return
  fi
  if [ "$DRY_RUN" = 1 ]; then
    say "would write $CONFIG (commented defaults)"
    return
  fi
  local tmp
  tmp=$(mktemp)
  config_text "$ROLE" > "$tmp"
  install -D -m 0644 "$tmp" "$CONFIG"
  rm -f "$tmp"
  say "write $CONFIG (commented defaults)"
}

[ "$DRY_RUN" = 1 ] && say "dry run: nothing is changed"
make_dir "$BINDIR" 0755
install_file "$BIN_DIR/floatd" "$BINDIR/floatd" 0755
install_file "$BIN_DIR/floatctl" "$BINDIR/floatctl" 0755
make_dir "$UNITDIR" 0755
install_file "$HERE/floatd.service" "$UNITDIR/floatd.service" 0644
install_file "$HERE/floatd@.service" "$UNITDIR/floatd@.service" 0644
make_dir "$CONFDIR" 0755
install_config
for doc in OPERATIONS.md FAILOVER.md STATE.md; do
  for from in "$SRC/docs/$doc" "$HERE/$doc"; do
    if [ -f "$from" ]; then
      make_dir "$DOCDIR" 0755
      install_file "$from" "$DOCDIR/$doc" 0644
      break
    fi
  done
done

ETC=/etc/floatd
cat <<EOF

Next steps:
  1. Put the licence file(s) in $ETC/ (any name ending .lic). Unless the
     vendor built its public key into floatd, also put that key in
     $ETC/vendor.pub and uncomment vendor_key in $ETC/$(basename "$CONFIG").
EOF
case "$ROLE" in
  primary|backup)
    cat <<EOF
  2. Set peer = "OTHER-HOST:PORT" in $ETC/$ROLE.toml, and put the pair's
     shared secret (the same on both hosts) in $ETC/peer.secret:
       head -c 32 /dev/urandom | base64 > $ETC/peer.secret && chmod 600 $ETC/peer.secret
EOF
    ;;
  witness)
    cat <<EOF
  2. Put the pair's shared secret (the same as on primary and backup) in
     $ETC/peer.secret (chmod 600); no licence is needed on the witness.
EOF
    ;;
esac
cat <<EOF
  $( [ -n "$ROLE" ] && echo 3 || echo 2 ). Start it, now and at every boot:
       systemctl daemon-reload && systemctl enable --now $UNIT
     and check: systemctl status $UNIT; floatctl status
     (logs: journalctl -u $UNIT; without systemd: floatd --config $ETC/$(basename "$CONFIG"))
EOF
