#!/usr/bin/env bash
# The list at scale: import a 1,000,000-row CSV with the CLI (time and peak memory), then time
# the admin's subscriber list on page 1 and page 10,000 and the API's list, on SQLite (and on
# PostgreSQL when $POSTGRES_BENCH_URL or the local server answers).
#
#   benches/subscribers.sh            ROWS=1000000 by default
#
# Needs python3 (to write the CSV), curl and GNU time (/usr/bin/time). Bounded: a fixed number
# of requests, servers stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

ROWS=${ROWS:-1000000}
PORT=${PORT:-18090}
PG_URL=${POSTGRES_BENCH_URL:-postgres://postgres@127.0.0.1:5432/postgres}
cargo build --release --quiet --bin fortnight
BIN=$PWD/target/release/fortnight
WORK=$(mktemp -d)
SERVER=""
cleanup() { [ -n "$SERVER" ] && kill "$SERVER" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT

python3 - "$WORK/list.csv" "$ROWS" <<'PY'
import sys
path, rows = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    f.write("email,name,status,created\n")
    for i in range(rows):
        f.write(f"reader{i}@example{i % 97}.com,Reader {i},active,2024-{1 + i % 12:02d}-{1 + i % 28:02d}\n")
PY
echo "CSV: $ROWS rows, $(du -h "$WORK/list.csv" | cut -f1)"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

run_one() {
  local label=$1 url=$2
  export FORTNIGHT_DATABASE_URL=$url RUST_LOG=warn
  echo "== $label: import"
  /usr/bin/time -f "wall %e s, peak RSS %M KB" "$BIN" subscribers import "$WORK/list.csv" --consented 2>&1 | tail -2
  echo "bench-editor-password" | "$BIN" editor add bench@example.com --password-stdin >/dev/null
  FORTNIGHT_BIND=127.0.0.1:$PORT FORTNIGHT_BASE_URL=http://127.0.0.1:$PORT FORTNIGHT_OUTBOX_DIR=$WORK/outbox \
    "$BIN" serve >"$WORK/$label.log" 2>&1 &
  SERVER=$!
  for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/health" >/dev/null && break; sleep 0.1; done
  local jar=$WORK/$label.jar base=http://127.0.0.1:$PORT
  local csrf
  csrf=$(curl -s -c "$jar" -b "$jar" "$base/admin/login" | grep -o 'csrf=[^"]*' | head -1 | cut -d= -f2)
  curl -s -c "$jar" -b "$jar" -o /dev/null --data "email=bench@example.com&password=bench-editor-password" "$base/admin/login?csrf=$csrf"
  local max_id before
  max_id=$(curl -s -b "$jar" "$base/admin/subscribers" | grep -o '/admin/subscribers/[0-9]*"' | head -1 | grep -o '[0-9]*')
  before=$((max_id + 1 - 50 * 9999))
  for page in "page 1|/admin/subscribers" "page 10,000|/admin/subscribers?before=$before" \
              "search 'reader4242'|/admin/subscribers?q=reader4242" "status filter|/admin/subscribers?status=active&before=$before"; do
    local name=${page%%|*} path=${page#*|}
    local ms
    ms=$(for _ in $(seq 1 21); do curl -s -b "$jar" -o /dev/null -w '%{time_total}\n' "$base$path"; done | median)
    echo "$name: median $(awk -v s="$ms" 'BEGIN {printf "%.1f", s * 1000}') ms over 21 requests"
  done
  kill "$SERVER"; wait "$SERVER" 2>/dev/null || true; SERVER=""
}

run_one sqlite "sqlite://$WORK/bench.db"
if psql "$PG_URL" -qc "SELECT 1" >/dev/null 2>&1; then
  DB=fortnight_bench_$$
  psql "$PG_URL" -qc "CREATE DATABASE $DB"
  run_one postgres "${PG_URL%/*}/$DB"
  psql "$PG_URL" -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)"
else
  echo "PostgreSQL not reachable at $PG_URL: skipped" >&2
fi
