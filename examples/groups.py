"""Groups: many hosts as one; everything runs on all of them at once.

python examples/groups.py [HOST...]      (default: localhost)
"""

from __future__ import annotations

import sys

from actorcluster import RuntimeGroup, RuntimeTask

hosts = sys.argv[1:] or ["localhost"]

with RuntimeGroup(hosts=hosts) as group:  # connects every host in parallel
    # A broadcast: one copy of the task per host, started on all before any is awaited.
    output: dict[str, str] = {}
    group.execute_task(
        RuntimeTask("who").run_command("hostname; nproc"),
        broadcast=True,
        on_output=lambda host, text: output.update({host: output.get(host, "") + text}),
    )
    group.join()
    for host, text in sorted(output.items()):  # on_output got each host's output, live
        print(f"{host}: {text.split()}")

    # Without broadcast, a task goes to the least busy host.
    task = group.execute_task(RuntimeTask("one").run_command("echo picked"), execute_async=False)
    print("one host ran:", task.execution_log)

    # Functions, ports and facts, all hosts at once.
    group.execute_function(lambda: 6 * 7, broadcast=True)
    group.join()
    print("returns:", list(group.function_returns))
    print("a port free on every host:", group.get_free_port(list(range(18700, 18800))))
    group.print_hosts()
