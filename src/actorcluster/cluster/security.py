"""A dask cluster closed to everyone but its client: TLS with temporary certificates,
and every listener on a loopback or one named address, never on all of them.

Without this, any local user (any user of a host, with ``tunnels=False``) could connect
to the scheduler and run code as the client's user on the scheduler and every worker:
dask's scheduler and workers accept any client that can reach them.

:class:`ClusterTLS` makes one key and self-signed certificate per cluster
(``distributed.security.Security.temporary()``), in memory here. Each host that runs a
scheduler or worker gets them as files in a folder of its own (mode 0700, the files
0600) under the runtime's working directory, removed with it, written by the process's
own command at each start from its environment (:meth:`ClusterTLS.placing`: a host
back with a new agent has an empty working directory); the processes are
started with ``--tls-ca-file/--tls-cert/--tls-key`` and ``tls://`` addresses. dask's
TLS requires a certificate from both sides, signed by that CA: a client without the
key is refused at the handshake. :meth:`ClusterTLS.client_security` is what
``get_client()`` connects with.

What stays the user's job: the hosts' own users (root, and the user the processes run
as) can read the key while the cluster runs, as they can read everything of that
user; a launcher the user wrote starts its processes as it likes (its ``tls``
attribute says what this cluster would pass); and ``DaskCluster(secure=False)`` opens
the cluster to whoever reaches its ports. See ``docs/security.md``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
import threading
import weakref
from typing import TYPE_CHECKING, Any

from actorcluster._logging import get_logger
from actorcluster.steps import download_ledger

if TYPE_CHECKING:
    from collections.abc import Mapping

    from distributed.security import Security

    from actorcluster.runtimes import Runtime

__all__ = ["ClusterTLS", "direct_bind_address", "http_address"]

log = get_logger(__name__)

_FOLDER = ".actorcluster-tls"
_CERT_ENV = "ACTORCLUSTER_TLS_CERT"
_KEY_ENV = "ACTORCLUSTER_TLS_KEY"


def http_address(bind_address: str) -> str:
    """Where a dask process's HTTP server (dashboard, metrics) listens: beside its
    scheduler or worker on ``bind_address``, a free port (dask's default is every
    address, even with ``--no-dashboard``)."""
    return f"{bind_address}:0"


def direct_bind_address(
    addresses: Mapping[str, tuple[str, str]], host: str | None, loopback: str, anywhere: str
) -> str:
    """Where a directly wired (``tunnels=False``) master on ``host`` (None: here)
    listens: on a host, its own address as its sshd took our connection (where the
    others reach it); here, the loopback when every host reaches this machine there,
    else every address (TLS then keeps strangers out).

    Args:
        addresses: per host, (this machine as the host sees it, the host's own address).
        host: where the master runs.
        loopback: the loopback address.
        anywhere: the every-address address.
    """
    if host is not None and host != "localhost" and host in addresses:
        return addresses[host][1]
    seen = {here for here, _ in addresses.values()}
    return loopback if seen <= {loopback} else anywhere


class ClusterTLS:
    """The TLS credentials of one cluster: made on first use, written on a host by each
    start of a process there (:meth:`placing`).

    Attributes:
        scheme: the address scheme its processes listen with (``tls``).
    """

    scheme = "tls"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._security: Security | None = None
        self._local: str | None = None
        self._remove_local: weakref.finalize[Any, Any] | None = None

    def __repr__(self) -> str:
        return f"<ClusterTLS {'made' if self._security is not None else 'not made yet'}>"

    def client_security(self) -> Security:
        """The ``distributed.security.Security`` a client connects with."""
        with self._lock:
            return self._make()

    def _make(self) -> Security:
        if self._security is None:
            from distributed.security import Security

            self._security = Security.temporary()  # type: ignore[no-untyped-call]
        return self._security

    def _local_files(self) -> str:
        """A private folder here holding ``cert.pem`` and ``key.pem``."""
        if self._local is None:
            security = self._make()
            download_ledger.sweep_once()  # the folders of clients that were SIGKILLed
            folder = tempfile.mkdtemp(prefix="actorcluster-tls-")  # mode 0700
            download_ledger.note_folder(folder)
            for name, text in (
                ("cert.pem", getattr(security, "tls_scheduler_cert", "")),
                ("key.pem", getattr(security, "tls_scheduler_key", "")),
            ):
                path = os.path.join(folder, name)
                descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(descriptor, "w") as file:
                    file.write(str(text))
            self._local = folder
            # Removed at close, or when this object goes (a cluster whose start failed);
            # a client killed before either leaves it to the next client's sweep.
            self._remove_local = weakref.finalize(self, shutil.rmtree, folder, True)
        return self._local

    def local_files(self) -> tuple[str, str]:
        """The certificate and key here (0600 files in a 0700 folder), for a client of
        another process: ``Security(tls_ca_file=cert, tls_client_cert=cert,
        tls_client_key=key)``."""
        with self._lock:
            folder = self._local_files()
        return os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")

    def files_on(self, runtime: Runtime) -> str:
        """The folder on ``runtime`` that holds the cluster's ``cert.pem`` and
        ``key.pem`` while a process of the cluster runs there (:meth:`placing` writes
        them at each start): relative to the process's working directory, which is the
        runtime's working directory of the agent that starts it (a host back with a
        new agent may have another, or the same one emptied)."""
        return _FOLDER

    def flags(self, runtime: Runtime) -> dict[str, Any]:
        """The ``dask scheduler``/``dask worker`` options that make a process on
        ``runtime`` speak TLS with the cluster's certificate."""
        folder = self.files_on(runtime)
        cert = f"{folder}/cert.pem"
        return {"tls_ca_file": cert, "tls_cert": cert, "tls_key": f"{folder}/key.pem"}

    def env(self) -> dict[str, str]:
        """The environment that carries the certificate and key to :meth:`placing`
        (readable on the host only by the process's user and root, as the files)."""
        with self._lock:
            security = self._make()
        return {
            _CERT_ENV: str(getattr(security, "tls_scheduler_cert", "")),
            _KEY_ENV: str(getattr(security, "tls_scheduler_key", "")),
        }

    def placing(self, runtime: Runtime) -> str:
        """A shell prefix for a process's command on ``runtime``: (re)writes the files
        from :meth:`env` into :meth:`files_on` (a 0700 folder, 0600 files), then drops
        the variables. At every start, not once: a host back with a new agent has a
        new, empty working directory, and the restarted process must find its files
        (a worker restarted after its host's sshd was killed failed on the missing
        ``cert.pem`` for good)."""
        folder = shlex.quote(self.files_on(runtime))
        writes = " && ".join(
            f'printf %s "${variable}" > {folder}/{name}.$$ && mv -f {folder}/{name}.$$ '
            f"{folder}/{name}"
            for variable, name in ((_CERT_ENV, "cert.pem"), (_KEY_ENV, "key.pem"))
        )
        return f"umask 077 && mkdir -p {folder} && {writes} && unset {_CERT_ENV} {_KEY_ENV} && "

    def close(self) -> None:
        """Remove the local copy (the hosts' copies go with their working directories)."""
        with self._lock:
            if self._remove_local is not None:
                self._remove_local()
                self._remove_local = None
                self._local = None
