#!/usr/bin/env bash
# Ingest benchmark: one generated corpus, three readers, side by side in one run.
#
#   bench/ingest.sh [EVENTS]          default 1000000 events over one day
#
#   zcat      gunzip of every log file to /dev/null (single-threaded): the floor to beat
#   duckdb    read_json of the same files into one Parquet file (pip install duckdb)
#   sts-audit ingest into a fresh lake (deduplicated, typed, partitioned Parquet)
#
# Wall time, records/s and peak RSS (/usr/bin/time -v) go into BENCHMARKS.md (the table between
# the BEGIN/END markers is replaced). Env: BENCH_DIR (scratch, default bench/out), CORPUS (reuse
# an existing corpus folder), JOBS (sts-audit --jobs).
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${1:-1000000}
OUT=${BENCH_DIR:-bench/out}
CORPUS=${CORPUS:-$OUT/corpus-$EVENTS}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/sts-audit-target}
BIN=$CARGO_TARGET_DIR/release/sts-audit
mkdir -p "$OUT"

command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time; }
python3 -c "import duckdb" 2>/dev/null || python3 -m pip install --quiet duckdb
cargo build --release --quiet
[ -d "$CORPUS" ] || python3 ../shared/tools/gen_cloudtrail.py "$CORPUS" --events "$EVENTS" --days 1

# Only event logs (digest files hold no records and would make DuckDB's schema fail).
LIST=$OUT/files.txt
find "$CORPUS" -name '*.json.gz' -path '*/CloudTrail/*' | sort > "$LIST"
FILES=$(wc -l < "$LIST")
BYTES=$(xargs -a "$LIST" stat -c %s | awk '{s += $1} END {print s}')

# measure NAME CMD...: runs CMD under /usr/bin/time -v, prints "seconds rss_mib"
measure() {
  local name=$1; shift
  sync
  /usr/bin/time -v -o "$OUT/$name.time" "$@" > "$OUT/$name.out" 2> "$OUT/$name.err"
  local wall rss
  wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n=split($2,t,":"); s=0; for(i=1;i<=n;i++) s=s*60+t[i]; print s}' "$OUT/$name.time")
  rss=$(awk -F': ' '/Maximum resident/ {printf "%.0f", $2/1024}' "$OUT/$name.time")
  echo "$wall $rss"
}

read -r ZCAT_S ZCAT_RSS < <(measure zcat bash -c "xargs -a '$LIST' cat | zcat > /dev/null")

rm -f "$OUT/duckdb.parquet" "$OUT/duckdb.py"  # a duckdb.py beside the script would shadow the module
cat > "$OUT/duckdb_ingest.py" <<PY
import duckdb
# The same event log files as the other readers (digest files excluded), as a list literal.
files = "[" + ",".join("'" + line.strip().replace("'", "''") + "'" for line in open("$LIST")) + "]"
duckdb.sql(f"""
COPY (
  SELECT r->>'\$.eventID' AS event_id, (r->>'\$.eventTime')::TIMESTAMP AS event_time,
         r->>'\$.eventName' AS event_name, r->>'\$.eventSource' AS event_source,
         r->>'\$.recipientAccountId' AS recipient_account_id, r->>'\$.sourceIPAddress' AS source_ip_address,
         r->'\$.userIdentity' AS user_identity, r->'\$.requestParameters' AS request_parameters,
         r->'\$.responseElements' AS response_elements, r AS record
  FROM (SELECT unnest(Records) AS r
        FROM read_json({files}, columns = {{'Records': 'JSON[]'}},
                       maximum_object_size = 67108864))
) TO '$OUT/duckdb.parquet' (FORMAT parquet, COMPRESSION zstd)
""")
print(duckdb.sql("SELECT count(*) FROM '$OUT/duckdb.parquet'").fetchall()[0][0])
PY
read -r DUCK_S DUCK_RSS < <(measure duckdb python3 "$OUT/duckdb_ingest.py")
DUCK_RECORDS=$(tail -1 "$OUT/duckdb.out")

rm -rf "$OUT/lake"
read -r STS_S STS_RSS < <(measure sts-audit "$BIN" ingest --quiet --format json --lake "$OUT/lake" ${JOBS:+--jobs $JOBS} "$CORPUS")
STS_RECORDS=$(python3 -c "import json,sys; print(json.load(open('$OUT/sts-audit.out'))['records_read'])")
STS_WRITTEN=$(python3 -c "import json,sys; print(json.load(open('$OUT/sts-audit.out'))['records_written'])")

rate() { python3 -c "print(f'{$1/$2:,.0f}')"; }
TABLE=$(cat <<MD
Corpus: \`gen_cloudtrail.py --events $EVENTS --days 1\`: $FILES log files, $(python3 -c "print(f'{$BYTES/1e6:.0f}')") MB gzipped, $(python3 -c "print(f'{$STS_RECORDS:,}')") records. $(nproc) cores, measured $(date -u +%Y-%m-%d).

| reader | wall s | records/s | peak RSS MiB | output |
| --- | ---: | ---: | ---: | --- |
| \`zcat\` to /dev/null (one gunzip, the floor) | $ZCAT_S | $(rate "$STS_RECORDS" "$ZCAT_S") | $ZCAT_RSS | nothing |
| DuckDB \`read_json\` → one Parquet file | $DUCK_S | $(rate "$DUCK_RECORDS" "$DUCK_S") | $DUCK_RSS | $DUCK_RECORDS rows, not deduplicated |
| \`sts-audit ingest\` | $STS_S | $(rate "$STS_RECORDS" "$STS_S") | $STS_RSS | $STS_WRITTEN rows, deduplicated, typed, partitioned |
MD
)
echo "$TABLE"
python3 - "$TABLE" <<'PY'
import re, sys
table = sys.argv[1]
path = "BENCHMARKS.md"
text = open(path).read()
text = re.sub(r"(<!-- BEGIN ingest -->\n).*?(\n<!-- END ingest -->)", lambda m: m.group(1) + table + m.group(2), text, flags=re.S)
open(path, "w").write(text)
PY
