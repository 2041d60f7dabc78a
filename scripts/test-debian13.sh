#!/bin/bash
# Run the test suite against Debian 13's Orthanc (1.12.7, Python plugin 5.0),
# in the chroot made by scripts/debian13-chroot.sh. As root, like test.sh.
# Arguments go to pytest (default: the whole suite, quietly).
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO_ROOT"

bash scripts/setup.sh
bash scripts/debian13-chroot.sh

if [ "$#" -eq 0 ]; then
    set -- -q tests
fi
echo "== tests on Debian 13's Orthanc: pytest $*"
ORTHANC_RUNTIME=debian13 exec .venv/bin/pytest "$@"
