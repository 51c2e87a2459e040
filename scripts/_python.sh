# Sourced by scripts/demo.sh and scripts/test.sh: pick the Python to install into.
# Sets $python: python3 itself, or ./.venv/bin/python when python3 is a system Python
# that forbids pip installs (PEP 668: Debian 12, Ubuntu 23.04+). Appends the Debian
# packages that are missing for that to the array $packages. Never prompts.
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
  echo "actorcluster: Python 3.10 or newer is needed as python3" >&2
  exit 1
fi

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

# Install $packages with apt-get (root or password-less sudo), or say what to install.
install_packages() {
  [ ${#packages[@]} -gt 0 ] || return 0
  if ! can_apt; then
    echo "actorcluster: missing ${packages[*]}; install them, e.g.:" >&2
    echo "  sudo apt-get install -y ${packages[*]}" >&2
    exit 1
  fi
  echo "actorcluster: installing ${packages[*]} with apt-get" >&2
  as_root apt-get update -qq >/dev/null
  as_root apt-get install -y -qq --no-install-recommends "${packages[@]}" >/dev/null
}

# Create ./.venv when python3 forbids pip installs (after install_packages).
use_venv_if_needed() {
  if [ "$python" = python3 ] && [ "$externally_managed" = 1 ]; then
    python3 -m venv .venv
    python=.venv/bin/python
  fi
}
