#!/usr/bin/env bash
# S3 ingest benchmark: the same generated corpus served by a local S3 server (moto, installed by
# scripts/install-test-tools.sh), read two ways, side by side in one run:
#
#   aws s3 cp --recursive   just downloading the objects to local disk (AWS CLI, 10 threads)
#   sts-audit ingest s3://  listing, fetching, decoding and writing the lake
#
#   bench/s3.sh [EVENTS]          default 1000000 events over one day
#
# Wall time and peak RSS (/usr/bin/time -v) go into BENCHMARKS.md between the s3 markers.
# Env: BENCH_DIR (scratch, default bench/out), CORPUS (reuse a corpus folder), CONCURRENCY.
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${1:-1000000}
OUT=${BENCH_DIR:-bench/out}
CORPUS=${CORPUS:-$OUT/corpus-$EVENTS}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/sts-audit-target}
BIN=$CARGO_TARGET_DIR/release/sts-audit
TOOLS=$(scripts/install-test-tools.sh)
mkdir -p "$OUT"

command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time; }
# The build `cargo test --release` makes (dev-dependencies unify features): a plain
# `cargo build --release` would compile DataFusion a second time with other features.
cargo test --release --no-run --quiet
[ -d "$CORPUS" ] || python3 ../shared/tools/gen_cloudtrail.py "$CORPUS" --events "$EVENTS" --days 1

export AWS_ACCESS_KEY_ID=bench AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_CONFIG_FILE=/nonexistent AWS_SHARED_CREDENTIALS_FILE=/nonexistent AWS_EC2_METADATA_DISABLED=true
PORT=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])")
ENDPOINT=http://127.0.0.1:$PORT
"$TOOLS/moto_server" -H 127.0.0.1 -p "$PORT" > "$OUT/moto.log" 2>&1 &
MOTO=$!
trap 'kill $MOTO 2>/dev/null' EXIT
until curl -s -o /dev/null "$ENDPOINT"; do sleep 0.2; done
"$TOOLS/aws" --endpoint-url "$ENDPOINT" s3 mb s3://trail > /dev/null
echo "uploading $CORPUS to the local S3 server..."
"$TOOLS/aws" --endpoint-url "$ENDPOINT" s3 cp --recursive --quiet "$CORPUS" s3://trail/
OBJECTS=$(find "$CORPUS" -type f | wc -l)
BYTES=$(find "$CORPUS" -type f -printf '%s\n' | awk '{s += $1} END {print s}')

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

rm -rf "$OUT/s3-download"
read -r CP_S CP_RSS < <(measure aws-s3-cp "$TOOLS/aws" --endpoint-url "$ENDPOINT" s3 cp --recursive --quiet s3://trail/ "$OUT/s3-download")
rm -rf "$OUT/s3-download" "$OUT/s3-lake"
read -r STS_S STS_RSS < <(measure sts-audit-s3 "$BIN" ingest s3://trail --endpoint-url "$ENDPOINT" --quiet --format json --lake "$OUT/s3-lake" ${CONCURRENCY:+--concurrency $CONCURRENCY})
RECORDS=$(python3 -c "import json; print(json.load(open('$OUT/sts-audit-s3.out'))['records_read'])")
WRITTEN=$(python3 -c "import json; print(json.load(open('$OUT/sts-audit-s3.out'))['records_written'])")

rate() { python3 -c "print(f'{$1/$2:,.0f}')"; }
TABLE=$(cat <<MD
Corpus: \`gen_cloudtrail.py --events $EVENTS --days 1\` in a local S3 server (moto 5, one Python
process on the same $(nproc) cores): $OBJECTS objects, $(python3 -c "print(f'{$BYTES/1e6:.0f}')") MB, $(python3 -c "print(f'{$RECORDS:,}')") records. Measured $(date -u +%Y-%m-%d).

| reader | wall s | records/s | peak RSS MiB | output |
| --- | ---: | ---: | ---: | --- |
| \`aws s3 cp --recursive\` to local disk (download only) | $CP_S | $(rate "$RECORDS" "$CP_S") | $CP_RSS | the gzipped files |
| \`sts-audit ingest s3://\` (list, fetch, decode, write) | $STS_S | $(rate "$RECORDS" "$STS_S") | $STS_RSS | $WRITTEN rows in the lake |
MD
)
echo "$TABLE"
python3 - "$TABLE" <<'PY'
import re, sys
table = sys.argv[1]
path = "BENCHMARKS.md"
text = open(path).read()
if "<!-- BEGIN s3 -->" not in text:
    text += "\n## Ingest from S3\n\n<!-- BEGIN s3 -->\n<!-- END s3 -->\n"
text = re.sub(r"(<!-- BEGIN s3 -->\n).*?(\n?<!-- END s3 -->)", lambda m: m.group(1) + table + "\n<!-- END s3 -->", text, flags=re.S)
open(path, "w").write(text)
PY
