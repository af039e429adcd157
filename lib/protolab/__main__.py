"""``python -m protolab`` is the ``protolab`` command."""

import sys

from protolab.runner.cli import main

sys.exit(main())
