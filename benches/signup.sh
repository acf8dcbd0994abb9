#!/usr/bin/env bash
# Signup throughput: wrk against POST /subscribe with unique addresses (per-IP limit raised),
# and GET / in the same run as the framework's ceiling, on SQLite (sqlite_synchronous = normal,
# then full, side by side) and on PostgreSQL.
#
#   benches/signup.sh                       # both databases
#   DURATION=20s CONNECTIONS=64 benches/signup.sh
#
# Needs wrk (apt-get install wrk); PostgreSQL at $POSTGRES_BENCH_URL (default the local server).
# Confirmation emails are sent while the load runs, to Postfix's smtp-sink on 127.0.0.1:2526
# when it is installed (apt-get install postfix), else written to an outbox folder.
# Every run is bounded: wrk stops after $DURATION, and the servers are stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-15s}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
PG_URL=${POSTGRES_BENCH_URL:-postgres://postgres@127.0.0.1:5432/postgres}
PORT=${PORT:-18080}

command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
cargo build --release --quiet --bin fortnight
BIN=target/release/fortnight
WORK=$(mktemp -d)
SERVER=""
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

SINK=""
MAIL_ENV=()
# The sink's running counters (-c): the last "mesg=N" is how many emails it has taken.
mails_sent() { { tr '\r' '\n' <"$WORK/sink.out" | grep -o 'mesg=[0-9]*' | tail -n1 | cut -d= -f2; } 2>/dev/null || true; }
if command -v smtp-sink >/dev/null; then
  smtp-sink -c -u nobody 127.0.0.1:2526 1024 >"$WORK/sink.out" 2>&1 &
  SINK=$!
  MAIL_ENV=(FORTNIGHT_SMTP_URL=smtp://127.0.0.1:2526)
  echo "confirmation emails go to smtp-sink on 127.0.0.1:2526"
else
  echo "smtp-sink not installed: confirmation emails are written to an outbox folder"
fi
trap '[ -n "$SINK" ] && kill "$SINK" 2>/dev/null; cleanup' EXIT

declare -A RATE
run_one() {
  local label=$1 url=$2 synchronous=${3:-full} ceiling=${4:-yes}
  FORTNIGHT_DATABASE_URL=$url FORTNIGHT_BIND=127.0.0.1:$PORT FORTNIGHT_BASE_URL=http://127.0.0.1:$PORT \
  FORTNIGHT_OUTBOX_DIR=$WORK/outbox-$label FORTNIGHT_SIGNUP_RATE_PER_MINUTE=100000000 \
  FORTNIGHT_SIGNUP_BURST=100000000 FORTNIGHT_MAIL_POLL_INTERVAL=1s FORTNIGHT_SQLITE_SYNCHRONOUS=$synchronous \
  RUST_LOG=warn env "${MAIL_ENV[@]}" "$BIN" serve >"$WORK/$label.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
  if [ "$ceiling" = yes ]; then
    echo "== $label: GET / (ceiling)"
    wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "http://127.0.0.1:$PORT/" | grep -E "Requests/sec|99%|50%"
  fi
  echo "== $label: POST /subscribe (unique addresses)"
  local before after out
  before=$(mails_sent)
  out=$(wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s benches/signup.lua "http://127.0.0.1:$PORT")
  after=$(mails_sent)
  echo "$out" | grep -E "Requests/sec|99%|50%|Non-2xx" || true
  if [ -n "$SINK" ]; then
    echo "  confirmations sent during the run: $(( ${after:-0} - ${before:-0} )) of $(echo "$out" | awk '/requests in/ {print $1}') signups"
  fi
  RATE[$label]=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=""
}

run_one sqlite-normal "sqlite://$WORK/bench-normal.db" normal yes
run_one sqlite-full "sqlite://$WORK/bench-full.db" full no
awk -v n="${RATE[sqlite-normal]}" -v f="${RATE[sqlite-full]}" 'BEGIN {
  printf "== SQLite signups/s: synchronous = normal %.0f, full %.0f (full is %.0f%% of normal)\n", n, f, 100 * f / n }'

if psql "$PG_URL" -qc "SELECT 1" >/dev/null 2>&1; then
  DB=fortnight_bench_$$
  psql "$PG_URL" -qc "DROP DATABASE IF EXISTS $DB" && psql "$PG_URL" -qc "CREATE DATABASE $DB"
  run_one postgres "${PG_URL%/*}/$DB"
  psql "$PG_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
else
  echo "PostgreSQL not reachable at $PG_URL: skipped" >&2
fi
