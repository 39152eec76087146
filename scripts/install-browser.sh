#!/usr/bin/env bash
# Installs Debian's chromium, the headless browser the compliance report's test renders the HTML
# with, when it is absent, and prints the path of its binary. Idempotent and quick when already
# installed; the test calls it itself, so a new machine needs nothing by hand.
#   STS_AUDIT_TOOLS  the tools' folder; its lock is shared with install-test-tools.sh
set -euo pipefail
tools="${STS_AUDIT_TOOLS:-$HOME/.cache/sts-audit-tools}"
# Tests run in parallel and may all call this at once on a new machine: one installs, the
# others wait for it (and apt itself allows one run at a time).
mkdir -p "$(dirname "$tools")"
exec 9>"$tools-browser.lock"
flock 9
find_browser() { command -v chromium || command -v chromium-browser || true; }
browser="$(find_browser)"
if [[ -z "$browser" ]]; then
    {
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core
    } >&2
    browser="$(find_browser)"
fi
[[ -n "$browser" ]] || { echo "install-browser.sh: chromium is still not on PATH" >&2; exit 1; }
echo "$browser"
