"""python -m rnnkit.diagnostics: the ``rnnkit diagnose`` command."""

import sys

from .command import main

sys.exit(main())
