#!/usr/bin/env bash
# Ingest benchmark: generated corpora, three readers, side by side in one run.
#
#   bench/ingest.sh [EVENTS [SCALE_EVENTS [SCALE_DAYS]]]   defaults 1000000 and 4000000 events
#                                                          over one day, then 4000000 over 4 days
#
#   zcat      gunzip of every log file to /dev/null (single-threaded): the floor to beat
#   duckdb    read_json of the same files into one Parquet file (pip install duckdb)
#   sts-audit ingest into a fresh lake (deduplicated, typed, partitioned Parquet)
#
# The EVENTS corpus gets all three readers. The SCALE_EVENTS corpus (0 to skip) gets zcat and
# sts-audit only, to show how time and memory grow with the corpus: once over one day (four
# times the events per day and per file) and once over SCALE_DAYS days (0 to skip; the same
# events per day as the first corpus, so only the length of the run grows). zcat and sts-audit run RUNS
# times each (default 3), interleaved so that both see the same machine, and the median wall
# time is reported (peak RSS is the largest seen); DuckDB runs once.
#
# A sparse organization trail (SPARSE_EVENTS events, default 60000, 0 to skip, over 200
# accounts and 30 days: thousands of partitions of a few dozen rows) is ingested once with the
# default --jobs and --buffer-size, to show that memory and the number of files stay bounded
# when the partitions, not the rows, are many.
#
# Wall time, records/s and peak RSS (/usr/bin/time -v) go into BENCHMARKS.md (the tables between
# the BEGIN/END markers are replaced). Env: BENCH_DIR (scratch, default bench/out), CORPUS (reuse
# an existing corpus folder for EVENTS), JOBS (sts-audit --jobs), RUNS.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${1:-1000000}
SCALE_EVENTS=${2:-4000000}
SCALE_DAYS=${3:-4}
OUT=${BENCH_DIR:-bench/out}
CORPUS=${CORPUS:-$OUT/corpus-$EVENTS}
RUNS=${RUNS:-3}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/sts-audit-target}
BIN=$CARGO_TARGET_DIR/release/sts-audit
mkdir -p "$OUT"

command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time; }
python3 -c "import duckdb" 2>/dev/null || python3 -m pip install --quiet duckdb
# The build `cargo test --release` makes (dev-dependencies unify features): a plain
# `cargo build --release` would compile DataFusion a second time with other features.
cargo test --release --no-run --quiet

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

# median of the arguments
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
largest() { printf '%s\n' "$@" | sort -g | tail -1; }
rate() { python3 -c "print(f'{$1/$2:,.0f}')"; }
summary_field() { python3 -c "import json; print(json.load(open('$OUT/sts-audit.out'))['$1'])"; }

# prepare EVENTS DIR [DAYS]: generates the corpus when missing; sets LIST, FILES, BYTES
prepare() {
  [ -d "$2" ] || python3 ../shared/tools/gen_cloudtrail.py "$2" --events "$1" --days "${3:-1}"
  # Only event logs (digest files hold no records and would make DuckDB's schema fail).
  LIST=$OUT/files-$1-${3:-1}d.txt
  find "$2" -name '*.json.gz' -path '*/CloudTrail/*' | sort > "$LIST"
  FILES=$(wc -l < "$LIST")
  BYTES=$(xargs -a "$LIST" stat -c %s | awk '{s += $1} END {print s}')
}

# zcat_and_sts DIR: RUNS interleaved runs of each; sets ZCAT_S ZCAT_RSS STS_S STS_RSS
zcat_and_sts() {
  local zs=() zr=() ss=() sr=() s r
  for _ in $(seq "$RUNS"); do
    read -r s r < <(measure zcat bash -c "xargs -a '$LIST' cat | zcat > /dev/null")
    zs+=("$s"); zr+=("$r")
    rm -rf "$OUT/lake"
    read -r s r < <(measure sts-audit "$BIN" ingest --quiet --format json --lake "$OUT/lake" ${JOBS:+--jobs $JOBS} "$1")
    ss+=("$s"); sr+=("$r")
  done
  ZCAT_S=$(median "${zs[@]}"); ZCAT_RSS=$(largest "${zr[@]}")
  STS_S=$(median "${ss[@]}"); STS_RSS=$(largest "${sr[@]}")
}

prepare "$EVENTS" "$CORPUS"
zcat_and_sts "$CORPUS"
STS_RECORDS=$(summary_field records_read)
STS_WRITTEN=$(summary_field records_written)

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
rm -f "$OUT/duckdb.parquet"

