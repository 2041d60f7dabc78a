#!/bin/bash
# Build (once) a Debian 13 chroot with Orthanc 1.12.7 and its Python plugin 5.0,
# the second real Orthanc of the integration tests (ORTHANC_RUNTIME=debian13).
# As root. Safe to run again: a finished chroot is only checked, never rebuilt;
# a half-made one (no stamp) is removed and made again.
#
# DEBIAN13_ROOT moves the chroot (default /var/cache/orthanc-cache-plugin/debian13;
# the tests read the same variable). Packages come from deb.debian.org only.
set -euo pipefail

ROOT="${DEBIAN13_ROOT:-/var/cache/orthanc-cache-plugin/debian13}"
MIRROR="http://deb.debian.org/debian"
SUITE="trixie"
PACKAGES=(orthanc orthanc-python orthanc-postgresql python3-diskcache)
BASE_STAMP="$ROOT/.debootstrap-complete"
PACKAGES_STAMP="$ROOT/.orthanc-packages-complete"
export DEBIAN_FRONTEND=noninteractive

log() {
    echo "debian13-chroot: $*"
}

mounts_under_root() {
    # Every mount point at or below $ROOT (the tests bind-mount the repository
    # and /tmp there while they run).
    awk -v root="$ROOT" '$2 == root || index($2, root "/") == 1 { print $2 }' \
        /proc/mounts
}

ensure_debootstrap() {
    if command -v debootstrap >/dev/null; then
        return
    fi
    log "installing debootstrap"
    apt-get update -qq
    apt-get install -y -qq debootstrap >/dev/null 2>&1
}

remove_unfinished_root() {
    if [ ! -e "$ROOT" ]; then
        return
    fi
    if [ -n "$(mounts_under_root)" ]; then
        log "refusing to remove $ROOT: something is mounted in it:" >&2
        mounts_under_root >&2
        exit 1
    fi
    log "removing the unfinished chroot $ROOT"
    rm -rf --one-file-system "$ROOT"
}

make_base_system() {
    if [ -f "$BASE_STAMP" ]; then
        return
    fi
    remove_unfinished_root
    mkdir -p "$(dirname "$ROOT")"
    log "debootstrap $SUITE (minbase) into $ROOT"
    local debootstrap_log
    debootstrap_log="$(mktemp)"
    if ! debootstrap --variant=minbase "$SUITE" "$ROOT" "$MIRROR" \
        >"$debootstrap_log" 2>&1; then
        tail -n 30 "$debootstrap_log" >&2
        rm -f "$debootstrap_log"
        log "debootstrap failed" >&2
        exit 1
    fi
    rm -f "$debootstrap_log"
    touch "$BASE_STAMP"
}

forbid_services() {
    # invoke-rc.d asks policy-rc.d; 101 means "action forbidden": the orthanc
    # package must not start its own server inside the chroot.
    local policy="$ROOT/usr/sbin/policy-rc.d"
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
}

packages_missing() {
    local package
    for package in "${PACKAGES[@]}"; do
        if ! chroot "$ROOT" dpkg-query -W -f='${Status}' "$package" 2>/dev/null \
            | grep -q "install ok installed"; then
            return 0
        fi
    done
    return 1
}

install_packages() {
    if [ -f "$PACKAGES_STAMP" ] && ! packages_missing; then
        return
    fi
    forbid_services
    log "installing ${PACKAGES[*]} in the chroot"
    local apt_log
    apt_log="$(mktemp)"
    if ! { chroot "$ROOT" apt-get update -qq \
        && chroot "$ROOT" apt-get install -y -qq --no-install-recommends \
            "${PACKAGES[@]}"; } >"$apt_log" 2>&1; then
        tail -n 30 "$apt_log" >&2
        rm -f "$apt_log"
        log "apt-get failed in the chroot" >&2
        exit 1
    fi
    rm -f "$apt_log"
    chroot "$ROOT" apt-get clean
    touch "$PACKAGES_STAMP"
}

print_versions() {
    local orthanc plugin python
    # No "| head" here: with pipefail, its early exit would fail the pipe.
    orthanc="$(chroot "$ROOT" /usr/sbin/Orthanc --version)"
    orthanc="${orthanc%%$'\n'*}"
    plugin="$(chroot "$ROOT" dpkg-query -W -f='${Version}' orthanc-python)"
    python="$(chroot "$ROOT" python3 --version)"
    log "ready in $ROOT: $orthanc; orthanc-python $plugin; $python"
}

ensure_debootstrap
make_base_system
install_packages
print_versions
