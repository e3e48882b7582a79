"""``python -m cinderblock ...`` runs the ``cinderblock`` command."""

import sys

from cinderblock.actors.cli.main import main

sys.exit(main())
