"""``python -m genvision`` (also what ``torchrun -m genvision`` runs)."""

import sys

from .cli import main

sys.exit(main())
