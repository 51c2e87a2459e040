#!/usr/bin/env bash
# The test command (README, "Running the tests"): bash scripts/test.sh [pytest args...]
# Installs what the tests need, then runs pytest with the arguments given. Never prompts.
#  - OpenSSH server and client (the tests start real sshd on 127.0.0.X), with apt-get
#    when it runs as root or with password-less sudo; otherwise it says what to install.
#  - chromium (Debian's), for the web view's browser test, when apt-get can install it.
#  - this project with its test extras, into python3, or into ./.venv when python3 is
#    a system Python that forbids pip installs (PEP 668, Debian 12 / Ubuntu 23.04+).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
packages=()
[ -x /usr/sbin/sshd ] || packages+=(openssh-server)
command -v ssh >/dev/null 2>&1 || packages+=(openssh-client)
command -v ip >/dev/null 2>&1 || packages+=(iproute2) # isolated hosts (tests/sshbed_net.py)
source scripts/_python.sh
# Debian's chromium, for the observer's browser test (which skips without it).
command -v chromium >/dev/null 2>&1 || ! can_apt || packages+=(chromium)
install_packages
use_venv_if_needed
"$python" -m pip install -q -e '.[test]'
exec "$python" -m pytest "$@"
