#!/usr/bin/env bash
# Query benchmark: every report, and the `sessions` view in full, run by sts-audit (DataFusion)
# and by DuckDB on the same Parquet lake, side by side.
#
#   bench/query.sh [EVENTS]          default 10000000 events over 8 days, organization layout
#                                    (the corpus and lake of bench/detect.sh and triage.sh)
#
# Both engines run the SQL of queries/views/*.sql and queries/reports/*.sql as written; DuckDB
# gets one macro, json_get_str(json, key), for the one JSON function the views use. Results are
# written as CSV to /dev/null by both. First both build the derived tables (sts-audit derive;
# DuckDB: COPY of the same four views to Parquet), then every query runs four ways: sts-audit on
# the derived tables, sts-audit computing the views from events (--no-derived), DuckDB computing
# the views from events, and DuckDB on sts-audit's derived tables. Wall time and peak RSS
# (/usr/bin/time -v) go into BENCHMARKS.md between the BEGIN/END query markers. Env: BENCH_DIR
# (scratch, default bench/out), LAKE (reuse an existing lake), CORPUS (reuse a corpus).
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${1:-10000000}
OUT=${BENCH_DIR:-bench/out}
CORPUS=${CORPUS:-$OUT/corpus-d-$EVENTS}
LAKE=${LAKE:-$OUT/lake-d-$EVENTS}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/sts-audit-target}
BIN=$CARGO_TARGET_DIR/release/sts-audit
mkdir -p "$OUT"
. bench/lib.sh
# The CSV goes to /dev/null, as DuckDB's COPY does (the whole sessions table is a gigabyte).
export MEASURE_OUT=/dev/null

command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time; }
python3 -c "import duckdb" 2>/dev/null || python3 -m pip install --quiet duckdb
# The build `cargo test --release` makes (dev-dependencies unify features): a plain
# `cargo build --release` would compile DataFusion a second time with other features.
cargo test --release --no-run --quiet
if [ ! -d "$LAKE/events" ]; then
  [ -d "$CORPUS" ] || python3 ../shared/tools/gen_cloudtrail.py "$CORPUS" --events "$EVENTS" --days 8 --org-layout
  "$BIN" ingest --quiet --lake "$LAKE" "$CORPUS" > "$OUT/query-ingest.txt" || [ $? -eq 2 ]
fi
ROWS=$("$BIN" sql --lake "$LAKE" --format csv "SELECT count(*) AS n FROM events" | tail -1)
FILES=$(find "$LAKE/events" -name '*.parquet' | wc -l)
MB=$(du -sm "$LAKE/events" | cut -f1)

cat > "$OUT/duckdb_query.py" <<'PY'
# duckdb_query.py LAKE (events|derived) TARGET: run TARGET (SQL, a .sql file, or "derive DIR")
# with the views computed from events, or with the derived tables sts-audit built.
import json, pathlib, sys, duckdb
lake, source, target = sys.argv[1], sys.argv[2], sys.argv[3]
VIEWS = ["assumption_copies", "session_usage_daily", "caller_sources_daily", "assumptions",
         "issued_credentials", "session_usage", "sessions", "caller_sources"]
STORED = VIEWS[:3]
DERIVED = ["assumptions", "session_usage", "sessions", "caller_sources"]
con = duckdb.connect()
con.execute("SET threads = 2")
con.execute("CREATE MACRO json_get_str(j, k) AS json_extract_string(j, '$.' || k)")
con.execute(f"""CREATE VIEW events AS SELECT * FROM read_parquet('{lake}/events/*/*/*.parquet',
               hive_partitioning = true, hive_types_autocast = false)""")
for name in VIEWS:
    if source == "derived" and name in STORED:
        # One file per account and day, as `sts-audit derive` leaves them.
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{lake}/derived/{name}/*/*/*.parquet')")
    else:
        sql = pathlib.Path(f"queries/views/{name}.sql").read_text()
        con.execute(f"CREATE VIEW {name} AS {sql}")
if target.startswith("derive "):
    out = pathlib.Path(target.split(" ", 1)[1])
    out.mkdir(parents=True, exist_ok=True)
    for name in DERIVED:
        con.execute(f"COPY (SELECT * FROM {name}) TO '{out}/{name}.parquet' (FORMAT parquet, COMPRESSION zstd)")
    sys.exit(0)
