#!/usr/bin/env bash
# CI (.ci/run): what a user installs is what works. Builds the wheel and the sdist
# (python -m build), checks that both carry the agent, installs the wheel (with its dask
# extra, for the demo's cluster) into a fresh venv, and runs `actorcluster --version`
# and `actorcluster demo` from there, outside the source tree (nothing can come from
# src/). The sdist must build a wheel too. Leaves nothing behind.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
python=python3
if [ -x .venv/bin/python ]; then python=.venv/bin/python; fi # where scripts/test.sh installed
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$python" -m build --outdir "$work/dist" . >"$work/build.log" 2>&1 || {
  cat "$work/build.log" >&2
  exit 1
}
wheel=$(ls "$work"/dist/actorcluster-*.whl)
sdist=$(ls "$work"/dist/actorcluster-*.tar.gz)
"$python" - "$wheel" "$sdist" <<'PY'
import sys, tarfile, zipfile
wheel, sdist = sys.argv[1:]
names = set(zipfile.ZipFile(wheel).namelist())
tops = {name.split("/", 1)[1] for name in tarfile.open(sdist).getnames() if "/" in name}
for wanted in ("actorcluster/remote/agent/main.py", "actorcluster/py.typed"):
    assert wanted in names, f"check_wheel: {wanted} is not in {wheel}"
    assert f"src/{wanted}" in tops, f"check_wheel: src/{wanted} is not in {sdist}"
PY

"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q "$wheel[dask]"
cd "$work" # away from src/: only the installed package can be imported
env -u PYTHONPATH "$work/venv/bin/actorcluster" --version
env -u PYTHONPATH "$work/venv/bin/actorcluster" demo
echo "check_wheel: $(basename "$wheel") and $(basename "$sdist") build, install and run the demo"
