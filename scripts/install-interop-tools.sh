#!/usr/bin/env bash
# Installs what the interoperability tests read the lake with: a Java runtime from Debian's
# packages (for Spark), and DuckDB, pyarrow and PySpark in a virtual environment of their own
# (kept apart from install-test-tools.sh's, so that changing one never rebuilds the other
# under running tests). Prints the environment's bin folder.
# Idempotent and quick when already installed; install-test-tools.sh calls it.
#   STS_AUDIT_INTEROP_TOOLS  where the environment lives (default ~/.cache/sts-audit-interop)
set -euo pipefail
tools="${STS_AUDIT_INTEROP_TOOLS:-$HOME/.cache/sts-audit-interop}"
# Pinned so that a new machine tests against the same readers as CI. PySpark 4 needs Java 17+.
packages=("duckdb==2.0.0" "pyarrow==26.0.1" "pyspark==4.3.0")
java_package=openjdk-17-jre-headless
mkdir -p "$(dirname "$tools")"
exec 9>"$tools.lock"
flock 9
{
    if ! command -v java >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$java_package"
    fi
    stamp="$tools/.installed-$(printf '%s ' "${packages[@]}" | sha256sum | cut -c1-12)"
    if [[ ! -f "$stamp" ]]; then
        command -v python3 >/dev/null || { apt-get update -qq && apt-get install -y -qq python3 python3-venv; }
        rm -rf "$tools"
        python3 -m venv "$tools"
        "$tools/bin/python" -m pip install --quiet --disable-pip-version-check "${packages[@]}"
        touch "$stamp"
    fi
} >&2
echo "$tools/bin"
