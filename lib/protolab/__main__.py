"""``python -m protolab`` is the ``protolab`` command."""

import sys

from protolab.cli import main

sys.exit(main())
