#!/usr/bin/env bash
# ansible-test sanity on the collection's plugins. ansible-test needs the collection at a path ending in
# ansible_collections/<namespace>/<name>, so it runs on a copy of the tracked tree laid out that way.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
work="$root/build/sanity/ansible_collections/idsync/entra"
rm -rf "$root/build/sanity"
mkdir -p "$work"
# Copy what git would ship (tracked + untracked-but-not-ignored), so CI and a working tree see the same files.
(cd "$root" && git ls-files -z --cached --others --exclude-standard | xargs -0 -I{} cp --parents {} "$work/" 2>/dev/null || true)
cd "$work"
git init -q && git add -A >/dev/null
"$root/.venv/bin/ansible-test" sanity --venv --requirements --python 3.11 --color no \
  --skip-test shellcheck --skip-test pslint \
  "$@"
