"""``python -m cinderblock ...`` runs the ``cinderblock`` command."""

import sys

from cinderblock.actors.cli.entry import main

sys.exit(main())
