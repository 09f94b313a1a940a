"""``python -m streamhost.cli``: the ``streamhost`` command, for a given interpreter."""

import sys

from .main import main

sys.exit(main())
