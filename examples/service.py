"""Supervision in a service: runtimes under the service's own supervision tree.

A long-running service owns a SupervisionTree; every runtime it connects runs under it,
so stopping the service stops exactly its runtimes (tasks killed on the hosts, working
folders removed) and leaves no thread or actor behind. A host that goes away fails the
futures of its running tasks, typed (HostUnreachableError), and the runtime reconnects
by itself when the host is back.

    python examples/service.py [HOST...]      (default: localhost)
"""

from __future__ import annotations

import sys

from actorcluster import HostUnreachableError, Runtime, RuntimeTask
from actorcluster.supervisors import SupervisionTree

hosts = sys.argv[1:] or ["localhost"]


def handle_job(runtime: Runtime, job: int) -> str:
    task = RuntimeTask(f"job-{job}").run_command(f"echo job {job} on $(hostname)")
    try:
        runtime.execute_task(task, execute_async=False)
    except HostUnreachableError as error:  # the host went away: retry elsewhere, later
        return f"job {job} failed: {error}"
    return task.execution_log[0].strip()


with SupervisionTree("my-service") as tree:
    runtimes = [Runtime(host, supervisor=tree.ref) for host in hosts]
    for job in range(4):
        print(handle_job(runtimes[job % len(runtimes)], job))
    print("connected:", [runtime.is_connected for runtime in runtimes])
# Leaving the block stopped the tree: every runtime, task and tunnel under it.
print("stopped:", [repr(runtime) for runtime in runtimes])