sql = pathlib.Path(target).read_text() if target.endswith(".sql") else target
con.execute(f"COPY ({sql}) TO '/dev/null' (FORMAT csv)")
PY

# The derived tables: sts-audit derive, and DuckDB writing the same four views to Parquet.
read -r DERIVE_S DERIVE_RSS < <(measure "derive-sts" "$BIN" derive --force --lake "$LAKE")
rm -rf "$OUT/duck-derived"
read -r DUCK_DERIVE_S DUCK_DERIVE_RSS < <(measure "derive-duck" python3 "$OUT/duckdb_query.py" "$LAKE" events "derive $OUT/duck-derived")
rm -rf "$OUT/duck-derived"
DERIVED_MB=$(du -sm "$LAKE/derived" | cut -f1)
echo "derive: sts-audit ${DERIVE_S}s ${DERIVE_RSS}MiB, duckdb ${DUCK_DERIVE_S}s ${DUCK_DERIVE_RSS}MiB"

ROWS_MD=""
run_pair() {  # LABEL DUCK_TARGET STS_ARGS...
  local label=$1 target=$2; shift 2
  read -r S_S S_RSS < <(measure "q-sts-$label" "$BIN" "$@" --lake "$LAKE" --format csv)
  read -r E_S _ < <(measure "q-sts-events-$label" "$BIN" "$@" --no-derived --lake "$LAKE" --format csv)
  read -r D_S D_RSS < <(measure "q-duck-$label" python3 "$OUT/duckdb_query.py" "$LAKE" events "$target")
  read -r DD_S _ < <(measure "q-duck-derived-$label" python3 "$OUT/duckdb_query.py" "$LAKE" derived "$target")
  local ratio ratio_derived
  ratio=$(python3 -c "print(f'{$D_S/$S_S:.1f}x')" 2>/dev/null || echo "n/a")
  ratio_derived=$(python3 -c "print(f'{$DD_S/$S_S:.1f}x')" 2>/dev/null || echo "n/a")
  ROWS_MD+="| $label | $S_S | $S_RSS | $E_S | $D_S | $D_RSS | $DD_S | $ratio | $ratio_derived |"$'\n'
  echo "$label: sts-audit ${S_S}s ${S_RSS}MiB (from events ${E_S}s), duckdb ${D_S}s ${D_RSS}MiB (on derived ${DD_S}s)"
}

SUMMARY="SELECT count(*) AS sessions, sum(calls) AS calls, max(chain_depth) AS depth, count(CASE WHEN used_after_expiration THEN 1 END) AS expired_use FROM sessions"
run_pair "sessions view, summarised" "$SUMMARY" sql "$SUMMARY"
run_pair "sessions view, every row and column (--memory-limit 16G)" "SELECT * FROM sessions" sql --memory-limit 16G "SELECT * FROM sessions"
for file in queries/reports/*.sql; do
  name=$(basename "$file" .sql)
  run_pair "report $name" "$file" report "$name"
done

TABLE=$(cat <<MD
Lake: \`gen_cloudtrail.py --events $EVENTS --days 8 --org-layout\` ingested: $(python3 -c "print(f'{$ROWS:,}')") events in $FILES Parquet files, $MB MB. $(nproc) cores (DuckDB: threads = 2), DuckDB $(python3 -c "import duckdb; print(duckdb.__version__)"), measured $(date -u +%Y-%m-%d). Each cell is one cold process: open the lake, run, write CSV to /dev/null.

Building the derived tables (once per ingest): \`sts-audit derive\` ${DERIVE_S} s, ${DERIVE_RSS} MiB peak, ${DERIVED_MB} MB of Parquet; DuckDB computing the same four views from the event files and writing them to Parquet: ${DUCK_DERIVE_S} s, ${DUCK_DERIVE_RSS} MiB.

| query | sts-audit s (derived tables) | sts-audit RSS MiB | sts-audit s (views from events, --no-derived) | DuckDB s (views from events) | DuckDB RSS MiB | DuckDB s (on the derived tables) | DuckDB from events / sts-audit | DuckDB on derived / sts-audit |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
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
