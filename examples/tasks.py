"""Tasks: commands in steps, live output, the execution log, futures, stopping.

python examples/tasks.py [HOST]      (default: localhost, no sshd needed)
"""

from __future__ import annotations

import sys
import threading

from actorcluster import Runtime, RuntimeTask, TaskExecutionError

host = sys.argv[1] if len(sys.argv) > 1 else "localhost"

with Runtime(host) as runtime:
    # A task is a list of steps, run in order in the runtime's working directory.
    task = RuntimeTask("build").run_command("echo compiling; echo done").run_command("uname -s")
    runtime.execute_task(task, execute_async=False)  # waits; raises if a step fails
    print("log:", task.execution_log)  # one entry per step

    # Live output: on_output gets it as it comes (debug=True would print it).
    lines: list[str] = []
    ticks = RuntimeTask("live").run_command("for i in 1 2 3; do echo tick $i; done")
    runtime.execute_task(ticks, execute_async=False, on_output=lines.append)
    print("live output:", "".join(lines).split())

    # Asynchronous: a future at once; the log grows while the task runs.
    started = threading.Event()
    slow = RuntimeTask("slow").run_command("echo first; sleep 30; echo never")
    future = runtime.execute_task(slow, on_output=lambda text: started.set())
    started.wait(timeout=30)
    print("while running:", slow.execution_log)
    future.cancel()  # kills the command's process group on the host
    future.exception(timeout=10)  # wait for the end: a TaskCancelledError
    print("cancelled:", future.cancelled())

    # A failing step raises TaskExecutionError naming the step, exit code and output.
    try:
        runtime.execute_task(RuntimeTask("oops").run_command("echo bad >&2; exit 3"), False)
    except TaskExecutionError as error:
        print(f"step {error.task_step_index} exited {error.exit_code}: {error.output.strip()}")

    # A task can run itself on a runtime (or on a host name).
    print("execute:", RuntimeTask("again").run_command("echo hi").execute(runtime).execution_log)
