#!/usr/bin/env bash
# Copyright: idsync.entra contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
#
# tools/ensure_system_packages.sh PACKAGE...
# Installs the Debian packages that are not installed yet (apt-get install -y --no-install-recommends), quietly.
# `apt-get update` runs first only when a package has no install candidate in the current lists, or once more when
# the install fails on stale lists. Root runs apt-get itself, anyone else through `sudo -n` (never a prompt).
# Exits 0 when every package is installed, non-zero with one clear message otherwise.
set -euo pipefail

if [ $# -eq 0 ]; then
  echo "usage: $0 PACKAGE..." >&2
  exit 2
fi

is_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

missing=()
for package in "$@"; do
  is_installed "$package" || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0

fail() {
  echo "ensure_system_packages: cannot install ${missing[*]}: $*" >&2
  exit 1
}

command -v apt-get >/dev/null || fail "apt-get is not available (this needs Debian or Ubuntu)"
if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  fail "not root and 'sudo -n' is not allowed; run: sudo apt-get install -y --no-install-recommends ${missing[*]}"
fi

export DEBIAN_FRONTEND=noninteractive
apt=("${as_root[@]}" apt-get -qq -o DPkg::Lock::Timeout=300)
log="$(mktemp)"
trap 'rm -f "$log"' EXIT

update() {
  "${apt[@]}" update >"$log" 2>&1 || { cat "$log" >&2; fail "apt-get update failed"; }
}

install() {
  "${apt[@]}" install -y --no-install-recommends "${missing[@]}" >"$log" 2>&1
}

updated=false
for package in "${missing[@]}"; do
  candidate="$(apt-cache policy "$package" 2>/dev/null | awk '/Candidate:/ {print $2}')"
  if [ -z "$candidate" ] || [ "$candidate" = "(none)" ]; then
    update
    updated=true
    break
  fi
done

if ! install; then
  $updated && { cat "$log" >&2; fail "apt-get install failed"; }
  update
  install || { cat "$log" >&2; fail "apt-get install failed"; }
fi

for package in "${missing[@]}"; do
  is_installed "$package" || fail "$package is still not installed after apt-get install"
done
echo "ensure_system_packages: installed ${missing[*]}" >&2
