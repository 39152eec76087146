#!/usr/bin/env bash
# Regenerates docs/schema.md from the binary (a test fails when it is stale).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-${CARGO_TARGET_DIR:-$HOME/.cache/sts-audit-target}/release/sts-audit}
{
  sed -n '1,/^## Tables$/p' docs/schema.md
  echo
  "$BIN" schema --format markdown
  printf '\n## Columns\n\n'
  "$BIN" schema --all --format markdown
} > docs/schema.md.new
mv docs/schema.md.new docs/schema.md
