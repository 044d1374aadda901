"""``python -m galmet`` runs the command-line interface."""

import sys

from galmet.cli.main import main

sys.exit(main())
