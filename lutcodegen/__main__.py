"""``python -m lutcodegen`` is the same as the ``lutcodegen`` command."""

import sys

from .cli import main

sys.exit(main())
