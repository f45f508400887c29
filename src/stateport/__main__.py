"""``python -m stateport``: the command-line interface (see :mod:`stateport.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
