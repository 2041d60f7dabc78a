#!/bin/bash
# Set the machine up, then run every check: lint, format, types, the tests
# against Debian 12's Orthanc (1.10.1, Python plugin 4.0), then against Debian
# 13's (1.12.7, plugin 5.0) in the chroot of scripts/debian13-chroot.sh, built
# on first use. Every check runs even when an earlier one fails; the exit code
# is non-zero when any of them failed.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

bash scripts/setup.sh

# shellcheck disable=SC1091
source .venv/bin/activate

failed=()

run_check() {
    local name="$1"
    shift
    echo "== $name: $*"
    if ! "$@"; then
        failed+=("$name")
    fi
}

run_check lint ruff check .
run_check format ruff format --check .
run_check types mypy orthanc_cache_plugin
run_check tests pytest -q tests
run_check debian13-chroot bash scripts/debian13-chroot.sh
run_check tests-debian13 env ORTHANC_RUNTIME=debian13 pytest -q tests

if [ "${#failed[@]}" -gt 0 ]; then
    echo "FAILED: ${failed[*]}"
    exit 1
fi
echo "all checks passed"
