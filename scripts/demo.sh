#!/usr/bin/env bash
# The README's first command: installs actorcluster (with its dask extra, for the demo's
# Dask cluster) and runs the demo on the localhost runtime (no sshd needed). Into
# python3, or ./.venv when python3 forbids pip installs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
packages=()
source scripts/_python.sh
install_packages
use_venv_if_needed
"$python" -m pip install -q '.[dask]'
exec "$python" -m actorcluster.demo
