#!/bin/bash
# Benchmark the plugin (as root, Debian 12): set the machine up, install nginx
# and wrk, then run bench/run.py with the given options (--quick, --slices N,
# --json PATH). Every server it starts listens on loopback only, inside a
# private network namespace. Not part of scripts/test.sh.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

bash scripts/setup.sh
if ! command -v nginx >/dev/null || ! command -v wrk >/dev/null; then
    echo "bench: installing nginx-light and wrk"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light wrk >/dev/null
fi
exec .venv/bin/python bench/run.py "$@"
