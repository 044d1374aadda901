"""``python -m galmet`` runs the command-line interface."""

import sys

from galmet.cli import main

sys.exit(main())
