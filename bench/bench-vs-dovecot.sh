#!/usr/bin/env bash
# bench-vs-dovecot.sh - postofficed against Dovecot (stock and tuned) on the
# same corpus, in one run, on loopback; prints one table with ratios.
#
#   bash bench/bench-vs-dovecot.sh            # full run (< 15 min)
#   QUICK=1 bash bench/bench-vs-dovecot.sh    # smaller corpus, short runs (< 3 min)
#
# Needs root (Dovecot's peer script installs/configures Dovecot and runs it
# as vmail). Everything lives under $BENCH_DIR (default /tmp/po-bench):
#   bin/                  postofficed, postoffice, poload built from this repo
#   corpus/<key>/         the generated corpus, cached by generator version,
#                         seed and size; owned by vmail
#   run/<server>/         each server's config, logs and its own copy of the
#                         corpus (hard links: Maildir files are never rewritten)
#   results/<stamp>.jsonl poload --json output; results/<stamp>.md the table
#
# Settings (environment): QUICK, SEED, USERS, MSGS, BIG, DUR, CONNS,
# IDLE_CONNS, SETTLE, IDLE_BIG (postofficed only: a second idle run with
# this many connections, where a garbage-collected heap's noise in PSS is
# spread thinner; 0: off), SERVERS (subset of "dovecot-stock dovecot-tuned postofficed"),
# BENCH_DIR, PEER_SCRIPT, ARGON2_M/ARGON2_T/ARGON2_P.
#
# Only 127.0.0.1 is used. Every process started here is stopped on exit, by
# PID (postofficed) or by the peer script's pidfile (Dovecot's master).
set -euo pipefail

QUICK=${QUICK:-0}
SEED=${SEED:-1}
if [ "$QUICK" = 1 ]; then
  USERS=${USERS:-20} MSGS=${MSGS:-100} BIG=${BIG:-20000}
  DUR=${DUR:-2s} CONNS=${CONNS:-8} IDLE_CONNS=${IDLE_CONNS:-40} SETTLE=${SETTLE:-1s} IDLE_BIG=${IDLE_BIG:-0}
else
  USERS=${USERS:-50} MSGS=${MSGS:-200} BIG=${BIG:-100000}
  DUR=${DUR:-12s} CONNS=${CONNS:-16} IDLE_CONNS=${IDLE_CONNS:-400} SETTLE=${SETTLE:-2s} IDLE_BIG=${IDLE_BIG:-2000}
fi
SERVERS=${SERVERS:-"dovecot-stock dovecot-tuned postofficed"}
BENCH_DIR=${BENCH_DIR:-/tmp/po-bench}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PEER=${PEER_SCRIPT:-$REPO/../shared/peers/dovecot-peer.sh}
[ -f "$PEER" ] || PEER=/work/shared/peers/dovecot-peer.sh
# One argon2id cost for both servers: postoffice's default (OWASP baseline).
ARGON2_M=${ARGON2_M:-19456} ARGON2_T=${ARGON2_T:-2} ARGON2_P=${ARGON2_P:-1}
# Ports of our own, so a peer already running on 11143/11110 is left alone.
DC_IMAP=12143 DC_IMAPS=12993 DC_POP3=12110 DC_POP3S=12995
PO_IMAP=12243 PO_POP3=12210
TUNED=$'service imap {\n  service_count = 1000\n  process_min_avail = 4\n}\nservice pop3 {\n  service_count = 1000\n  process_min_avail = 4\n}'

BIN=$BENCH_DIR/bin
RUN=$BENCH_DIR/run
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
RESULTS=$BENCH_DIR/results/$STAMP.jsonl
LOG=$BENCH_DIR/results/$STAMP.log
T0=$(date +%s)

say() { printf '[%4ds] %s\n' $(($(date +%s) - T0)) "$*" >&2; }

[ "$(id -u)" = 0 ] || { echo "bench-vs-dovecot: must run as root (Dovecot's peer script needs it)" >&2; exit 1; }
mkdir -p "$BIN" "$RUN" "$BENCH_DIR/results" "$BENCH_DIR/corpus"
: > "$RESULTS"

