#!/usr/bin/env bash
# ensure_system_packages.sh PKG... - install the Debian packages among PKG that are missing.
#
# Runs apt-get as root, or through `sudo -n` (never prompts). `apt-get update` runs first only when a package is
# missing and apt does not know it yet (a fresh machine has empty package lists). Exits 0 when every package is
# installed afterwards, non-zero with one clear sentence on stderr otherwise.
set -euo pipefail

if [ "$#" -eq 0 ]; then
    echo "usage: $0 PACKAGE..." >&2
    exit 2
fi

installed() {
    [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null || true)" = "installed" ]
}

missing=()
for package in "$@"; do
    installed "$package" || missing+=("$package")
done
[ "${#missing[@]}" -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure_system_packages: ${missing[*]} missing and this machine has no apt-get; install them by hand." >&2
    exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "ensure_system_packages: ${missing[*]} missing; run as root or allow passwordless sudo to install them." >&2
    exit 1
fi

# Packages apt has no candidate for need fresh package lists (`apt-cache policy` prints "Candidate: (none)").
needs_update=0
for package in "${missing[@]}"; do
    candidate="$(apt-cache policy "$package" 2>/dev/null | awk '/Candidate:/ {print $2}')"
    if [ -z "$candidate" ] || [ "$candidate" = "(none)" ]; then
        needs_update=1
    fi
done
if [ "$needs_update" -eq 1 ]; then
    if ! "${as_root[@]}" apt-get update -qq >/dev/null 2>&1; then
        echo "ensure_system_packages: apt-get update failed; cannot install ${missing[*]}." >&2
        exit 1
    fi
fi

# Non-interactive: slapd and samba ask debconf questions otherwise; no service is started by policy-rc.d-less
# containers, and the tests run their own servers anyway.
log="$(mktemp)"
if ! "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >"$log" 2>&1; then
    echo "ensure_system_packages: apt-get install ${missing[*]} failed: $(tail -n 3 "$log" | tr '\n' ' ')" >&2
    rm -f "$log"
    exit 1
fi
rm -f "$log"

for package in "${missing[@]}"; do
    if ! installed "$package"; then
        echo "ensure_system_packages: $package is still not installed after apt-get install." >&2
        exit 1
    fi
done
