#!/usr/bin/env bash
# Installs the Python tools the S3 tests and benchmarks use (a local S3 server, moto, and the AWS
# CLI) into one virtual environment outside the clone, and prints its bin folder. Then the
# interoperability tests' readers (Java, DuckDB, pyarrow, PySpark: install-interop-tools.sh).
# Idempotent and quick when already installed; the tests call it themselves when needed.
#   STS_AUDIT_TOOLS  where the environment lives (default ~/.cache/sts-audit-tools)
set -euo pipefail
tools="${STS_AUDIT_TOOLS:-$HOME/.cache/sts-audit-tools}"
# Pinned so that a new machine tests against the same server as CI.
packages=("moto[server]==5.2.5" "awscli==1.46.3")
# Tests run in parallel and may all call this at once on a new machine: one installs, the
# others wait for it.
mkdir -p "$(dirname "$tools")"
exec 9>"$tools.lock"
flock 9
stamp="$tools/.installed-$(printf '%s ' "${packages[@]}" | sha256sum | cut -c1-12)"
if [[ ! -f "$stamp" ]]; then
    {
        command -v python3 >/dev/null || { apt-get update -qq && apt-get install -y -qq python3 python3-venv; }
        rm -rf "$tools"
        python3 -m venv "$tools"
        "$tools/bin/python" -m pip install --quiet --disable-pip-version-check "${packages[@]}"
        touch "$stamp"
    } >&2
fi
"$(dirname "$0")/install-interop-tools.sh" > /dev/null
echo "$tools/bin"
