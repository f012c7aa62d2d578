#!/usr/bin/env bash
# ansible-test sanity on the collection. ansible-test needs the collection at a path ending in
# ansible_collections/<namespace>/<name>, so it runs on a copy of the files git would ship, laid out that way.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
python="$root/.venv/bin/python"
work="$root/build/sanity/ansible_collections/idsync/entra"

# ansible-test bootstraps pip in its venvs with a script it downloads from outside the registries; give it ours.
pip_version="$("$python" -c 'from ansible_test._internal.python_requirements import get_venv_packages as g; from ansible_test._internal.host_configs import NativePythonConfig as N; print(g(N(version="3.11", path="'"$python"'"))["pip"])' 2>/dev/null || echo 24.2)"
cache="$HOME/.ansible/test/cache/get_pip_${pip_version//./_}.py"
mkdir -p "$(dirname "$cache")"
cp "$root/tests/sanity/get_pip_offline.py" "$cache"

rm -rf "$root/build/sanity"
mkdir -p "$work"
(cd "$root" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$work/")
cd "$work"
# By default the shipped content; tests/ follows pytest conventions that pylint's collection profile rejects.
if [ $# -gt 0 ]; then targets=("$@"); else targets=(plugins/ roles/ meta/ playbooks/ changelogs/); fi
git init -q && git add -A >/dev/null
"$root/.venv/bin/ansible-test" sanity --venv --requirements --python 3.11 --color no \
  --skip-test shellcheck --skip-test pslint \
  "${targets[@]}"
