#!/usr/bin/env bash
# Detection benchmark: `sts-audit detect` (every rule, the default window: the lake's last full
# day, against the days before it) on a lake of generated normal traffic, with the derived
# tables current and with every view computed from events (--no-derived). Wall time and peak RSS
# (/usr/bin/time -v), the median of RUNS interleaved runs, and the findings per rule and
# severity (the generator plants no incident: every finding is a false positive) go into
# BENCHMARKS.md between the BEGIN/END detect markers. The two ways must find the same ids.
# The derived-table runs are the median of RUNS; the --no-derived run is one.
#
#   bench/detect.sh [EVENTS]     default 10000000 events over 8 days, organization layout
#
# Env: BENCH_DIR (scratch, default bench/out), CORPUS, LAKE (reuse them), RUNS (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
EVENTS=${1:-10000000}
OUT=${BENCH_DIR:-bench/out}
CORPUS=${CORPUS:-$OUT/corpus-d-$EVENTS}
LAKE=${LAKE:-$OUT/lake-d-$EVENTS}
RUNS=${RUNS:-3}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/sts-audit-target}
BIN=$CARGO_TARGET_DIR/release/sts-audit
mkdir -p "$OUT"
. bench/lib.sh

command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time; }
# The build `cargo test --release` makes (dev-dependencies unify features): a plain
# `cargo build --release` would compile DataFusion a second time with other features.
cargo test --release --no-run --quiet
[ -d "$CORPUS" ] || python3 ../shared/tools/gen_cloudtrail.py "$CORPUS" --events "$EVENTS" --days 8 --org-layout
if [ ! -d "$LAKE/events" ]; then
  "$BIN" ingest --quiet --lake "$LAKE" "$CORPUS" > "$OUT/detect-ingest.txt" || [ $? -eq 2 ]
fi
ROWS=$("$BIN" sql --lake "$LAKE" --format csv "SELECT count(*) AS n FROM events" | tail -1)


read -r DERIVE_S DERIVE_RSS < <(measure "detect-derive" "$BIN" derive --force --lake "$LAKE")
echo "derive: ${DERIVE_S}s ${DERIVE_RSS}MiB"

D_S=(); D_RSS=()
for i in $(seq "$RUNS"); do
  read -r s rss < <(measure "detect-derived" "$BIN" detect --lake "$LAKE" --format json)
  D_S+=("$s"); D_RSS+=("$rss")
  echo "run $i: derived ${D_S[-1]}s ${D_RSS[-1]}MiB"
done
# Once: computing every view from events is the slow path, and may not fit the memory pool.
read -r E_S E_RSS < <(measure "detect-events" "$BIN" detect --no-derived --lake "$LAKE" --format json)
echo "from events: ${E_S}s ${E_RSS}MiB"
if [ "$E_S" = failed ]; then
  E_S="failed: $(grep -o 'rule [a-z-]*' "$OUT/detect-events.err" | head -1), $(grep -o 'Resources exhausted' "$OUT/detect-events.err" | head -1) at the default pool ($(grep -o 'pool_size: [0-9.]* [GM]B' "$OUT/detect-events.err" | head -1))"
  E_RSS=$(awk -F': ' '/Maximum resident/ {printf "%.0f", $2/1024}' "$OUT/detect-events.time")
fi
WINDOW=$(grep -o 'window [^;]*' "$OUT/detect-derived.err" | head -1)

# Findings per rule and severity; when the views computed from events finished, the two ways
# must agree on every id.
COUNTS=$(python3 - "$OUT/detect-derived.out" "$OUT/detect-events.out" <<'PY'
import collections, json, pathlib, sys
derived = json.load(open(sys.argv[1]))
events_text = pathlib.Path(sys.argv[2]).read_text()
if events_text.strip():
    events = json.loads(events_text)
    if sorted(f["id"] for f in derived) != sorted(f["id"] for f in events):
        sys.exit("derived tables and computed views found different findings")
counts = collections.Counter((f["rule"], f["severity"]) for f in derived)
order = ["critical", "high", "medium", "low"]
for rule in sorted({rule for rule, _ in counts}):
    cells = [str(counts.get((rule, s), 0)) for s in order]
    print(f"| {rule} | " + " | ".join(cells) + " |")
total = [str(sum(n for (_, s), n in counts.items() if s == sev)) for sev in order]
print("| **all rules** | " + " | ".join(total) + " |")
PY
)

TABLE=$(cat <<MD
Lake: \`gen_cloudtrail.py --events $EVENTS --days 8 --org-layout\` ingested: $(python3 -c "print(f'{$ROWS:,}')") events. Detect ran every rule over the default window ($WINDOW). $(nproc) cores, measured $(date -u +%Y-%m-%d); a cold process each (open the lake, plan the window, run the nine rules, write JSON); on derived tables the median of $RUNS runs. Building the derived tables first (\`sts-audit derive --force\`, once per ingest): ${DERIVE_S} s, ${DERIVE_RSS} MiB peak.

| detect | wall s | peak RSS MiB |
| --- | ---: | ---: |
| on current derived tables | $(median "${D_S[@]}") | $(median "${D_RSS[@]}") |
| views computed from events (--no-derived), one run | $E_S | $E_RSS |

Findings on this normal traffic (the generator plants no incident, so each is a false positive):

| rule | critical | high | medium | low |
| --- | ---: | ---: | ---: | ---: |
$COUNTS
MD
)
write_block detect "Detect on a 10M-event lake" "$TABLE"
echo "$TABLE"
