# Shared by scripts/demo.sh and scripts/steady.sh: bash and coreutils
# only (no python3, bc or timeout). Source it after `cd` to the checkout.

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# Builds the binaries, saying so (a fresh clone compiles for a minute or two).
build() {
  if ! cargo build -q --bins 2>/dev/null; then
    echo "building floatd (the first build takes a minute or two)..."
    cargo build -q --bins
  fi
}

# A free loopback port: random in 20000-32767 (below the kernel's ephemeral
# range, which outgoing connections take from), retried while one answers.
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 12768))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}

# A field of a server's greeting (`state`, `epoch`, ...), or nothing.
greeting_field() { # HOST:PORT KEY
  local line=""
  { exec 3<>"/dev/tcp/${1%:*}/${1#*:}" && IFS= read -r -t 2 line <&3; exec 3<&- 3>&-; } 2>/dev/null || true
  sed -n "s/.* $2=\([^ ]*\).*/\1/p" <<<"$line"
}

# The state in a server's greeting (`state=active`), or nothing.
state_of() { greeting_field "$1" state; } # HOST:PORT

# Milliseconds since the epoch (for timing a takeover without bc).
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
