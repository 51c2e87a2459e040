"""The work a chaos run keeps in flight, and its verdicts.

Each runtime has a driver thread keeping ``window`` tasks in flight, each a command, a
function or a transfer (send a file, fetch it back), picked by the run's seed. Every
command and function appends its task id to a counter file on the host, so after the
run a task that succeeded must be there exactly once (no success ran twice), and one
that failed at most once. Every outcome is recorded: a success (verified), or a typed
ActorClusterError whose message names the task's host.
"""

from __future__ import annotations

import os
import random
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from actorcluster import ActorClusterError, RuntimeTask

if TYPE_CHECKING:
    from pathlib import Path

    from actorcluster import Runtime

__all__ = ["KINDS", "Outcome", "Workload", "mark"]

KINDS = ("command", "function", "transfer")
RESOLVE_TIMEOUT = 120.0
"""Every task's future must resolve within this (a host down for long fails it)."""


def mark(path: str, task_id: str) -> str:
    """Append ``task_id`` to ``path`` on the host (the success counter); return it."""
    with open(path, "a") as file:
        file.write(task_id + "\n")
    return task_id


mark.__module__ = "__main__"  # travels by value


@dataclass
class Outcome:
    """How one task ended."""

    task_id: str
    host: str
    kind: str
    started: float
    ended: float = 0.0
    ok: bool = False
    error: str = ""
    problem: str = ""
    """Set when the outcome breaks a rule (wrong result, untyped error, no host)."""


@dataclass
class Workload:
    """Tasks in flight on ``runtimes`` until ``deadline``; outcomes collected."""

    runtimes: dict[str, Runtime]
    seed: int
    remote_dir: Path
    local_dir: Path
    window: int = 8
    outcomes: list[Outcome] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _numbers: Any = None

    def run(self, deadline: float) -> None:
        """Drive every runtime until ``deadline``, then wait for what is in flight."""
        threads = [
            threading.Thread(target=self._drive, args=(host, index, deadline), daemon=True)
            for index, host in enumerate(sorted(self.runtimes))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=max(0.0, deadline - time.monotonic()) + RESOLVE_TIMEOUT + 30)
            assert not thread.is_alive(), f"a driver did not end (seed {self.seed})"

    def _drive(self, host: str, index: int, deadline: float) -> None:
        rng = random.Random(self.seed * 1000 + index)
        runtime = self.runtimes[host]
        in_flight: list[tuple[Outcome, Any, Any]] = []
        number = 0
        while time.monotonic() < deadline or in_flight:
            while time.monotonic() < deadline and len(in_flight) < self.window:
                number += 1
                outcome = Outcome(f"{host}-{index}-{number}", host, rng.choice(KINDS), 0.0)
                in_flight.append(self._submit(runtime, outcome, rng))
            still = []
            for outcome, future, check in in_flight:
                if future is None or future.done() or self._overdue(outcome):
                    self._settle(outcome, future, check)
                else:
                    still.append((outcome, future, check))
            in_flight = still
            time.sleep(0.01)

    @staticmethod
    def _overdue(outcome: Outcome) -> bool:
        return time.monotonic() - outcome.started > RESOLVE_TIMEOUT

    def _submit(
        self, runtime: Runtime, outcome: Outcome, rng: random.Random
    ) -> tuple[Outcome, Any, Any]:
        counter = str(self.remote_dir / outcome.task_id)
        task = RuntimeTask(outcome.task_id)
        check: Any
        if outcome.kind == "command":
            task.run_command(f"echo {outcome.task_id} >> {counter}; echo ok-{outcome.task_id}")
            check = lambda done: f"ok-{outcome.task_id}\n" in done.execution_log  # noqa: E731
        elif outcome.kind == "function":
            task.run_function(mark, path=counter, task_id=outcome.task_id)
            check = lambda done: list(done.function_returns) == [outcome.task_id]  # noqa: E731
        else:
            data = rng.randbytes(rng.choice((1, 4096, 65536, 300_000)))
            source = self.local_dir / f"{outcome.task_id}.out"
            back = self.local_dir / f"{outcome.task_id}.back"
            source.write_bytes(data)
            remote = str(self.remote_dir / f"{outcome.task_id}.bin")
            task.send_file(str(source), remote).get_file(remote, str(back))
            check = lambda done: back.read_bytes() == data  # noqa: E731
        outcome.started = time.monotonic()
        try:
            future = runtime.execute_task(task, execute_async=True)
        except ActorClusterError as exc:  # refused at once (host down): typed is fine
            self._failed(outcome, exc)
            return outcome, None, check
        return outcome, future, check

    def _settle(self, outcome: Outcome, future: Any, check: Any) -> None:
        if future is not None:
            try:
                done = future.get(timeout=1)
            except ActorClusterError as exc:
                self._failed(outcome, exc)
            except Exception as exc:  # untyped, or never resolved
                self._failed(outcome, exc)
            else:
                outcome.ok = True
                outcome.ended = time.monotonic()
                try:
                    if not check(done):
                        outcome.problem = "a success with a wrong result"
                except Exception as exc:
                    outcome.problem = f"checking the result raised {exc!r}"
        with self._lock:
            self.outcomes.append(outcome)

    @staticmethod
    def _failed(outcome: Outcome, exc: BaseException) -> None:
        outcome.ended = time.monotonic()
        outcome.error = f"{type(exc).__name__}: {str(exc)[:300]}"
        if not isinstance(exc, ActorClusterError):
            outcome.problem = f"an untyped error: {outcome.error}"
        elif outcome.host not in str(exc):
            outcome.problem = f"an error not naming its host: {outcome.error}"

    def counted_twice(self) -> list[str]:
        """Rule breakers of "no success ran twice": task ids and their run counts."""
        broken = []
        for outcome in self.outcomes:
            if outcome.kind == "transfer":
                continue
            path = self.remote_dir / outcome.task_id
            runs = len(path.read_text().split()) if path.exists() else 0
            if (outcome.ok and runs != 1) or runs > 1:
                broken.append(f"{outcome.task_id}: ok={outcome.ok} ran {runs} times")
        return broken

    def partial_files(self) -> list[str]:
        """``.part`` files left anywhere the run wrote."""
        found = []
        for folder in (self.remote_dir, self.local_dir):
            for root, _, files in os.walk(folder):
                found += [os.path.join(root, name) for name in files if name.endswith(".part")]
        return found
