#!/usr/bin/env bash
# The README's first command: installs actorcluster (with its dask extra, for the demo's
# Dask cluster) into the project's own virtual environment, ./.venv (made here if there
# is none; never a global interpreter), says where, and runs the demo on the localhost
# runtime (no sshd needed). python3-venv is installed with apt-get when it is missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
packages=()
source scripts/_python.sh
if [[ " ${packages[*]} " != *" python3-venv "* ]] && ! python3 -c 'import ensurepip, venv' 2>/dev/null; then
  packages+=(python3-venv)
fi
install_packages
[ -x .venv/bin/python ] || python3 -m venv .venv
python=.venv/bin/python
"$python" -m pip install -q '.[dask]'
echo "actorcluster: installed into $PWD/.venv; put its commands on PATH with" \
  "'source .venv/bin/activate' (or run .venv/bin/actorcluster)" >&2
exec "$python" -m actorcluster.demo