# ---- cleanup: stop exactly what we started
DC_STARTED=()
PO_PID=
dc_env() {
  export PEER_DIR=$RUN/$1 PEER_MAIL=$RUN/$1/mail PEER_ADDR=127.0.0.1
  export IMAP_PORT=$DC_IMAP IMAPS_PORT=$DC_IMAPS POP3_PORT=$DC_POP3 POP3S_PORT=$DC_POP3S
  export BENCH_USERS=$USERS PEER_PASS_SCHEME=ARGON2ID
  if [ "$1" = dovecot-tuned ]; then export PEER_EXTRA_CONF=$TUNED; else export PEER_EXTRA_CONF=; fi
}
dc_stop() { ( dc_env "$1"; bash "$PEER" stop ) >>"$LOG" 2>&1 || true; }
po_stop() {
  if [ -n "$PO_PID" ]; then
    kill -TERM "$PO_PID" 2>/dev/null || true
    wait "$PO_PID" 2>/dev/null || true
    PO_PID=
  fi
}
cleanup() {
  po_stop
  local v
  for v in "${DC_STARTED[@]}"; do dc_stop "$v"; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_port() {
  local i
  for i in $(seq 1 300); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "bench-vs-dovecot: nothing listens on 127.0.0.1:$1" >&2
  return 1
}

# ---- build
say "building postofficed, postoffice, poload"
(cd "$REPO" && go build -o "$BIN/" ./cmd/postofficed ./cmd/postoffice ./cmd/poload)

# ---- Dovecot packages and the vmail user (the peer script's setup)
( dc_env dovecot-stock; bash "$PEER" setup ) >>"$LOG" 2>&1
VUID=$(id -u vmail) VGID=$(id -g vmail)

# ---- corpus, generated once per generator version + seed + size
CORPUS=$BENCH_DIR/corpus/v1-s$SEED-u$USERS-m$MSGS-b$BIG
if [ ! -d "$CORPUS" ]; then
  say "generating corpus $CORPUS"
  rm -rf "$CORPUS.tmp"
  "$BIN/poload" corpus --out "$CORPUS.tmp" --seed "$SEED" --users "$USERS" --msgs "$MSGS" --big-user big --big-msgs "$BIG"
  chown -R vmail:vmail "$CORPUS.tmp"
  mv "$CORPUS.tmp" "$CORPUS"
fi
HASH=$("$BIN/poload" hash --password benchpw -m "$ARGON2_M" -t "$ARGON2_T" -p "$ARGON2_P")

# copy_corpus DIR: a private copy (hard links, ownership kept).
copy_corpus() {
  rm -rf "$1"
  mkdir -p "$1"
  cp -al "$CORPUS/." "$1/"
}

# ---- server control: *_start sets SERVER_PID, IMAP, POP3, MAILDIR
dc_start() {
  local v=$1
  ( dc_env "$v"
    bash "$PEER" start
    # Same stored hash as postofficed (the peer's ARGON2ID is doveadm's
    # m=64 MiB,t=3), plus the big mailbox's user. passwd-file is re-read
    # when it changes.
    f=$PEER_DIR/users.passwd
    awk -F: -v OFS=: -v h="$HASH" '$1 ~ /^bench[0-9]+$/ { $2 = h } { print }' "$f" > "$f.new"
    echo "big:$HASH:$VUID:$VGID::$PEER_MAIL/big::" >> "$f.new"
    chown root:dovecot "$f.new" 2>/dev/null || true
    chmod 0640 "$f.new"
    mv -f "$f.new" "$f"
  ) >>"$LOG" 2>&1
  SERVER_PID=$(cat "$RUN/$v/run/master.pid")
  IMAP=127.0.0.1:$DC_IMAP POP3=127.0.0.1:$DC_POP3 MAILDIR=$RUN/$v/mail/%u/Maildir
}

dc_setup() {
  local v=$1
  dc_stop "$v"
  rm -rf "${RUN:?}/$v"
  copy_corpus "$RUN/$v/mail"
  DC_STARTED+=("$v")
}

export POSTOFFICE_ARGON2_MEMORY=$ARGON2_M POSTOFFICE_ARGON2_TIME=$ARGON2_T POSTOFFICE_ARGON2_THREADS=$ARGON2_P
PO_DIR=$RUN/postofficed
po_setup() {
  rm -rf "$PO_DIR"
  mkdir -p "$PO_DIR/data"
  copy_corpus "$PO_DIR/mail"
  local u
  for u in $(seq -f 'bench%g' 1 "$USERS") big; do
    printf 'benchpw\n' | "$BIN/postoffice" --data "$PO_DIR/data" --maildir "$PO_DIR/mail/%u/Maildir" \
      user add "$u" --password-stdin >>"$LOG" 2>&1
  done
}
po_start() {
  ( ulimit -n "$(ulimit -Hn)"
    exec "$BIN/postofficed" --data "$PO_DIR/data" --maildir "$PO_DIR/mail/%u/Maildir" \
      --imap 127.0.0.1:$PO_IMAP --pop3 127.0.0.1:$PO_POP3 --imaps '' --pop3s '' \
      --plaintext-auth-nets 127.0.0.0/8 --max-conns-per-ip 0 --max-conns-per-user 0 \
      --log-level warn ) >>"$PO_DIR/postofficed.log" 2>&1 &
  PO_PID=$!
  wait_port $PO_IMAP && wait_port $PO_POP3
  SERVER_PID=$PO_PID
  IMAP=127.0.0.1:$PO_IMAP POP3=127.0.0.1:$PO_POP3 MAILDIR=$PO_DIR/mail/%u/Maildir
}

server_start() { if [ "$1" = postofficed ]; then po_start; else dc_start "$1"; fi; }
server_stop() { if [ "$1" = postofficed ]; then po_stop; else dc_stop "$1"; fi; }

# pl LABEL ARGS...: one poload run, JSON to the results, text to the terminal.
pl() {
  local label=$1; shift
  "$BIN/poload" --server "$label" --server-pid "$SERVER_PID" --users "$USERS" --json "$@" >>"$RESULTS" 2>"$BENCH_DIR/results/.last" || true
  grep -v '^$' "$BENCH_DIR/results/.last" | tee -a "$LOG" >&2 || true
}

run_server() {
  local s=$1
  say "== $s: setting up"
  if [ "$s" = postofficed ]; then po_setup; else dc_setup "$s"; fi
  server_start "$s"
  say "$s: warm-up (every user once: login, SELECT, header fetch)"
  "$BIN/poload" --addr "$IMAP" --users "$USERS" --conns "$USERS" --ops "$USERS" imap-headers >>"$LOG" 2>&1 || true
  pl "$s" --addr "$POP3" --conns "$CONNS" --duration "$DUR" pop3-retr
  pl "$s" --addr "$IMAP" --conns "$CONNS" --duration "$DUR" imap-headers
  pl "$s" --addr "$IMAP" --conns "$CONNS" --duration "$DUR" imap-body
  pl "$s" --addr "$IMAP" --conns "$CONNS" --duration "$DUR" append
  pl "$s" --addr "$IMAP" --conns "$CONNS" --duration "$DUR" login
  pl "$s" --addr "$IMAP" --conns "$CONNS" --duration "$DUR" --maildir "$MAILDIR" mixed
  pl "$s" --addr "$IMAP" --conns "$IDLE_CONNS" --maildir "$MAILDIR" --settle "$SETTLE" --timeout 40s idle
  if [ "$s" = postofficed ] && [ "$IDLE_BIG" -gt 0 ]; then
    pl "$s" --addr "$IMAP" --conns "$IDLE_BIG" --maildir "$MAILDIR" --settle "$SETTLE" --timeout 40s --workload-name idle-big idle
  fi
  pl "$s" --addr "$IMAP" --ops 1 --workload-name select-big-first select-big
  say "$s: restart for a cold SELECT"
  server_stop "$s"
  server_start "$s"
  pl "$s" --addr "$IMAP" --ops 4 select-big
  server_stop "$s"
}

say "QUICK=$QUICK users=$USERS msgs=$MSGS big=$BIG dur=$DUR conns=$CONNS idle=$IDLE_CONNS; results in $RESULTS"
say "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/^Mem:/ {print $2}') GB, load $(cut -d' ' -f1-3 /proc/loadavg)"
for s in $SERVERS; do run_server "$s"; done

{
  echo "Run $STAMP: QUICK=$QUICK, $USERS users × $MSGS messages, big mailbox $BIG messages, ${DUR} per workload, $CONNS connections ($IDLE_CONNS for idle)."
  echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/^Mem:/ {print $2}') GB RAM; load average at the end $(cut -d' ' -f1-3 /proc/loadavg)."
  echo "Dovecot $(dovecot --version 2>/dev/null | cut -d' ' -f1); both servers verify the same argon2id hash (m=$ARGON2_M KiB, t=$ARGON2_T, p=$ARGON2_P)."
  echo
  "$BIN/poload" report --ours postofficed --base dovecot-tuned "$RESULTS"
} | tee "$BENCH_DIR/results/$STAMP.md"
say "done in $(($(date +%s) - T0))s; table in $BENCH_DIR/results/$STAMP.md"
