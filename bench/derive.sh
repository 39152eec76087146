#!/usr/bin/env bash
# Derived-table benchmark: `sts-audit derive` on a lake of generated traffic, from nothing
# (--force) and incrementally after ingesting one more day, against DuckDB materialising the same
# views from the same event files; then report latency over one week through the derived files.
# Wall time and peak RSS (/usr/bin/time -v), the median of RUNS interleaved runs, go into
# BENCHMARKS.md between the BEGIN/END derive markers.
#
#   bench/derive.sh [EVENTS] [DAYS]     default 10000000 events over 8 days, organization layout
#
# Env: BENCH_DIR (scratch, default bench/out), CORPUS, LAKE (reuse them), RUNS (default 2).
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${1:-10000000}
DAYS=${2:-8}
OUT=${BENCH_DIR:-bench/out}
CORPUS=${CORPUS:-$OUT/corpus-d-$EVENTS}
LAKE=${LAKE:-$OUT/lake-d-$EVENTS}
INCREMENTAL=$OUT/lake-inc-$EVENTS
RUNS=${RUNS:-2}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/sts-audit-target}
BIN=$CARGO_TARGET_DIR/release/sts-audit
mkdir -p "$OUT"
. bench/lib.sh

command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time; }
python3 -c "import duckdb" 2>/dev/null || python3 -m pip install --quiet duckdb
# The build `cargo test --release` makes (dev-dependencies unify features): a plain
# `cargo build --release` would compile DataFusion a second time with other features.
cargo test --release --no-run --quiet
[ -d "$CORPUS" ] || nice python3 ../shared/tools/gen_cloudtrail.py "$CORPUS" --events "$EVENTS" --days "$DAYS" --org-layout
if [ ! -d "$LAKE/events" ]; then
  "$BIN" ingest --quiet --lake "$LAKE" "$CORPUS" > /dev/null || [ $? -eq 2 ]
fi
ROWS=$("$BIN" sql --lake "$LAKE" --format csv "SELECT count(*) AS n FROM events" | tail -1)
FIRST=$("$BIN" sql --lake "$LAKE" --format csv "SELECT min(date) AS d FROM events" | tail -1)
LAST=$("$BIN" sql --lake "$LAKE" --format csv "SELECT max(date) AS d FROM events" | tail -1)
PARTITIONS=$("$BIN" sql --lake "$LAKE" --format csv "SELECT count(DISTINCT account_id || date) AS n FROM events" | tail -1)

# DuckDB materialising the finished views from the event files, with sts-audit's SQL.
cat > "$OUT/duckdb_derive.py" <<'PY'
import pathlib, sys, duckdb
lake, out = sys.argv[1], pathlib.Path(sys.argv[2])
VIEWS = ["assumption_copies", "session_usage_daily", "caller_sources_daily", "assumptions",
         "issued_credentials", "session_usage", "sessions", "caller_sources"]
con = duckdb.connect()
con.execute("SET threads = 2")
con.execute("CREATE MACRO json_get_str(j, k) AS json_extract_string(j, '$.' || k)")
con.execute(f"""CREATE VIEW events AS SELECT * FROM read_parquet('{lake}/events/*/*/*.parquet',
               hive_partitioning = true, hive_types_autocast = false)""")
for name in VIEWS:
    con.execute(f"CREATE VIEW {name} AS {pathlib.Path(f'queries/views/{name}.sql').read_text()}")
out.mkdir(parents=True, exist_ok=True)
for name in ["assumptions", "session_usage", "sessions", "caller_sources"]:
    con.execute(f"COPY (SELECT * FROM {name}) TO '{out}/{name}.parquet' (FORMAT parquet, COMPRESSION zstd)")
PY

# Full derive, interleaved with DuckDB; then once with a 2 GiB pool.
F_S=(); F_RSS=(); D_S=(); D_RSS=()
for i in $(seq "$RUNS"); do
  read -r s rss < <(measure "derive-full" "$BIN" derive --force --format json --lake "$LAKE")
  F_S+=("$s"); F_RSS+=("$rss")
  rm -rf "$OUT/duck-derived"
  read -r s rss < <(measure "derive-duck" python3 "$OUT/duckdb_derive.py" "$LAKE" "$OUT/duck-derived")
  D_S+=("$s"); D_RSS+=("$rss")
  echo "run $i: sts-audit ${F_S[-1]}s ${F_RSS[-1]}MiB, duckdb ${D_S[-1]}s ${D_RSS[-1]}MiB"
done
rm -rf "$OUT/duck-derived"
read -r L_S L_RSS < <(measure "derive-2g" "$BIN" derive --force --memory-limit 2G --format json --lake "$LAKE")
echo "--memory-limit 2G: ${L_S}s ${L_RSS}MiB"
DERIVED_MB=$(du -sm "$LAKE/derived" | cut -f1)

