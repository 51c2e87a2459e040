"""``python -m actorcluster``: runs the demo."""

from actorcluster.demo import main

main()
