"""``python -m actorcluster.cli``: the command line."""

import sys

from actorcluster.cli import main

sys.exit(main())
