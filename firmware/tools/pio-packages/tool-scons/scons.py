"""PlatformIO runs ``<its python> tool-scons/scons.py``; hand over to the pip-installed SCons.

PlatformIO 6.2.0 wants the package ``tool-scons ~4.41101.0`` (SCons 4.11.1) and would download it
from its registry. This folder stands in for it, so a build needs no network: the ``firmware``
extra of lutcodegen installs ``scons==4.11.1`` into the same environment as PlatformIO.
"""

import sys

from SCons.Script.Main import main

if __name__ == "__main__":
    sys.exit(main())
