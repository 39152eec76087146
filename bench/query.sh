#!/usr/bin/env bash
# Query benchmark: every report, and the `sessions` view in full, run by sts-audit (DataFusion)
# and by DuckDB on the same Parquet lake, side by side.
#
#   bench/query.sh [EVENTS]          default 10000000 events over 7 days, organization layout
#
# Both engines run the SQL of queries/views/*.sql and queries/reports/*.sql as written; DuckDB
# gets one macro, json_get_str(json, key), for the one JSON function the views use. Results are
# written as CSV to /dev/null by both. Wall time and peak RSS (/usr/bin/time -v) go into
# BENCHMARKS.md between the BEGIN/END query markers. Env: BENCH_DIR (scratch, default bench/out),
# LAKE (reuse an existing lake), CORPUS (reuse a corpus).
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${1:-10000000}
OUT=${BENCH_DIR:-bench/out}
CORPUS=${CORPUS:-$OUT/corpus-q-$EVENTS}
LAKE=${LAKE:-$OUT/lake-q-$EVENTS}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/sts-audit-target}
BIN=$CARGO_TARGET_DIR/release/sts-audit
mkdir -p "$OUT"

command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time; }
python3 -c "import duckdb" 2>/dev/null || python3 -m pip install --quiet duckdb
cargo build --release --quiet
if [ ! -d "$LAKE/events" ]; then
  [ -d "$CORPUS" ] || python3 ../shared/tools/gen_cloudtrail.py "$CORPUS" --events "$EVENTS" --days 7 --org-layout
  "$BIN" ingest --quiet --lake "$LAKE" "$CORPUS" > "$OUT/query-ingest.txt" || [ $? -eq 2 ]
fi
ROWS=$("$BIN" sql --lake "$LAKE" --format csv "SELECT count(*) AS n FROM events" | tail -1)
FILES=$(find "$LAKE/events" -name '*.parquet' | wc -l)
MB=$(du -sm "$LAKE/events" | cut -f1)

measure() {  # NAME CMD...: prints "seconds rss_mib"
  local name=$1; shift
  if ! /usr/bin/time -v -o "$OUT/$name.time" "$@" > /dev/null 2> "$OUT/$name.err"; then
    echo "failed failed"; return
  fi
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,t,":"); s=0; for(i=1;i<=n;i++) s=s*60+t[i]; print s}' "$OUT/$name.time")
  rss=$(awk -F': ' '/Maximum resident/ {printf "%.0f", $2/1024}' "$OUT/$name.time")
  echo "$wall $rss"
}

cat > "$OUT/duckdb_query.py" <<'PY'
import pathlib, sys, duckdb
lake, target = sys.argv[1], sys.argv[2]
con = duckdb.connect()
con.execute("SET threads = 2")
con.execute("CREATE MACRO json_get_str(j, k) AS json_extract_string(j, '$.' || k)")
con.execute(f"""CREATE VIEW events AS SELECT * FROM read_parquet('{lake}/events/*/*/*.parquet',
               hive_partitioning = true, hive_types_autocast = false)""")
for name in ["assumptions", "issued_credentials", "session_usage", "sessions"]:
    sql = pathlib.Path(f"queries/views/{name}.sql").read_text()
    con.execute(f"CREATE VIEW {name} AS {sql}")
if target.endswith(".sql"):
    sql = pathlib.Path(target).read_text()
else:
    sql = target
con.execute(f"COPY ({sql}) TO '/dev/null' (FORMAT csv)")
PY

ROWS_MD=""
run_pair() {  # LABEL STS_ARGS... -- DUCK_TARGET
  local label=$1 target=$2; shift 2
  read -r S_S S_RSS < <(measure "q-sts-$label" "$BIN" "$@" --lake "$LAKE" --format csv)
  read -r D_S D_RSS < <(measure "q-duck-$label" python3 "$OUT/duckdb_query.py" "$LAKE" "$target")
  local ratio
  ratio=$(python3 -c "print(f'{$D_S/$S_S:.1f}x')" 2>/dev/null || echo "n/a")
  ROWS_MD+="| $label | $S_S | $S_RSS | $D_S | $D_RSS | $ratio |"$'\n'
  echo "$label: sts-audit ${S_S}s ${S_RSS}MiB, duckdb ${D_S}s ${D_RSS}MiB"
}

SUMMARY="SELECT count(*) AS sessions, sum(calls) AS calls, max(chain_depth) AS depth, count(CASE WHEN used_after_expiration THEN 1 END) AS expired_use FROM sessions"
run_pair "sessions view, summarised" "$SUMMARY" sql "$SUMMARY"
run_pair "sessions view, every row and column (--memory-limit 16G)" "SELECT * FROM sessions" sql --memory-limit 16G "SELECT * FROM sessions"
for file in queries/reports/*.sql; do
  name=$(basename "$file" .sql)
  run_pair "report $name" "$file" report "$name"
done

TABLE=$(cat <<MD
Lake: \`gen_cloudtrail.py --events $EVENTS --days 7 --org-layout\` ingested: $(python3 -c "print(f'{$ROWS:,}')") events in $FILES Parquet files, $MB MB. $(nproc) cores (DuckDB: threads = 2), DuckDB $(python3 -c "import duckdb; print(duckdb.__version__)"), measured $(date -u +%Y-%m-%d). Each cell is one cold process: open the lake, run, write CSV to /dev/null.

| query | sts-audit s | sts-audit RSS MiB | DuckDB s | DuckDB RSS MiB | DuckDB time / sts-audit time |
| --- | ---: | ---: | ---: | ---: | ---: |
${ROWS_MD}
MD
)
python3 - "$TABLE" <<'PY'
import re, sys, pathlib
path = pathlib.Path("BENCHMARKS.md")
text = path.read_text() if path.exists() else "# Benchmarks\n"
block = "<!-- BEGIN query -->\n" + sys.argv[1].strip() + "\n<!-- END query -->"
if "<!-- BEGIN query -->" in text:
    text = re.sub(r"<!-- BEGIN query -->.*?<!-- END query -->", lambda _: block, text, flags=re.S)
else:
    text += "\n## Queries: reports on a 10M-event lake, sts-audit vs DuckDB\n\n" + block + "\n"
path.write_text(text)
PY
echo "$TABLE"
