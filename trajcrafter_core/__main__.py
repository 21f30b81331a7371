"""``python -m trajcrafter_core``: see :mod:`trajcrafter_core.cli`."""

import sys

from .cli import main

sys.exit(main())
