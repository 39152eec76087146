#!/usr/bin/env bash
# Build benchmark: a cold build of what users install (`--profile dist`: no debug information,
# stripped, thin LTO), its time and the binary's size, next to the `release` binary the tests
# build (its size, and stripped). The time and sizes go into BENCHMARKS.md between the
# BEGIN/END build markers. A cold build takes most of an hour on 2 cores: run it alone.
#
#   bench/build.sh        Env: BENCH_DIR (scratch, default bench/out), DIST_TARGET (the cold
#                         target folder, default $BENCH_DIR/target-dist, emptied first)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${BENCH_DIR:-bench/out}
DIST_TARGET=${DIST_TARGET:-$OUT/target-dist}
RELEASE_TARGET=${CARGO_TARGET_DIR:-$HOME/.cache/sts-audit-target}
. bench/lib.sh
mkdir -p "$OUT"
command -v /usr/bin/time >/dev/null || { apt-get update -qq && apt-get install -y -qq time; }
rm -rf "$DIST_TARGET"
# Dependencies downloaded beforehand, so that the time is compiling only.
cargo fetch --locked --quiet
read -r DIST_S DIST_RSS < <(CARGO_TARGET_DIR=$DIST_TARGET measure build-dist cargo build --locked --profile dist --quiet)
[ "$DIST_S" != failed ] || { cat "$OUT/build-dist.err" >&2; exit 1; }
DIST_BIN=$DIST_TARGET/dist/sts-audit
"$DIST_BIN" --version > /dev/null
DIST_BYTES=$(stat -c %s "$DIST_BIN")
mb() { python3 -c "print(f'{$1/1e6:.0f} MB ({$1:,} bytes)')"; }
minutes() { python3 -c "print(f'{$1/60:.1f} min')"; }

RELEASE_ROWS=""
if [ -x "$RELEASE_TARGET/release/sts-audit" ]; then
  RELEASE_BYTES=$(stat -c %s "$RELEASE_TARGET/release/sts-audit")
  strip -o "$OUT/sts-audit-stripped" "$RELEASE_TARGET/release/sts-audit"
  STRIPPED_BYTES=$(stat -c %s "$OUT/sts-audit-stripped")
  rm -f "$OUT/sts-audit-stripped"
  RELEASE_ROWS="| \`release\` (line tables, as \`cargo test --release\` builds it) | about 25 min (earlier cold builds) | $(mb "$RELEASE_BYTES") |
| the same binary, \`strip\`ped | | $(mb "$STRIPPED_BYTES") |"
fi

write_block build "Building and installing" "$(cat <<MD
| build | time ($(nproc) cores, cold) | binary |
| --- | --- | --- |
$RELEASE_ROWS
| \`dist\` (stripped, thin LTO): \`cargo build --locked --profile dist\` | $(minutes "$DIST_S"), ${DIST_RSS} MiB peak | $(mb "$DIST_BYTES") |

Measured $(date -u +%Y-%m-%d) by \`bench/build.sh\` ($(rustc --version | cut -d' ' -f1-2)); the dist build in an empty target folder, dependencies already downloaded.
MD
)"
echo "dist: ${DIST_S}s, $DIST_BYTES bytes"
