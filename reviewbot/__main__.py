"""``python -m reviewbot`` runs the command line."""

import sys

from reviewbot.cli import main

sys.exit(main())