TABLE=$(cat <<MD
Corpus: \`gen_cloudtrail.py --events $EVENTS --days 1\`: $FILES log files, $(python3 -c "print(f'{$BYTES/1e6:.0f}')") MB gzipped, $(python3 -c "print(f'{$STS_RECORDS:,}')") records. $(nproc) cores, measured $(date -u +%Y-%m-%d); zcat and sts-audit: median of $RUNS interleaved runs.

| reader | wall s | records/s | peak RSS MiB | output |
| --- | ---: | ---: | ---: | --- |
| \`zcat\` to /dev/null (one gunzip, the floor) | $ZCAT_S | $(rate "$STS_RECORDS" "$ZCAT_S") | $ZCAT_RSS | nothing |
| DuckDB \`read_json\` → one Parquet file | $DUCK_S | $(rate "$DUCK_RECORDS" "$DUCK_S") | $DUCK_RSS | $DUCK_RECORDS rows, not deduplicated |
| \`sts-audit ingest\` | $STS_S | $(rate "$STS_RECORDS" "$STS_S") | $STS_RSS | $STS_WRITTEN rows, deduplicated, typed, partitioned |
MD
)
echo "$TABLE"

# scale_row EVENTS DAYS FILES RECORDS: one row of the scaling table from the last zcat_and_sts
scale_row() {
  echo "| $(python3 -c "print(f'{$1:,}')") | $2 | $3 | $(python3 -c "print(f'{$4:,}')") | $ZCAT_S | $STS_S | $(python3 -c "print(f'{$STS_S/$ZCAT_S:.2f}')") | $(rate "$4" "$STS_S") | $STS_RSS |"
}
SCALE=$(cat <<MD
| generated events | days | log files | records | zcat s | sts-audit s | sts-audit / zcat | sts-audit records/s | sts-audit peak RSS MiB |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
$(scale_row "$EVENTS" 1 "$FILES" "$STS_RECORDS")
MD
)
if [ "$SCALE_EVENTS" != 0 ]; then
  prepare "$SCALE_EVENTS" "$OUT/corpus-$SCALE_EVENTS"
  zcat_and_sts "$OUT/corpus-$SCALE_EVENTS"
  SCALE="$SCALE
$(scale_row "$SCALE_EVENTS" 1 "$FILES" "$(summary_field records_read)")"
  if [ "$SCALE_DAYS" != 0 ]; then
    prepare "$SCALE_EVENTS" "$OUT/corpus-$SCALE_EVENTS-${SCALE_DAYS}d" "$SCALE_DAYS"
    zcat_and_sts "$OUT/corpus-$SCALE_EVENTS-${SCALE_DAYS}d"
    SCALE="$SCALE
$(scale_row "$SCALE_EVENTS" "$SCALE_DAYS" "$FILES" "$(summary_field records_read)")"
  fi
fi
echo "$SCALE"

SPARSE_EVENTS=${SPARSE_EVENTS:-60000}
SPARSE=""
if [ "$SPARSE_EVENTS" != 0 ]; then
  SPARSE_DIR=$OUT/corpus-sparse-$SPARSE_EVENTS
  [ -d "$SPARSE_DIR" ] || python3 ../shared/tools/gen_cloudtrail.py "$SPARSE_DIR" \
    --events "$SPARSE_EVENTS" --accounts 200 --days 30 --org-layout
  rm -rf "$OUT/lake"
  read -r s r < <(measure sts-audit "$BIN" ingest --quiet --format json --lake "$OUT/lake" ${JOBS:+--jobs $JOBS} "$SPARSE_DIR")
  partitions=$(find "$OUT/lake/events" -mindepth 2 -maxdepth 2 -type d | wc -l)
  SPARSE=$(cat <<MD
| generated events | accounts | days | records | partitions | Parquet files | sts-audit s | peak RSS MiB |
| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
| $(python3 -c "print(f'{$SPARSE_EVENTS:,}')") | 200 | 30 | $(python3 -c "print(f'{$(summary_field records_read):,}')") | $partitions | $(summary_field parquet_files_written) | $s | $r |
MD
)
  echo "$SPARSE"
fi

python3 - "$TABLE" "$SCALE" "$SPARSE" <<'PY'
import re, sys
table, scale, sparse = sys.argv[1], sys.argv[2], sys.argv[3]
path = "BENCHMARKS.md"
text = open(path).read()
for name, body in (("ingest", table), ("ingest-scale", scale), ("ingest-sparse", sparse)):
    if not body:
        continue
    text = re.sub(rf"(<!-- BEGIN {name} -->\n).*?(<!-- END {name} -->)",
                  lambda m: m.group(1) + body + "\n" + m.group(2), text, flags=re.S)
open(path, "w").write(text)
PY
