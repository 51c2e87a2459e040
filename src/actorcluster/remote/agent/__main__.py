"""``python3 -m actorcluster.remote.agent``: run the agent on this process's stdin/stdout."""

from .main import main

main()
