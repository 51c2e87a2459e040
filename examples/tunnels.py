"""Tunnels: reach a port of the host from here, and a port here from the host.

python examples/tunnels.py [HOST]      (default: localhost)
"""

from __future__ import annotations

import http.server
import socket
import sys
import threading
import time
import urllib.request

from actorcluster import Runtime, RuntimeTask

host = sys.argv[1] if len(sys.argv) > 1 else "localhost"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


with Runtime(host) as runtime:
    # A web server on the host, on a port free there...
    port = runtime.get_free_port(list(range(18500, 18600)))
    server = RuntimeTask("server").run_command(
        f"echo hi > hi.txt; exec python3 -m http.server {port}"
    )
    runtime.execute_task(server)
    deadline = time.monotonic() + 10
    while runtime.has_free_port(port) and time.monotonic() < deadline:  # until it listens
        time.sleep(0.05)

    # ...reached here on another port (ssh -L): a supervised tunnel, back after reconnects.
    local_port = free_port()
    key = runtime.expose_port_from_runtime(port, local_port)
    with urllib.request.urlopen(f"http://127.0.0.1:{local_port}/hi.txt", timeout=10) as reply:
        print("from the host's server:", reply.read().decode().strip())
    runtime.stop_process(key)  # closes the tunnel
    server.stop()

    # The other way (ssh -R): a server here, reached by the host on its own port.
    here = http.server.HTTPServer(("127.0.0.1", 0), QuietHandler)
    threading.Thread(target=here.serve_forever, daemon=True).start()
    there = runtime.get_free_port(list(range(18600, 18700)))
    runtime.expose_port_to_runtime(here.server_address[1], there)
    fetch = f"python3 -c \"import urllib.request as u; print(u.urlopen('http://127.0.0.1:{there}/').status)\""
    print("the host reached us:", runtime.echo(f"$({fetch})").strip())
    here.shutdown()
