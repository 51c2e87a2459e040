"""``subprocess.Popen``'s face for process handles: :class:`PopenLike`.

lazycluster's launchers store a ``subprocess.Popen`` in ``self._process`` and code
written for them calls ``poll()``, ``wait(timeout)`` and reads ``returncode``. A
supervised process (:class:`~actorcluster.runtimes.supervised.SupervisedProcess`)
offers the same calls on top of its own members (``pid``, ``exitcode``,
``is_alive()``, ``join()``, ``terminate()``, ``kill()``, ``stop()``), so either kind
of handle can stand where the other is expected.
"""

from __future__ import annotations

import subprocess

__all__ = ["PopenLike"]


class PopenLike:
    """Adds ``poll()``, ``wait(timeout)`` and ``returncode`` to a class that has
    ``name``, ``exitcode``, ``is_alive()`` and ``join(timeout)``.

    ``returncode`` is None while the process runs or will be restarted, then its last
    exit code (negative: the signal that ended it), as ``Popen.returncode``.
    """

    @property
    def name(self) -> str:  # pragma: no cover - provided by the host class
        """The process's name."""
        raise NotImplementedError

    @property
    def exitcode(self) -> int | None:  # pragma: no cover - provided by the host class
        """None while it runs; then its exit code."""
        raise NotImplementedError

    def is_alive(self) -> bool:  # pragma: no cover - provided by the host class
        """Whether it runs or will be restarted."""
        raise NotImplementedError

    def join(self, timeout: float | None = None) -> None:  # pragma: no cover - host class
        """Wait until it will not run again."""
        raise NotImplementedError

    @property
    def returncode(self) -> int | None:
        """None while it runs (or will be restarted); then its exit code."""
        return None if self.is_alive() else self.exitcode

    def poll(self) -> int | None:
        """:attr:`returncode`, without waiting (``Popen.poll``)."""
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait until it will not run again and return its exit code (``Popen.wait``).

        Raises:
            subprocess.TimeoutExpired: it still runs after ``timeout`` seconds.
        """
        self.join(timeout)
        code = self.returncode
        if code is None:
            raise subprocess.TimeoutExpired(self.name, timeout if timeout is not None else 0)
        return code