# Incremental: the lake without its last full day (the corpus's last folder holds a few late
# events of the day after), derived; then that day ingested and derived.
I_S=(failed); I_RSS=(failed); I_COMPUTED=0
NEW_DAY=$(date -u -d "$LAST - 1 day" +%F)
if [ -d "$CORPUS" ]; then
  I_S=(); I_RSS=()
  for i in $(seq "$RUNS"); do
    rm -rf "$INCREMENTAL"
    "$BIN" ingest --quiet --lake "$INCREMENTAL" --to "$(date -u -d "$NEW_DAY - 1 day" +%F)" "$CORPUS" > /dev/null || [ $? -eq 2 ]
    "$BIN" derive --lake "$INCREMENTAL" > /dev/null
    "$BIN" ingest --quiet --lake "$INCREMENTAL" --from "$NEW_DAY" "$CORPUS" > /dev/null || [ $? -eq 2 ]
    read -r s rss < <(measure "derive-incremental" "$BIN" derive --format json --lake "$INCREMENTAL")
    I_S+=("$s"); I_RSS+=("$rss")
    I_COMPUTED=$(python3 -c "import json; print(json.load(open('$OUT/derive-incremental.out'))['computed'])")
    echo "run $i: incremental ${I_S[-1]}s ${I_RSS[-1]}MiB, ${I_COMPUTED} partitions"
  done
  rm -rf "$INCREMENTAL"
fi
rm -rf "$INCREMENTAL"

# Report latency over one week (the last seven days), derived files and --no-derived.
WEEK_FROM=$(date -u -d "$NEW_DAY - 6 days" +%F)
report_row() {  # REPORT
  local r=$1 a=() b=() ra=() rb=()
  for i in $(seq "$RUNS"); do
    read -r s rss < <(measure "week-$r" "$BIN" report "$r" --lake "$LAKE" --from "$WEEK_FROM" --to "$NEW_DAY" --format csv)
    a+=("$s"); ra+=("$rss")
    read -r s rss < <(measure "week-$r-events" "$BIN" report "$r" --no-derived --lake "$LAKE" --from "$WEEK_FROM" --to "$NEW_DAY" --format csv)
    b+=("$s"); rb+=("$rss")
  done
  cmp -s "$OUT/week-$r.out" "$OUT/week-$r-events.out" || { echo "week-$r: derived and computed differ" >&2; exit 1; }
  echo "| $r | $(median "${a[@]}") | $(median "${ra[@]}") | $(median "${b[@]}") | $(median "${rb[@]}") |"
}
WEEK_ROWS=""
for r in role-assumptions cross-account session-durations role-chains source-ips; do
  row=$(report_row "$r"); echo "$row"; WEEK_ROWS+="$row"$'\n'
done

FULL_S=$(median "${F_S[@]}"); FULL_RSS=$(median "${F_RSS[@]}")
INC_S=$(median "${I_S[@]}"); INC_RSS=$(median "${I_RSS[@]}")
write_block "derive-$EVENTS" "Derived tables: full and incremental derive" "
Lake: \`gen_cloudtrail.py --events $EVENTS --days $DAYS --org-layout\` ingested: $(python3 -c "print(f'{$ROWS:,}')") events, $PARTITIONS partitions (account and day), $FIRST to $LAST. $(nproc) cores (DuckDB: threads = 2), DuckDB $(python3 -c "import duckdb; print(duckdb.__version__)"), measured $(date -u +%Y-%m-%d), median of $RUNS interleaved runs.

| run | wall s | peak RSS MiB |
| --- | ---: | ---: |
| \`sts-audit derive --force\` (every partition; $DERIVED_MB MB of Parquet) | $FULL_S | $FULL_RSS |
| same, \`--memory-limit 2G\` | $L_S | $L_RSS |
| DuckDB materialising assumptions, session_usage, sessions, caller_sources from the events | $(median "${D_S[@]}") | $(median "${D_RSS[@]}") |
| \`sts-audit derive\` after ingesting $NEW_DAY and the late events after it ($I_COMPUTED partitions computed) | $INC_S | $INC_RSS |

Incremental / full: $(python3 -c "print('n/a' if '$INC_S' == 'failed' else f'{$INC_S/$FULL_S:.2f}x the time')").

Reports over one week ($WEEK_FROM to $NEW_DAY), one cold process each, CSV to a file; both ways give the same bytes:

| report | s (derived files) | RSS MiB | s (--no-derived) | RSS MiB |
| --- | ---: | ---: | ---: | ---: |
$WEEK_ROWS"
