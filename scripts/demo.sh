#!/bin/bash
# Start Orthanc with the cache plugin on port 8042 (Orthanc 1.10 listens on
# every interface; RemoteAccessAllowed is false, so it serves loopback clients
# only, and the DICOM server is off), load a synthetic CT
# study and time its shared-tags twice (a miss, then a hit). Orthanc keeps
# running in the background; the script prints how to stop it.
#
# Environment: DEMO_DIR (work folder, default /var/lib/orthanc-cache-demo),
# DEMO_SLICES (default 100), DEMO_HTTP_PORT (default 8042), DEMO_SKIP_SETUP=1
# to skip scripts/setup.sh on a machine already set up.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEMO_DIR="${DEMO_DIR:-/var/lib/orthanc-cache-demo}"
DEMO_SLICES="${DEMO_SLICES:-100}"
HTTP_PORT="${DEMO_HTTP_PORT:-8042}"
BASE_URL="http://127.0.0.1:${HTTP_PORT}"
cd "$REPO_ROOT"

port_in_use() {
    (exec 3<>"/dev/tcp/127.0.0.1/${HTTP_PORT}") 2>/dev/null
}

write_config() {
    mkdir -p "$DEMO_DIR/storage"  # the plugin creates its cache folder, owner-only
    cat >"$DEMO_DIR/config.json" <<JSON
{
  "Name": "orthanc-cache-demo",
  "HttpPort": ${HTTP_PORT},
  "RemoteAccessAllowed": false,
  "AuthenticationEnabled": false,
  "DicomServerEnabled": false,
  "StorageDirectory": "${DEMO_DIR}/storage",
  "IndexDirectory": "${DEMO_DIR}/storage",
  "Plugins": ["/usr/share/orthanc/plugins/libOrthancPython.so"],
  "PythonScript": "${REPO_ROOT}/example.py",
  "StableAge": 60,
  "CachePlugin": {"Directory": "${DEMO_DIR}/cache"}
}
JSON
}

start_orthanc() {
    PYTHONPATH="$REPO_ROOT" nohup Orthanc --verbose "$DEMO_DIR/config.json" \
        >"$DEMO_DIR/orthanc.log" 2>&1 </dev/null &
    ORTHANC_PID=$!
    echo "$ORTHANC_PID" >"$DEMO_DIR/orthanc.pid"
    for _ in $(seq 300); do
        if curl -sf -o /dev/null "$BASE_URL/system"; then
            return
        fi
        if ! kill -0 "$ORTHANC_PID" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    echo "demo: Orthanc did not start; end of $DEMO_DIR/orthanc.log:" >&2
    tail -n 20 "$DEMO_DIR/orthanc.log" >&2
    kill "$ORTHANC_PID" 2>/dev/null || true
    exit 1
}

time_shared_tags() {
    local uri="/studies/$1/shared-tags" timing decision
    timing="$(curl -s -o /dev/null -w "HTTP %{http_code} in %{time_total} s" \
        "$BASE_URL$uri")"
    # The plugin logs one line per decision: hit, miss, stored, 304, bypass.
    decision="$(grep -oE "cache-plugin: (hit|miss) $uri" "$DEMO_DIR/orthanc.log" |
        tail -n 1 | cut -d' ' -f2)"
    echo "$timing (plugin: ${decision:-no decision logged})"
}

if [ "${DEMO_SKIP_SETUP:-0}" != 1 ]; then
    bash scripts/setup.sh
fi
if [ ! -f example.py ]; then
    echo "demo: $REPO_ROOT/example.py is missing" >&2
    exit 1
fi
if port_in_use; then
    echo "demo: something already listens on 127.0.0.1:${HTTP_PORT}; stop it first" >&2
    exit 1
fi

write_config
start_orthanc
echo "demo: Orthanc started (pid $ORTHANC_PID), loading $DEMO_SLICES slices"
STUDY_ID="$(.venv/bin/python scripts/load_demo.py --port "$HTTP_PORT" \
    --out "$DEMO_DIR/dicom" --slices "$DEMO_SLICES" | tail -n 1)"

echo "shared-tags, first request:  $(time_shared_tags "$STUDY_ID")"
echo "shared-tags, second request: $(time_shared_tags "$STUDY_ID")"
cat <<TEXT

Orthanc Explorer:  $BASE_URL/app/explorer.html
The study:         $BASE_URL/app/explorer.html#study?uuid=$STUDY_ID
Its shared tags:   $BASE_URL/studies/$STUDY_ID/shared-tags
Orthanc log:       $DEMO_DIR/orthanc.log
Stop Orthanc:      kill $ORTHANC_PID
TEXT
