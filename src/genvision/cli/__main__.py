"""``python -m genvision.cli`` (as ``torchrun -m genvision.cli train ...`` runs it)."""

import sys

from . import main

sys.exit(main())
