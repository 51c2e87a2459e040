"""The SSH boundary: resolving hosts, connecting, host keys, error translation.

The only package that sees paramiko and socket errors; it raises
:mod:`actorcluster.errors` types (with the original as ``__cause__``) instead.
"""

from __future__ import annotations

import actorcluster.ssh._paramiko  # noqa: F401 - first: it imports paramiko without invoke
from actorcluster.ssh.agent_stream import ChannelStream
from actorcluster.ssh.config import SshTarget, resolve_target
from actorcluster.ssh.config_files import CONFIG_ENV_VAR, config_hosts, config_path
from actorcluster.ssh.connect import SshConnection, connect
from actorcluster.ssh.keeper_connection import KeeperConnection, keeper_connect
from actorcluster.ssh.options import SshOptions, parse_ssh_kwargs

__all__ = [
    "CONFIG_ENV_VAR",
    "ChannelStream",
    "KeeperConnection",
    "SshConnection",
    "SshOptions",
    "SshTarget",
    "config_hosts",
    "config_path",
    "connect",
    "keeper_connect",
    "parse_ssh_kwargs",
    "resolve_target",
]
