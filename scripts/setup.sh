#!/bin/bash
# Prepare a Debian 12 machine (as root) to test and demonstrate the plugin:
# Orthanc with its Python plugin from Debian, and a .venv with the dev tools.
# Safe to run again: it only installs what is missing.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
APT_PACKAGES=(
    orthanc orthanc-python orthanc-postgresql postgresql
    python3-diskcache python3-venv curl nginx-light
)
export DEBIAN_FRONTEND=noninteractive

missing_packages() {
    local package
    for package in "${APT_PACKAGES[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null \
            | grep -q "install ok installed"; then
            echo "$package"
        fi
    done
}

install_debian_packages() {
    local missing
    missing="$(missing_packages)"
    if [ -z "$missing" ]; then
        return
    fi
    echo "setup: installing Debian packages: $(echo $missing)"
    apt-get update -qq
    # shellcheck disable=SC2086  # one word per package
    apt-get install -y -qq $missing >/dev/null
}

stop_systemd_unit() {
    # Stop and disable a unit where systemd runs; false where it does not.
    [ -d /run/systemd/system ] || return 1
    systemctl stop "$1" >/dev/null 2>&1 || true
    systemctl disable "$1" >/dev/null 2>&1 || true
}

stop_system_orthanc() {
    # The Debian package may start its own Orthanc on 8042/4242; the tests and
    # the demo run their own servers, so that service must not run. Do NOT use
    # "service orthanc stop" without systemd: the init script then kills every
    # process running /usr/sbin/Orthanc, test servers of other users included.
    if stop_systemd_unit orthanc; then
        return
    fi
    local pidfile=/run/orthanc.pid pid
    if [ -f "$pidfile" ]; then
        pid="$(cat "$pidfile")"
        if kill -0 "$pid" 2>/dev/null; then
            echo "setup: stopping the Debian orthanc service (pid $pid)"
            kill -TERM "$pid" || true
            timeout 30 tail --pid="$pid" -f /dev/null || kill -KILL "$pid" || true
        fi
        rm -f "$pidfile"
    fi
}

stop_system_nginx() {
    # nginx-light's service would listen on port 80 of every interface; the
    # tests start their own nginx (loopback only, own configuration). Where
    # policy-rc.d denies starting services (containers) it never ran.
    if stop_systemd_unit nginx; then
        return
    fi
    local pidfile=/run/nginx.pid pid
    if [ -f "$pidfile" ]; then
        pid="$(cat "$pidfile")"
        if kill -0 "$pid" 2>/dev/null; then
            echo "setup: stopping the Debian nginx service (pid $pid)"
            kill -QUIT "$pid" || true
        fi
    fi
}

stop_system_postgresql() {
    # The postgresql package makes and may start a "main" cluster on port
    # 5432; the tests start their own server (loopback, own port and folder).
    if stop_systemd_unit postgresql; then
        return
    fi
    command -v pg_lsclusters >/dev/null || return 0
    pg_lsclusters --no-header 2>/dev/null | awk '$4 == "online" { print $1, $2 }' \
        | while read -r version name; do
            echo "setup: stopping the Debian PostgreSQL cluster $version/$name"
            pg_ctlcluster "$version" "$name" stop || true
        done
}

create_venv() {
    cd "$REPO_ROOT"
    if [ ! -x .venv/bin/python ]; then
        echo "setup: creating .venv"
        /usr/bin/python3 -m venv --system-site-packages .venv
    fi
    .venv/bin/python -m pip install -q --disable-pip-version-check \
        -r requirements-dev.txt
}

install_debian_packages
stop_system_orthanc
stop_system_nginx
stop_system_postgresql
create_venv
echo "setup: ready ($(Orthanc --version | head -n 1), $(.venv/bin/python --version))"
