#!/usr/bin/env bash
# Triage benchmark: `sts-audit triage --access-key` for one chained session key on the lake of
# bench/detect.sh (10M generated events over 8 days, derived tables current), and DuckDB
# running the equivalent SQL on the same files (the session and its chain back to the origin
# from the derived tables, the key's calls from the event files of the days it was used, the
# sessions it issued). Wall time and peak RSS, the median of RUNS cold runs each, go into
# BENCHMARKS.md between the BEGIN/END triage markers.
#
#   bench/triage.sh                 Env: BENCH_DIR, LAKE (default the detect lake), RUNS (3)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${BENCH_DIR:-bench/out}
LAKE=${LAKE:-$OUT/lake-d-10000000}
RUNS=${RUNS:-3}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/sts-audit-target}
BIN=$CARGO_TARGET_DIR/release/sts-audit
. bench/lib.sh
[ -d "$LAKE/events" ] || { echo "no lake at $LAKE: run bench/detect.sh first" >&2; exit 1; }
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time; }
python3 -c "import duckdb" 2>/dev/null || python3 -m pip install --quiet duckdb
cargo test --release --no-run --quiet
"$BIN" derive --lake "$LAKE" > /dev/null

# The busiest key of a two-hop role chain: a typical key to triage.
KEY=$("$BIN" sql --lake "$LAKE" --format csv \
  "SELECT access_key_id FROM sessions WHERE chain_depth = 2 ORDER BY calls DESC, access_key_id LIMIT 1" | tail -1)
ROWS=$("$BIN" sql --lake "$LAKE" --format csv "SELECT count(*) AS n FROM events" | tail -1)

cat > "$OUT/duckdb_triage.py" <<'PY'
# duckdb_triage.py LAKE KEY: triage's lookups as SQL on the same Parquet files (the views
# finished from sts-audit's stored derived files with sts-audit's SQL).
import pathlib, sys, duckdb
lake, key = sys.argv[1:3]
con = duckdb.connect()
con.execute("SET threads = 2")
con.execute("CREATE MACRO json_get_str(j, k) AS json_extract_string(j, '$.' || k)")
con.execute(f"""CREATE VIEW events AS SELECT * FROM read_parquet('{lake}/events/*/*/*.parquet',
               hive_partitioning = true, hive_types_autocast = false)""")
for name in ["assumption_copies", "session_usage_daily", "caller_sources_daily", "assumptions",
             "issued_credentials", "session_usage", "sessions"]:
    if name.endswith(("_copies", "_daily")):
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{lake}/derived/{name}/*/*/*.parquet')")
    else:
        con.execute(f"CREATE VIEW {name} AS {pathlib.Path(f'queries/views/{name}.sql').read_text()}")
chain = con.execute("""
    WITH RECURSIVE chain(k, hop) AS (
        SELECT access_key_id, 0 FROM sessions WHERE access_key_id = $key
        UNION ALL
        SELECT s.parent_access_key_id, c.hop + 1 FROM chain c JOIN sessions s ON s.access_key_id = c.k
        WHERE s.parent_access_key_id IS NOT NULL AND c.hop < 32)
    SELECT s.*, a.user_agent FROM chain c JOIN sessions s ON s.access_key_id = c.k
    LEFT JOIN assumptions a ON a.call_id = s.call_id ORDER BY c.hop DESC""", {"key": key}).fetchall()
first, last = con.execute("SELECT first_used, last_used FROM sessions WHERE access_key_id = $key",
                          {"key": key}).fetchone()
calls = con.execute("""
    SELECT DISTINCT ON (event_id) event_time, event_id, event_source, event_name, source_ip_address,
           user_agent, error_code
    FROM events WHERE access_key_id = $key AND date >= strftime($first, '%Y-%m-%d')
      AND date <= strftime($last, '%Y-%m-%d') AND event_time BETWEEN $first AND $last
    ORDER BY event_id, event_time""", {"key": key, "first": first, "last": last}).fetchall()
issued = con.execute("""
    WITH RECURSIVE tree(k, depth) AS (
        SELECT access_key_id, 1 FROM sessions WHERE parent_access_key_id = $key
        UNION ALL
        SELECT s.access_key_id, t.depth + 1 FROM tree t JOIN sessions s ON s.parent_access_key_id = t.k
        WHERE t.depth < 8)
    SELECT s.* FROM tree t JOIN sessions s ON s.access_key_id = t.k""", {"key": key}).fetchall()
print(len(chain), len(calls), len(issued))
PY


S_S=(); S_RSS=(); D_S=(); D_RSS=()
for i in $(seq "$RUNS"); do
  read -r s rss < <(measure triage-sts "$BIN" triage --lake "$LAKE" --access-key "$KEY" --format json)
  S_S+=("$s"); S_RSS+=("$rss")
  read -r s rss < <(measure triage-duck python3 "$OUT/duckdb_triage.py" "$LAKE" "$KEY")
  D_S+=("$s"); D_RSS+=("$rss")
  echo "run $i: sts-audit ${S_S[-1]}s ${S_RSS[-1]}MiB, duckdb ${D_S[-1]}s ${D_RSS[-1]}MiB"
done
SHAPE=$(python3 - "$OUT/triage-sts.out" <<'PY'
import json, sys
tree = json.load(open(sys.argv[1]))["trees"][0]
print(f"{len(tree['chain'])} hops back to {tree['origin_type']}, {len(tree['activity'])} calls, {len(tree['issued'])} sessions issued")
PY
)
read -r D_CHAIN D_CALLS D_ISSUED < "$OUT/triage-duck.out"

TABLE=$(cat <<MD
Lake: the 10M-event lake of \`bench/detect.sh\` ($(python3 -c "print(f'{$ROWS:,}')") events, derived tables current). Key: the busiest two-hop chained session ($SHAPE; DuckDB found $D_CHAIN hops, $D_CALLS calls, $D_ISSUED issued). $(nproc) cores (DuckDB: threads = 2), DuckDB $(python3 -c "import duckdb; print(duckdb.__version__)"), measured $(date -u +%Y-%m-%d); median of $RUNS interleaved cold runs.

| triage one key | wall s | peak RSS MiB |
| --- | ---: | ---: |
| \`sts-audit triage --access-key\` (JSON: chain, calls, issued sessions, saved findings) | $(median "${S_S[@]}") | $(median "${S_RSS[@]}") |
| DuckDB, the same lookups as SQL on the same files | $(median "${D_S[@]}") | $(median "${D_RSS[@]}") |
MD
)
write_block triage "Triage one key on a 10M-event lake" "$TABLE"
echo "$TABLE"
