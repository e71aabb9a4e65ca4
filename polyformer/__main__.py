"""`python -m polyformer ...` runs the command line (polyformer/cli.py)."""

import sys

from polyformer.cli import main

sys.exit(main())
