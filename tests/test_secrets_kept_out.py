"""Secrets given in ``connection_kwargs`` stay in memory for reconnects, and out of every
repr, log event and error."""

from __future__ import annotations

import os
import socket
from typing import TYPE_CHECKING

import pytest

from actorcluster import ActorClusterError, Runtime
from actorcluster.runtimes.options import build_options
from logcapture import captured_logs

if TYPE_CHECKING:
    from sshbed import SshBed

PASSWORD = "pw-" + os.urandom(6).hex()
PASSPHRASE = "pp-" + os.urandom(6).hex()
SECRETS = {"password": PASSWORD, "passphrase": PASSPHRASE}


def _shows_no_secret(*texts: object) -> bool:
    return not any(secret in str(text) for text in texts for secret in SECRETS.values())


def test_options_keep_the_secrets_but_never_show_them() -> None:
    options = build_options("host-1", None, {"connect_kwargs": dict(SECRETS)})
    assert (options.target.password, options.target.passphrase) == (PASSWORD, PASSPHRASE)
    assert _shows_no_secret(repr(options), str(options), repr(options.target))
    kept = build_options("host-1", None, {"connect_kwargs": dict(SECRETS)}, keeper=True)
    assert kept.keeper_kwargs is not None and PASSWORD in kept.keeper_kwargs  # for the keeper
    assert _shows_no_secret(repr(kept), str(kept))


def test_a_bad_secret_is_named_but_not_shown() -> None:
    with pytest.raises(ActorClusterError) as caught:
        build_options("host-1", None, {"connect_kwargs": {"password": 123, "pkey": PASSWORD}})
    assert "connect_kwargs." in str(caught.value)
    assert _shows_no_secret(str(caught.value), repr(caught.value))


def test_a_runtime_with_secrets_shows_none_in_reprs_logs_or_errors(ssh_bed: SshBed) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.2", 0))
        port = closed.getsockname()[1]  # nothing listens once it is closed
    refused = {**ssh_bed.connection_kwargs, "port": port, "connect_kwargs": dict(SECRETS)}
    working = {**ssh_bed.connection_kwargs, "connect_kwargs": dict(SECRETS)}
    with captured_logs() as logs:
        with pytest.raises(ActorClusterError) as caught:
            Runtime("host-1", connection_kwargs=refused)
        with Runtime("host-1", connection_kwargs=working) as rt:
            shown = [repr(rt), str(rt), repr(rt._handle), repr(rt._handle.context)]
    assert _shows_no_secret(str(caught.value), repr(caught.value), *shown)
    assert _shows_no_secret(*logs)
