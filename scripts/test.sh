#!/usr/bin/env bash
# The test command (README, "Running the tests"): bash scripts/test.sh [pytest args...]
# Installs what the tests need, then runs pytest with the arguments given. Never prompts.
#  - OpenSSH server and client (the tests start real sshd on 127.0.0.X), with apt-get
#    when it runs as root or with password-less sudo; otherwise it says what to install.
#  - this project with its test extras, into python3, or into ./.venv when python3 is
#    a system Python that forbids pip installs (PEP 668, Debian 12 / Ubuntu 23.04+).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 \
  PIP_ROOT_USER_ACTION=ignore

as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  else
    sudo -n env DEBIAN_FRONTEND=noninteractive "$@"
  fi
}

can_apt() {
  command -v apt-get >/dev/null 2>&1 &&
    { [ "$(id -u)" -eq 0 ] || { command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; }; }
}

if ! command -v python3 >/dev/null 2>&1 ||
  ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  echo "scripts/test.sh: Python 3.10 or newer is needed as python3" >&2
  exit 1
fi

packages=()
[ -x /usr/sbin/sshd ] || packages+=(openssh-server)
command -v ssh >/dev/null 2>&1 || packages+=(openssh-client)
python=python3
externally_managed=$(python3 -c 'import os, sys, sysconfig
stdlib = sysconfig.get_path("stdlib")
print(int(sys.prefix == sys.base_prefix and os.path.exists(f"{stdlib}/EXTERNALLY-MANAGED")))')
if [ -x .venv/bin/python ]; then
  python=.venv/bin/python
elif [ "$externally_managed" = 1 ]; then
  python3 -c 'import ensurepip, venv' 2>/dev/null || packages+=(python3-venv)
elif ! python3 -m pip --version >/dev/null 2>&1; then
  packages+=(python3-pip)
fi

if [ ${#packages[@]} -gt 0 ]; then
  if ! can_apt; then
    echo "scripts/test.sh: missing ${packages[*]}; install them, e.g.:" >&2
    echo "  sudo apt-get install -y ${packages[*]}" >&2
    exit 1
  fi
  echo "scripts/test.sh: installing ${packages[*]} with apt-get" >&2
  as_root apt-get update -qq >/dev/null
  as_root apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
fi

if [ "$python" = python3 ] && [ "$externally_managed" = 1 ]; then
  python3 -m venv .venv
  python=.venv/bin/python
fi
"$python" -m pip install -q -e '.[test]'
exec "$python" -m pytest "$@"
